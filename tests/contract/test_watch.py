"""Watch: resumption, selectors, initial events, timeouts, metadata-only streams."""

from __future__ import annotations

from typing import Any

import anyio
import httpx

from tests.contract.helpers import CLUSTER_PROVIDED, configmap, is_cluster_provided, open_watch, read_events

MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_watch_from_resource_version_sees_changes_in_order(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    async with open_watch(http, path, {"resourceVersion": rv, "allowWatchBookmarks": "true"}) as watch:
        await http.post(path, json=configmap("w", v="1"))
        await http.patch(f"{path}/w", json={"data": {"v": "2"}}, headers=MERGE)
        await http.delete(f"{path}/w")
        events = await watch.take(3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"v": "2"}
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 3


async def test_resume_replays_what_happened_since(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await http.post(path, json=configmap("r", v="1"))).json()
    rv = created["metadata"]["resourceVersion"]
    await http.patch(f"{path}/r", json={"data": {"v": "2"}}, headers=MERGE)
    await http.post(path, json=configmap("s"))
    events = await read_events(http, path, {"resourceVersion": rv, "timeoutSeconds": "1"})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "r"),
        ("ADDED", "s"),
    ]


async def test_watch_without_resource_version_starts_with_current_state(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await http.post(path, json=configmap("one"))
    await http.post(path, json=configmap("two"))
    for params in ({}, {"resourceVersion": "0"}):
        events = await read_events(http, path, {**params, "timeoutSeconds": "1"})
        assert sorted((e["type"], e["object"]["metadata"]["name"]) for e in events) == [
            ("ADDED", "one"),
            ("ADDED", "two"),
        ]


async def test_label_selector_watch_synthesizes_added_and_deleted(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    params = {"resourceVersion": rv, "labelSelector": "watched=yes"}
    async with open_watch(http, path, params) as watch:
        await http.post(path, json=configmap("sel"))
        labelled = await http.patch(
            f"{path}/sel", json={"metadata": {"labels": {"watched": "yes"}}}, headers=MERGE
        )
        last_match = (await http.patch(f"{path}/sel", json={"data": {"k": "v"}}, headers=MERGE)).json()
        unlabelled = await http.patch(
            f"{path}/sel", json={"metadata": {"labels": {"watched": "no"}}}, headers=MERGE
        )
        events = await watch.take(3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[0]["object"] == labelled.json()
    assert events[1]["object"] == last_match
    # The DELETED event carries the last state the watch was allowed to see (the one that matched),
    # stamped with the resourceVersion of the update that made it stop matching.
    unlabelled_rv = unlabelled.json()["metadata"]["resourceVersion"]
    expected = {**last_match, "metadata": {**last_match["metadata"], "resourceVersion": unlabelled_rv}}
    assert events[2]["object"] == expected
    assert events[2]["object"]["metadata"]["labels"] == {"watched": "yes"}


async def test_field_selector_watch_on_one_object(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    async with open_watch(
        http, path, {"resourceVersion": rv, "fieldSelector": "metadata.name=target"}
    ) as watch:
        await http.post(path, json=configmap("other"))
        await http.post(path, json=configmap("target"))
        events = await watch.take(1)
    assert events[0]["type"] == "ADDED"
    assert events[0]["object"]["metadata"]["name"] == "target"


async def test_timeout_seconds_ends_the_stream(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    with anyio.fail_after(15):
        events = await read_events(http, path, {"resourceVersion": rv, "timeoutSeconds": "1"})
    assert [e for e in events if e["type"] != "BOOKMARK"] == []


async def test_a_watch_allowing_bookmarks_gets_a_farewell_before_its_timeout(
    http: httpx.AsyncClient, namespace: str
) -> None:
    # kube-apiserver's watch cache sends one bookmark about 2 s before timeoutSeconds ends the
    # watch (a watcher must not take it for the server's bookmark cadence). The real server may send
    # another one earlier; the farewell is the stream's last event.
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    params = {"resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "5"}
    arrivals: list[tuple[float, dict[str, Any]]] = []
    with anyio.fail_after(30):
        async with open_watch(http, path, params) as watch:
            created = (await http.post(path, json=configmap("before-farewell"))).json()
            while (event := await watch.next(within=30)) is not None:
                arrivals.append((anyio.current_time(), event))
        ended = anyio.current_time()
    types = [e["type"] for _, e in arrivals if not is_cluster_provided(e["object"])]
    assert types[0] == "ADDED"
    assert types[-1] == "BOOKMARK"
    arrived, farewell = arrivals[-1]
    assert ended - arrived <= 3.5
    farewell_rv = int(farewell["object"]["metadata"]["resourceVersion"])
    assert farewell_rv >= int(created["metadata"]["resourceVersion"])


async def test_send_initial_events_ends_with_annotated_bookmark(
    http: httpx.AsyncClient, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    provided = [i["metadata"]["name"] for i in (await http.get(path)).json()["items"]]
    assert set(provided) <= CLUSTER_PROVIDED
    for name in ("i1", "i2", "i3"):
        await http.post(path, json=configmap(name))
    params = {
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "allowWatchBookmarks": "true",
        "resourceVersion": "0",
    }
    async with open_watch(http, path, params) as watch:
        seen: list[str] = []
        while True:
            event = await watch.next()
            assert event is not None
            if event["type"] == "BOOKMARK":
                annotations = event["object"]["metadata"].get("annotations") or {}
                if annotations.get("k8s.io/initial-events-end") == "true":
                    bookmark_rv = int(event["object"]["metadata"]["resourceVersion"])
                    break
                continue
            assert event["type"] == "ADDED"
            seen.append(event["object"]["metadata"]["name"])
        assert sorted(seen) == sorted(["i1", "i2", "i3", *provided])
        await http.post(path, json=configmap("after"))
        (later,) = await watch.take(1)
    assert later["type"] == "ADDED"
    assert later["object"]["metadata"]["name"] == "after"
    assert int(later["object"]["metadata"]["resourceVersion"]) > bookmark_rv


async def test_send_initial_events_requires_not_older_than(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = await http.get(
        path, params={"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true"}
    )
    assert resp.status_code == 422
    assert resp.json()["reason"] == "Invalid"


async def test_metadata_only_watch(http: httpx.AsyncClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = (await http.get(path)).json()["metadata"]["resourceVersion"]
    accept = {"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}
    async with open_watch(http, path, {"resourceVersion": rv}, headers=accept) as watch:
        await http.post(path, json=configmap("meta", payload="x" * 50))
        (event,) = await watch.take(1)
    assert event["object"]["kind"] == "PartialObjectMetadata"
    assert "data" not in event["object"]
    assert event["object"]["metadata"]["name"] == "meta"


TABLE = {"accept": "application/json;as=Table;g=meta.k8s.io;v=v1"}


async def test_table_watch_sends_the_column_definitions_only_on_the_first_event(
    http: httpx.AsyncClient, namespace: str
) -> None:
    # what `kubectl get -w` reads: each event's object is a one-row Table
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert (await http.post(path, json=configmap("first", labels={"t": "w"}))).status_code == 201
    async with open_watch(http, path, {"labelSelector": "t=w"}, TABLE) as reader:
        (initial,) = await reader.take(1)
        created = await http.post(path, json=configmap("second", labels={"t": "w"}))
        (added,) = await reader.take(1)
    definitions = initial["object"]["columnDefinitions"]
    assert [d["name"] for d in definitions][:1] == ["Name"]
    assert "Age" in [d["name"] for d in definitions]
    assert added["object"]["columnDefinitions"] is None
    for event, name in ((initial, "first"), (added, "second")):
        table = event["object"]
        (row,) = table["rows"]
        assert (event["type"], table["kind"], table["apiVersion"]) == ("ADDED", "Table", "meta.k8s.io/v1")
        assert row["object"]["metadata"]["name"] == name
        assert table["metadata"] == {"resourceVersion": row["object"]["metadata"]["resourceVersion"]}

    # from a resourceVersion (no initial events): the first live event carries the definitions
    since = {"labelSelector": "t=w", "resourceVersion": created.json()["metadata"]["resourceVersion"]}
    async with open_watch(http, path, since, TABLE) as reader:
        await http.delete(f"{path}/first")
        await http.delete(f"{path}/second")
        first, second = await reader.take(2)
    assert [e["type"] for e in (first, second)] == ["DELETED", "DELETED"]
    assert first["object"]["columnDefinitions"] == definitions
    assert second["object"]["columnDefinitions"] is None
    assert [e["object"]["rows"][0]["object"]["metadata"]["name"] for e in (first, second)] == [
        "first",
        "second",
    ]
