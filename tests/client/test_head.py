"""Object heads, lazy objects and raw list pages (kube_runtime.client.head)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client.api import _partial_metadata_list
from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.client.head import LazyObject, ObjectHead, RawList, decode_head
from kube_runtime.watcher.state import _fill_type

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


_ABSENT: Any = object()
#: What a metadata-only list item's ``metadata`` may be besides a real map: falsy values become {}.
_odd_metadata = st.sampled_from([_ABSENT, None, {}, 0, False, "", []])


def _listed_as_list_metadata_decodes(body: bytes) -> list[dict[str, Any]]:
    """The items ``Api.list_metadata`` returns for ``body`` (sent without the metadata content
    type), as ``metadata_watcher`` hands them on (kind filled in from the List when missing)."""
    listing = _partial_metadata_list(orjson.loads(body))
    items: list[dict[str, Any]] = listing.get("items") or []
    _fill_type(listing, items)
    return items


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_objects, st.sampled_from(["none", "partial", "own"]), _odd_metadata | _metadata)),
    st.sampled_from([("ConfigMapList", "v1"), ("PartialObjectMetadataList", "meta.k8s.io/v1"), ("X", "v1")]),
)
def test_cutting_a_raw_list_to_metadata_equals_cutting_the_decoded_list(
    items: list[tuple[dict[str, Any], str, Any]], kinds: tuple[str, str]
) -> None:
    list_kind, api_version = kinds
    shaped: list[dict[str, Any]] = []
    # Items kept verbatim (the List or the item is already PartialObjectMetadata) with a falsy
    # non-map metadata: the decoded List passes them on, the raw one rejects them as list_raw does.
    malformed = False
    for obj, kind, metadata in items:
        item = dict(obj)
        if kind == "partial":
            item["kind"] = "PartialObjectMetadata"
        elif kind == "own":
            item["kind"] = "Own"
        if metadata is _ABSENT:
            del item["metadata"]
        else:
            item["metadata"] = metadata
            verbatim = kind == "partial" or list_kind == "PartialObjectMetadataList"
            malformed = malformed or (verbatim and not isinstance(metadata, dict))
        shaped.append(item)
    listing = {"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": "5"}}
    body = orjson.dumps({**listing, "items": shaped})
    page = RawList.decode(body).partial_metadata()
    assert page.metadata == {"resourceVersion": "5"}
    if list_kind != "PartialObjectMetadataList":
        assert (page.kind, page.apiVersion) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    if malformed:
        with pytest.raises(ObjectDecodeError):
            page.objects()
    else:
        assert [o.object for o in page.objects()] == _listed_as_list_metadata_decodes(body)


def test_cutting_keeps_the_metadata_bytes_and_skips_the_rest() -> None:
    body = (
        b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"3"},"items":['
        b'{"metadata" : {"name":"a","labels":{"x":"y"}} ,"data":{"big":"' + b"z" * 1000 + b'","n":1e400}},'
        b'{"data":{}},{"kind":"PartialObjectMetadata","metadata":{"name":"c"},"data":{"kept":true}}]}'
    )
    page = RawList.decode(body).partial_metadata()
    first, second, third = page.objects()
    assert first.raw == (
        b'{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",'
        b'"metadata":{"name":"a","labels":{"x":"y"}}}'
    )
    assert not first.decoded
    assert first.meta.metadata.labels == {"x": "y"}
    assert second.object == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {}}
    assert third.object == {
        "kind": "PartialObjectMetadata",
        "metadata": {"name": "c"},
        "data": {"kept": True},
    }


@pytest.mark.parametrize(
    "item",
    [b"7", b'"x"', b"[1]", b'{"metadata":"x"}', b'{"metadata":[1]}', b'{"metadata":{"generation":"2"}}'],
)
def test_a_malformed_item_cut_to_metadata_is_a_typed_error_from_objects(item: bytes) -> None:
    body = b'{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[{"metadata":{}},' + item + b"]}"
    page = RawList.decode(body).partial_metadata()  # never raises: objects() reports bad items
    with pytest.raises(ObjectDecodeError):
        page.objects()
    with pytest.raises(ObjectDecodeError):
        RawList.decode(body.replace(b"ConfigMapList", b"PartialObjectMetadataList")).objects()


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
