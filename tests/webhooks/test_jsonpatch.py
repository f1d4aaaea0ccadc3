"""The RFC 6902 diff: applied by an independent implementation (the embedded API server's JSON
patch) it reproduces the target, for hand-picked pitfalls and for arbitrary JSON documents."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.testing.apiserver.patch import json_patch
from kube_runtime.webhooks.jsonpatch import diff

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=25,
)


def strictly_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def roundtrip(a: Any, b: Any) -> Any:
    return json_patch(copy.deepcopy(a), copy.deepcopy(diff(a, b)))


def test_equal_documents_give_an_empty_patch() -> None:
    doc = {"a": [1, {"b": None}], "c": "x"}
    assert diff(doc, copy.deepcopy(doc)) == []


def test_json_types_python_conflates_are_replaced() -> None:
    assert diff({"a": 1}, {"a": True}) == [{"op": "replace", "path": "/a", "value": True}]
    assert diff({"a": 1}, {"a": 1.0}) == [{"op": "replace", "path": "/a", "value": 1.0}]
    assert diff({"a": 0}, {"a": False}) == [{"op": "replace", "path": "/a", "value": False}]


def test_pointer_tokens_are_escaped() -> None:
    ops = diff({"metadata": {"labels": {}}}, {"metadata": {"labels": {"a/b~c": "x"}}})
    assert ops == [{"op": "add", "path": "/metadata/labels/a~1b~0c", "value": "x"}]


def test_shrinking_and_growing_lists_keep_indices_valid() -> None:
    assert diff([1, 2, 3, 4], [1]) == [
        {"op": "remove", "path": "/3"},
        {"op": "remove", "path": "/2"},
        {"op": "remove", "path": "/1"},
    ]
    assert roundtrip([1], [1, 2, 3]) == [1, 2, 3]
    assert roundtrip({"x": [1, 2]}, {"x": "now a string"}) == {"x": "now a string"}


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_applying_the_diff_reproduces_the_target(a: Any, b: Any) -> None:
    assert strictly_equal(roundtrip({"root": a}, {"root": b}), {"root": b})
