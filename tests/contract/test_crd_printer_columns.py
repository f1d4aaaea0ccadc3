"""Table output of custom resources (what ``kubectl get`` asks for): the CRD's printer columns."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.contract.helpers import create_crd, delete_crd

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
NAME_DOC_START = "Name must be unique within a namespace."
AGE = re.compile(r"^\d+s$")  # the object is seconds old
COLUMNS: list[dict[str, Any]] = [
    {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "How many"},
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
    {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "First", "type": "string", "jsonPath": ".spec.tags[0]"},
    {"name": "Last", "type": "string", "jsonPath": ".spec.tags[-1]"},
    {"name": "Labels", "type": "string", "jsonPath": ".spec.labels"},
    {"name": "Count", "type": "string", "jsonPath": ".spec.replicas"},
    {"name": "Created", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing.here"},
    {"name": "Host", "type": "string", "format": "password", "jsonPath": ".spec.host"},
]


def _definitions(table: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for d in table["columnDefinitions"]:
        d = dict(d)
        if d["name"] == "Name":
            assert d["description"].startswith(NAME_DOC_START), d
            d["description"] = "<name doc>"
        out.append(d)
    return out


async def test_printer_columns_in_table_output(http: httpx.AsyncClient, namespace: str) -> None:
    crd = await create_crd(http, printer_columns=COLUMNS)
    try:
        spec = {
            "size": "small",
            "replicas": 3,
            "ratio": 0.5,
            "enabled": True,
            "tags": ["a", "b", "c"],
            "labels": {"z": "1", "a": "2"},
            "host": "example.com",
        }
        assert (await http.post(crd.path(namespace), json=crd.obj("w1", spec))).status_code == 201
        assert (
            await http.post(crd.path(namespace), json=crd.obj("w2", {"replicas": 1.9}))
        ).status_code == 201
        status = {
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}],
            }
        }
        resp = await http.patch(
            crd.path(namespace, "w1", "status"),
            json=status,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert resp.status_code == 200, resp.text
        resp = await http.get(crd.path(namespace), headers={"Accept": TABLE})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        table = resp.json()
        assert table["kind"] == "Table"
        assert table["apiVersion"] == "meta.k8s.io/v1"
        assert table["metadata"]["resourceVersion"]
        assert _definitions(table) == [
            {"name": "Name", "type": "string", "format": "name", "description": "<name doc>", "priority": 0},
            *(
                {
                    "name": c["name"],
                    "type": c["type"],
                    "format": c.get("format", ""),
                    "description": c.get(
                        "description",
                        f"Custom resource definition column (in JSONPath format): {c['jsonPath']}",
                    ),
                    "priority": c.get("priority", 0),
                }
                for c in COLUMNS
            ),
        ]
        rows = table["rows"]
        assert [r["object"]["metadata"]["name"] for r in rows] == ["w1", "w2"]
        assert {r["object"]["kind"] for r in rows} == {"PartialObjectMetadata"}
        first, second = (r["cells"] for r in rows)
        assert AGE.match(first[11])
        assert AGE.match(second[11])
        assert first[:11] + first[12:] == [
            "w1",
            "small",
            3,
            0.5,
            True,
            "Running",
            "True",
            "a",
            "c",
            '{"a":"2","z":"1"}',
            "3",
            None,
            "example.com",
        ]
        assert second[:11] + second[12:] == [
            "w2",
            None,
            1,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            "1.9",
            None,
            None,
        ]
        one = await http.get(crd.path(namespace, "w1"), headers={"Accept": TABLE})
        assert one.status_code == 200, one.text
        single = one.json()
        assert single["metadata"] == {
            "resourceVersion": single["rows"][0]["object"]["metadata"]["resourceVersion"]
        }
        assert [r["cells"][1] for r in single["rows"]] == ["small"]
    finally:
        await delete_crd(http, crd)


async def test_without_printer_columns_a_custom_resource_shows_name_and_age(
    http: httpx.AsyncClient, namespace: str
) -> None:
    crd = await create_crd(http)
    try:
        assert (await http.post(crd.path(namespace), json=crd.obj("w1"))).status_code == 201
        table = (await http.get(crd.path(namespace), headers={"Accept": TABLE})).json()
        definitions = _definitions(table)
        assert definitions[0] == {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "<name doc>",
            "priority": 0,
        }
        assert definitions[1]["name"] == "Age"
        assert definitions[1]["type"] == "date"
        assert definitions[1]["description"].startswith("CreationTimestamp is a timestamp representing")
        assert len(definitions) == 2
        [row] = table["rows"]
        assert row["cells"][0] == "w1"
        assert AGE.match(row["cells"][1])
    finally:
        await delete_crd(http, crd)
