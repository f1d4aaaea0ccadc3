"""The controller's main trigger reads heads: lazy synced objects, refs from heads, no decoding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from kube_runtime import predicates
from kube_runtime.client.head import LazyObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import DEFAULT_PRIORITY, LOW_PRIORITY, ReconcileRequest
from kube_runtime.controller.triggers import trigger_owners, trigger_self
from kube_runtime.store import ObjectRef, store
from kube_runtime.streams import (
    DeletedLazyObject,
    ListedLazyObject,
    PredicateMemory,
    predicate_filter,
    reflect,
    synced_objects,
)
from kube_runtime.watcher.event import INIT, INIT_DONE, Apply, Delete, InitApply

CM = ApiResource.builtin("ConfigMap")


@pytest.fixture
def anyio_backend() -> Any:
    return "asyncio"


def lazy(name: str, rv: str, generation: int = 1) -> LazyObject:
    meta = {
        "name": name,
        "namespace": "ns",
        "uid": f"u-{name}",
        "resourceVersion": rv,
        "generation": generation,
    }
    return LazyObject.from_raw(orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}))


async def _events(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def test_a_ref_from_the_head_is_the_ref_from_the_object() -> None:
    obj = lazy("a", "7")
    for resource in (None, CM):
        from_head = ObjectRef.from_head(obj.meta, resource)
        from_obj = ObjectRef.from_obj(obj.object, resource)
        assert from_head == from_obj
        assert (from_head.uid, from_head.resource_version) == (from_obj.uid, from_obj.resource_version)
    with pytest.raises(ValueError, match="name"):
        ObjectRef.from_head(LazyObject.from_raw(b'{"metadata":{}}').meta)


async def test_lazy_synced_objects_trigger_from_heads_without_decoding() -> None:
    reader, writer = store(CM)
    listed, changed, gone = lazy("a", "1"), lazy("b", "2"), lazy("b", "3")
    events = [INIT, InitApply(listed), INIT_DONE, Apply(changed), Delete(gone)]
    deleted: list[ObjectRef] = []
    synced = synced_objects(reflect(_events(events), writer), reader, deletes=True, lazy=True)
    items = [item async for item in synced]
    assert [type(i) for i in items] == [ListedLazyObject, LazyObject, DeletedLazyObject]
    reader2, writer2 = store(CM)
    stream = synced_objects(reflect(_events(events), writer2), reader2, deletes=True, lazy=True)
    requests = [r async for r in trigger_self(stream, CM, on_delete=deleted.append)]
    assert all(isinstance(r, ReconcileRequest) for r in requests)
    assert [(r.obj_ref.name, r.priority) for r in requests] == [("a", LOW_PRIORITY), ("b", DEFAULT_PRIORITY)]
    assert [ref.name for ref in deleted] == ["b"]
    assert not changed.decoded
    assert not gone.decoded
    assert not listed.decoded


async def test_a_predicate_over_lazy_synced_objects_never_drops_a_delete() -> None:
    reader, writer = store(CM)
    events = [
        INIT,
        INIT_DONE,
        Apply(lazy("a", "2")),
        Apply(lazy("a", "3")),
        Delete(lazy("a", "4")),
        Apply(lazy("a", "5")),
    ]
    stream = predicate_filter(
        synced_objects(reflect(_events(events), writer), reader, deletes=True, lazy=True),
        predicates.generation,
    )
    items = [item async for item in stream]
    assert [(type(i).__name__, i.meta.metadata.resourceVersion) for i in items] == [
        ("LazyObject", "2"),
        ("DeletedLazyObject", "4"),
        ("LazyObject", "5"),
    ]
    assert not any(i.decoded for i in items)


async def test_owners_trigger_from_child_heads_and_deletes_always_pass() -> None:
    parent = ApiResource.builtin("ConfigMap")
    child = ApiResource.builtin("Secret")

    def secret(rv: str, generation: int = 1) -> LazyObject:
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "p", "uid": "u-p", "controller": True}
        meta = {
            "name": "c",
            "namespace": "ns",
            "uid": "u-c",
            "resourceVersion": rv,
            "generation": generation,
            "ownerReferences": [owner],
        }
        return LazyObject.from_raw(orjson.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": meta}))

    children = [secret("1"), secret("2"), secret("3"), secret("4")]
    events = [
        INIT,
        InitApply(children[0]),
        INIT_DONE,
        Apply(children[1]),
        Apply(children[2]),
        Delete(children[3]),
    ]
    memory = PredicateMemory(predicates.generation)
    requests = [r async for r in trigger_owners(_events(events), parent, child, memory)]
    assert all(isinstance(r, ReconcileRequest) for r in requests)
    # The listed child, then its delete: the unchanged-generation updates are filtered.
    assert [(r.obj_ref.name, r.obj_ref.namespace, r.priority) for r in requests] == [
        ("p", "ns", LOW_PRIORITY),
        ("p", "ns", DEFAULT_PRIORITY),
    ]
    assert not any(c.decoded for c in children)


async def test_trigger_self_yields_a_nameless_object_or_a_failing_delete_listener_and_goes_on() -> None:
    from kube_runtime.streams import DeletedObject, ListedObject

    def refuse(ref: ObjectRef) -> None:
        raise RuntimeError(f"listener refused {ref.name}")

    nameless = LazyObject.from_raw(b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"namespace":"ns"}}')
    items: list[Any] = [
        nameless,
        DeletedLazyObject.from_raw(lazy("gone", "2").raw),
        KeyError("a source error passes through"),
        {"metadata": {"namespace": "ns"}},
        DeletedObject({"metadata": {"name": "gone-dict", "namespace": "ns"}}),
        ListedObject({"metadata": {"name": "listed", "namespace": "ns"}}),
        lazy("c", "3"),
    ]
    out = [r async for r in trigger_self(_events(items), CM, on_delete=refuse)]
    assert [type(r) for r in out] == [
        ValueError,
        RuntimeError,
        KeyError,
        ValueError,
        RuntimeError,
        ReconcileRequest,
        ReconcileRequest,
    ]
    assert "gone" in str(out[1])
    assert "gone-dict" in str(out[4])
    assert [(r.obj_ref.name, r.priority) for r in out[5:]] == [
        ("listed", LOW_PRIORITY),
        ("c", DEFAULT_PRIORITY),
    ]
