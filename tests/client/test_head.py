"""Object heads, lazy objects and raw list pages (kube_runtime.client.head)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.client.head import LazyObject, ObjectHead, RawList, decode_head

_keys = st.text(min_size=1, max_size=8)
_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=12)
_scalars = _scalars | st.floats(allow_nan=False, allow_infinity=False)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)
_string_map = st.dictionaries(_keys, st.text(max_size=8), max_size=4)
_metadata = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(min_size=1, max_size=10),
        "namespace": st.text(min_size=1, max_size=10),
        "uid": st.uuids().map(str),
        "resourceVersion": st.integers(1, 10**9).map(str),
        "generation": st.integers(0, 2**40),
        "labels": _string_map,
        "annotations": _string_map,
        "finalizers": st.lists(st.text(max_size=8), max_size=3),
        "deletionTimestamp": st.just("2026-01-01T00:00:00Z"),
        "ownerReferences": st.lists(
            st.fixed_dictionaries(
                {"apiVersion": st.just("v1"), "kind": st.just("X"), "name": st.text(max_size=5)}
            ),
            max_size=2,
        ),
        "managedFields": st.lists(_json, max_size=2),
    },
)
_objects = st.builds(
    lambda meta, rest: {**rest, "metadata": meta},
    _metadata,
    st.dictionaries(st.sampled_from(["spec", "status", "data", "x"]), _json, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(_objects)
def test_the_lazy_object_is_what_orjson_decodes_and_the_head_is_its_metadata(obj: dict[str, Any]) -> None:
    raw = orjson.dumps(obj)
    lazy = LazyObject.from_raw(raw)
    assert not lazy.decoded
    meta = lazy.meta.metadata
    for field in ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations"):
        assert getattr(meta, field) == obj["metadata"].get(field)
    assert meta.finalizers == obj["metadata"].get("finalizers")
    assert meta.ownerReferences == obj["metadata"].get("ownerReferences")
    assert lazy.object == orjson.loads(raw)
    assert lazy.object is lazy.object  # decoded once, cached
    assert lazy.raw is raw


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_objects, max_size=5),
    st.sampled_from([("ConfigMapList", "v1"), ("DeploymentList", "apps/v1"), ("Weird", "v1")]),
    st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_splitting_a_list_equals_decoding_it_and_setting_kind(
    items: list[dict[str, Any]], kinds: tuple[str, str], typed: list[bool]
) -> None:
    items = [{"kind": "Own", **item} if own else item for item, own in zip(items, typed, strict=False)]
    list_kind, api_version = kinds
    body = orjson.dumps(
        {"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": "9"}, "items": items}
    )
    expected = orjson.loads(body)
    if list_kind.endswith("List"):
        for item in expected["items"]:
            if "kind" not in item:
                item["kind"] = list_kind.removesuffix("List")
                item["apiVersion"] = api_version
    page = RawList.decode(body)
    objects = page.objects()
    assert [o.object for o in objects] == expected["items"]
    assert [orjson.loads(o.raw) for o in objects] == expected["items"]
    assert [(o.meta.kind, o.meta.apiVersion) for o in objects] == [
        (i.get("kind"), i.get("apiVersion")) for i in expected["items"]
    ]
    assert page.resource_version == "9"
    assert page.continue_token is None


def test_kind_is_injected_into_items_with_whitespace_and_empty_items() -> None:
    body = b'{"kind":"PodList","apiVersion":"v1","metadata":{"continue":"c"},"items":[ { "a" : 1 } ,{ },{}]}'
    page = RawList.decode(body)
    assert page.continue_token == "c"
    assert page.resource_version is None
    assert [o.object for o in page.objects()] == [
        {"kind": "Pod", "apiVersion": "v1", "a": 1},
        {"kind": "Pod", "apiVersion": "v1"},
        {"kind": "Pod", "apiVersion": "v1"},
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1]",
        b'{"metadata": 5}',
        b'{"metadata": {"generation": "2"}}',
        b'{"metadata":{"labels":{"a":1}}}',
    ],
)
def test_bad_objects_are_typed_errors(raw: bytes) -> None:
    with pytest.raises(ObjectDecodeError) as caught:
        LazyObject.from_raw(raw)
    assert caught.value.raw == raw
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("number", [b"1e400", b"-1e999"])
def test_numbers_orjson_rejects_fail_when_the_object_is_read(number: bytes) -> None:
    raw = b'{"metadata":{"name":"a"},"spec":{"n":' + number + b"}}"
    lazy = LazyObject.from_raw(raw)  # the head skips the number
    assert lazy.meta.metadata.name == "a"
    with pytest.raises(ObjectDecodeError):
        _ = lazy.object


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"items": 5}', b'{"items": [1, 2]', b'{"metadata": []}'])
def test_bad_list_bodies_are_typed_errors(body: bytes) -> None:
    with pytest.raises(ObjectDecodeError):
        RawList.decode(body)


def test_a_list_item_that_is_not_an_object_is_a_typed_error() -> None:
    page = RawList.decode(b'{"kind":"PodList","apiVersion":"v1","items":[{"metadata":{}}, 7]}')
    with pytest.raises(ObjectDecodeError):
        page.objects()


def test_an_object_built_from_a_dict_encodes_and_heads_on_demand() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"name": "a", "generation": 3}}
    lazy = LazyObject.from_object(obj)
    assert lazy.object is obj
    assert lazy.meta == ObjectHead(
        kind="ConfigMap", metadata=decode_head(b'{"metadata":{"name":"a","generation":3}}').metadata
    )
    assert lazy.meta.metadata.generation == 3
    assert orjson.loads(lazy.raw) == obj
    with pytest.raises(ObjectDecodeError):
        _ = LazyObject.from_object({"metadata": {"generation": "three"}}).meta
