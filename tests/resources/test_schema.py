"""The generated CRD: a structural schema Kubernetes accepts (no $ref, no unions but
int-or-string, nullable, defaults, constraints, CEL rules, list types), names and versions, and
the ``python -m kube_runtime crd`` command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml

from kube_runtime.resources import CustomResource, KubeModel, ListType, crd, object_schema, structural_schema

from .models import DoohickeyV1, DoohickeyV2, Gadget, Range, Widget

ROOT = Path(__file__).resolve().parents[2]


def walk(schema: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(schema, dict):
        out.append(schema)
        for value in schema.values():
            out.extend(walk(value))
    elif isinstance(schema, list):
        for value in schema:
            out.extend(walk(value))
    return out


def test_schema_is_structural() -> None:
    schema = object_schema(Widget)
    for node in walk(schema):
        assert "$ref" not in node
        assert "$defs" not in node
        assert "title" not in node
        assert "allOf" not in node
        assert "oneOf" not in node
        if "anyOf" in node:  # only the int-or-string shape Kubernetes allows
            assert node["x-kubernetes-int-or-string"] is True
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
        if "properties" in node:
            assert node["type"] == "object"
            assert "additionalProperties" not in node
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]


def test_schema_carries_the_models_validation() -> None:
    spec = object_schema(Widget)["properties"]["spec"]
    props = spec["properties"]
    assert spec["description"] == "What a Widget asks for."
    assert props["replicas"] == {
        "default": 1,
        "description": "How many copies.",
        "maximum": 10,
        "minimum": 0,
        "type": "integer",
    }
    assert props["size"]["enum"] == ["small", "large"]
    assert props["size"]["default"] == "small"
    assert props["mode"]["enum"] == ["fast", "safe"]
    assert props["ports"]["items"]["properties"]["port"]["x-kubernetes-int-or-string"] is True
    assert props["ports"]["items"]["required"] == ["name", "port"]
    assert props["labels"] == {"additionalProperties": {"type": "string"}, "type": "object", "nullable": True}
    assert props["memory"]["pattern"].startswith("^(\\+|-)?")
    assert props["memory"]["nullable"] is True
    assert props["window"]["nullable"] is True
    assert props["window"]["x-kubernetes-validations"] == [
        {"rule": "self.low <= self.high", "message": "low must not exceed high"}
    ]
    assert props["even"]["x-kubernetes-validations"] == [
        {"rule": "self % 2 == 0", "message": "even must be even"}
    ]
    assert props["config"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["ownerName"]["pattern"] == "^[a-z][a-z0-9-]*$"
    assert (props["ownerName"]["minLength"], props["ownerName"]["maxLength"]) == (1, 30)
    conditions = object_schema(Widget)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_exclusive_bounds_become_openapi_v3_booleans() -> None:

    from pydantic import Field

    class Bounds(KubeModel):
        ratio: Annotated[float, Field(gt=0, lt=1)]

    ratio = structural_schema(Bounds)["properties"]["ratio"]
    assert ratio == {
        "exclusiveMaximum": True,
        "exclusiveMinimum": True,
        "maximum": 1,
        "minimum": 0,
        "type": "number",
    }


def test_unions_and_recursion_are_refused_with_the_field_named() -> None:
    class Union(KubeModel):
        either: int | bool

    with pytest.raises(TypeError, match=r"Union\.either: unions are not structural"):
        structural_schema(Union)

    class Tree(KubeModel):
        children: list[Tree] = []

    with pytest.raises(TypeError, match="recursive model Tree"):
        structural_schema(Tree)


class _Keyed(KubeModel):
    name: str
    zone: str = "a"
    optional: str | None = None
    size: int = 0


class _ListShapes:
    """Field shapes kube-apiserver refuses in a CRD (422), each with the message it gives."""

    class OptionalKey(KubeModel):
        f: Annotated[list[_Keyed], ListType.map("optional")] = []

    class MissingKey(KubeModel):
        f: Annotated[list[_Keyed], ListType.map("nope")] = []

    class SetOfObjects(KubeModel):
        f: Annotated[list[_Keyed], ListType.set()] = []

    class MapOfScalars(KubeModel):
        f: Annotated[list[int], ListType.map("x")] = []

    class NoneOnly(KubeModel):
        f: None = None


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_ListShapes.OptionalKey, "key 'optional' must be a required field or have a default"),
        (_ListShapes.MissingKey, "key 'nope' is not a field of the items"),
        (_ListShapes.SetOfObjects, "ListType.set needs scalar items"),
        (_ListShapes.MapOfScalars, "ListType.map needs object items"),
        (_ListShapes.NoneOnly, "can only be None"),
    ],
)
def test_list_types_and_none_fields_the_api_server_refuses_are_type_errors(
    model: type[KubeModel], message: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(message)) as raised:
        structural_schema(model)
    assert f"{model.__name__}.f" in str(raised.value)


def test_a_list_map_keyed_by_required_and_defaulted_fields_is_accepted() -> None:
    class Keyed(KubeModel):
        f: Annotated[list[_Keyed], ListType.map("name", "zone")] = []
        tags: Annotated[list[str], ListType.set()] = []

    schema = structural_schema(Keyed)
    assert schema["properties"]["f"]["x-kubernetes-list-map-keys"] == ["name", "zone"]
    assert schema["properties"]["tags"]["x-kubernetes-list-type"] == "set"


def test_crd_names_scope_subresources_and_columns() -> None:
    definition = crd(Widget)
    assert definition["metadata"]["name"] == "widgets.typed.example.com"
    spec = definition["spec"]
    assert spec["names"] == {
        "kind": "Widget",
        "listKind": "WidgetList",
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wdg"],
        "categories": ["typed"],
    }
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert version["subresources"] == {"status": {}}
    assert version["additionalPrinterColumns"] == [
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}
    ]
    gadget = crd(Gadget)["spec"]
    assert gadget["scope"] == "Cluster"
    assert "subresources" not in gadget["versions"][0]


def test_several_versions_one_storage() -> None:
    versions = crd(DoohickeyV1, DoohickeyV2)["spec"]["versions"]
    assert [(v["name"], v["storage"]) for v in versions] == [("v1", False), ("v2", True)]
    assert versions[0]["deprecated"] is True
    assert versions[0]["deprecationWarning"] == "use v2"

    class Unmarked(CustomResource, group="typed.example.com", version="v3", kind="Doohickey"):
        pass

    with pytest.raises(ValueError, match="exactly one version storage=True"):
        crd(DoohickeyV1, Unmarked)
    with pytest.raises(ValueError, match="not a version of Doohickey"):
        crd(DoohickeyV2, Widget)


def test_cli_prints_one_yaml_document_per_kind() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kube_runtime",
            "crd",
            "tests.resources.models:Widget",
            "tests.resources.models:DoohickeyV1",
            "tests.resources.models:DoohickeyV2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    documents = list(yaml.safe_load_all(result.stdout))
    assert documents == [crd(Widget), crd(DoohickeyV1, DoohickeyV2)]


def test_cli_reports_a_bad_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kube_runtime", "crd", "tests.resources.models:WidgetSpec"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "is not a CustomResource model" in result.stderr


def test_subclasses_inherit_rules_and_crd_settings() -> None:
    class Narrower(Range):
        note: str | None = None

    assert structural_schema(Narrower)["x-kubernetes-validations"] == [
        {"rule": "self.low <= self.high", "message": "low must not exceed high"}
    ]

    class Extended(Widget):
        pass

    assert crd(Extended)["spec"]["names"]["shortNames"] == ["wdg"]
    assert Extended.api_resource == Widget.api_resource


def test_module_entry_point_usage() -> None:
    result = subprocess.run([sys.executable, "-m", "kube_runtime"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: python -m kube_runtime crd module:Model" in result.stderr


def test_a_set_becomes_a_set_list_not_unique_items() -> None:
    class Tags(KubeModel):
        tags: set[str] = set()

    tags = structural_schema(Tags)["properties"]["tags"]
    assert "uniqueItems" not in tags
    assert tags["x-kubernetes-list-type"] == "set"
    assert tags["items"] == {"type": "string"}
