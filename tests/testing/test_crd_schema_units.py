"""Unit checks of the embedded server's CRD schema helpers (the behaviour itself is compared with
kube-apiserver by tests/contract/test_crd_*.py; these pin the Go formatting and edge cases)."""

from __future__ import annotations

from typing import Any

import pytest

from kube_runtime.testing.apiserver.crschema import coerce, parse_schema
from kube_runtime.testing.apiserver.crvalidate import go_float, go_quote, validate
from kube_runtime.testing.apiserver.printer import cell, human_duration


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (1.5, "1.5"),
        (100.0, "100"),
        (1e6, "1e+06"),
        (1e21, "1e+21"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456789.0, "1.23456789e+08"),
        (2.5e-7, "2.5e-07"),
        (-0.5, "-0.5"),
    ],
)
def test_go_float_prints_as_fmt_v(value: float, text: str) -> None:
    assert go_float(value) == text  # checked against Go 1.26's fmt.Sprintf("%v")


def test_go_quote_keeps_printable_unicode_and_escapes_controls() -> None:
    assert go_quote('héllo\x00\t"<>') == '"héllo\\x00\\t\\"<>"'
    assert go_quote("a\u2028b") == '"a\\u2028b"'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (7 * 3600 + 60, "7h1m"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


OBJ: dict[str, Any] = {
    "spec": {"items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}], "map": {"k.x": "v"}},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}


@pytest.mark.parametrize(
    ("path", "kind", "value"),
    [
        (".spec.items[1].name", "string", "b"),
        (".spec.items[-1].n", "integer", 2),
        (".spec.items[*].name", "string", "a"),
        (".spec.items[?(@.n > 1)].name", "string", "b"),
        ("{.spec.map['k.x']}", "string", "v"),
        ("..conditions[0].type", "string", "Ready"),
        (".spec.items", "string", '[{"n":1,"name":"a"},{"n":2,"name":"b"}]'),
        (".spec.nope", "string", None),
        (".spec[", "string", None),
        (".spec.items[0].name", "integer", None),
    ],
)
def test_printer_cells(path: str, kind: str, value: Any) -> None:
    assert cell(OBJ, {"jsonPath": path, "type": kind}) == value


def test_preserve_unknown_fields_still_prunes_and_defaults_inside_declared_properties() -> None:
    schema = parse_schema(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"n": {"type": "integer", "default": 7}},
                            },
                        },
                        "byKey": {
                            "type": "object",
                            "additionalProperties": {"type": "string", "default": "d"},
                        },
                    },
                }
            },
        }
    )
    obj: dict[str, Any] = {
        "kept": {"any": 1},
        "spec": {"gone": 1, "items": [{"x": 1}, {"n": 2}], "byKey": {"a": None, "b": "x"}},
    }
    coerce(obj, schema)
    assert obj == {"kept": {"any": 1}, "spec": {"items": [{"n": 7}, {"n": 2}], "byKey": {"a": "d", "b": "x"}}}


def test_ratcheting_skips_unchanged_values_only() -> None:
    schema = parse_schema({"type": "object", "properties": {"a": {"type": "integer", "maximum": 1}}})
    assert schema is not None
    assert validate({"a": 5}, schema, old={"a": 5}) == []
    assert [c[0] for c in validate({"a": 6}, schema, old={"a": 5})] == ["a"]
    assert [c[0] for c in validate({"a": True}, schema, old={"a": 1})] == ["a"]


def test_a_pattern_python_cannot_compile_is_not_enforced() -> None:
    schema = parse_schema({"type": "string", "pattern": "^\\p{L}+$"})
    assert schema is not None
    assert validate("abc", schema) == []
