"""Store and Writer: atomic relist swap, lookups, readiness, indexes, and a model property test."""

from __future__ import annotations

import gc
import importlib
from types import SimpleNamespace
from typing import Any

import anyio
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client.resource import ApiResource
from kube_runtime.store import (
    FreezeAfterSync,
    ObjectRef,
    Writer,
    by_label,
    by_owner_uid,
    default_gc_policy,
    store,
)
from kube_runtime.watcher.event import INIT, INIT_DONE, Apply, Delete, InitApply

CM = ApiResource.builtin("ConfigMap")
#: The module (``kube_runtime.store.store`` names the function).
store_module = importlib.import_module("kube_runtime.store.store")
NODE = ApiResource.builtin("Node")

pytestmark = pytest.mark.anyio


def cm(name: str, ns: str | None = "ns", rv: str = "1", **meta: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "resourceVersion": rv, **meta}
    if ns:
        m["namespace"] = ns
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m}


def names(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


def test_relist_is_swapped_in_atomically() -> None:
    reader, writer = store(CM)
    for ev in (INIT, InitApply(cm("a")), InitApply(cm("b")), INIT_DONE):
        writer.apply_watcher_event(ev)
    assert names(reader.state()) == ["a", "b"]
    writer.apply_watcher_event(INIT)
    writer.apply_watcher_event(InitApply(cm("c")))
    # Readers keep seeing the previous complete state while the relist is in progress.
    assert names(reader.state()) == ["a", "b"]
    assert len(reader) == 2
    writer.apply_watcher_event(InitApply(cm("a", rv="9")))
    writer.apply_watcher_event(INIT_DONE)
    assert names(reader.state()) == ["a", "c"]
    assert reader.get(ObjectRef("ConfigMap", "a", "ns"))["metadata"]["resourceVersion"] == "9"  # type: ignore[index]


def test_an_abandoned_relist_is_discarded_by_the_next_init() -> None:
    reader, writer = store(CM)
    for ev in (INIT, InitApply(cm("stale")), INIT, InitApply(cm("fresh")), INIT_DONE):
        writer.apply_watcher_event(ev)
    assert names(reader.state()) == ["fresh"]


def test_apply_and_delete() -> None:
    reader, writer = store(CM)
    writer.apply_watcher_event(INIT_DONE)
    writer.apply_watcher_event(Apply(cm("a")))
    writer.apply_watcher_event(Apply(cm("a", rv="2")))
    assert len(reader) == 1
    assert (reader.get_by_key("a", "ns") or {})["metadata"]["resourceVersion"] == "2"
    writer.apply_watcher_event(Delete(cm("a", rv="3")))
    assert reader.is_empty()
    writer.apply_watcher_event(Delete(cm("missing")))  # no-op
    writer.apply_watcher_event(Apply({"metadata": {}}))  # no name: ignored
    assert len(reader) == 0


def test_get_falls_back_to_cluster_scope_only() -> None:
    reader, writer = store(NODE)
    writer.apply_watcher_event(INIT)
    writer.apply_watcher_event(InitApply({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1"}}))
    writer.apply_watcher_event(INIT_DONE)
    assert reader.get(ObjectRef("Node", "n1")) is not None
    # A ref built with a namespace still finds a cluster-scoped object (kube-rs fallback).
    assert reader.get(ObjectRef("Node", "n1", "somens")) is not None
    assert reader.get(ObjectRef("Pod", "n1")) is None  # another kind

    cms, cm_writer = store(CM)
    cm_writer.apply_watcher_event(Apply(cm("a")))
    assert cms.get(ObjectRef("ConfigMap", "a")) is None  # namespaced object, cluster-scoped ref
    assert ObjectRef("ConfigMap", "a", "ns") in cms


def test_find_and_filters() -> None:
    reader, writer = store(CM)
    for i in range(5):
        writer.apply_watcher_event(Apply(cm(f"o{i}", labels={"even": str(i % 2 == 0)})))
    assert reader.find(lambda o: o["metadata"]["name"] == "o3") is not None
    assert reader.find(lambda o: False) is None
    assert len(reader.state_filter(lambda o: o["metadata"]["labels"]["even"] == "True")) == 3
    assert len(list(reader)) == 5
    assert len(reader.keys()) == 5


async def test_readiness_after_first_init_done_only() -> None:
    reader, writer = store(CM)
    assert not reader.is_ready()
    done: list[bool] = []

    async def wait() -> None:
        await reader.wait_until_ready()
        done.append(True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.01)
        writer.apply_watcher_event(INIT)
        writer.apply_watcher_event(InitApply(cm("a")))
        await anyio.sleep(0.01)
        assert not done
        assert not reader.is_ready()
        writer.apply_watcher_event(INIT_DONE)
    assert done
    assert reader.is_ready()
    writer.apply_watcher_event(INIT)  # a relist never un-readies the store
    assert reader.is_ready()
    await reader.wait_until_ready()


def test_indexes_follow_apply_delete_and_swap() -> None:
    reader, writer = store(CM)
    writer.apply_watcher_event(Apply(cm("pre", labels={"app": "web"})))
    writer.add_index("app", by_label("app"))
    writer.add_index("owner", by_owner_uid)
    writer.add_index("first-letter", lambda o: [o["metadata"]["name"][0]])
    assert names(reader.index("app", "web")) == ["pre"]
    owned = cm("child", labels={"app": "db"}, ownerReferences=[{"uid": "p1"}, {"uid": "p2"}])
    writer.apply_watcher_event(Apply(owned))
    assert names(reader.index("owner", "p2")) == ["child"]
    assert names(reader.index("app", "db")) == ["child"]
    writer.apply_watcher_event(Apply(cm("child", labels={"app": "web"})))  # label changed, owners dropped
    assert reader.index("app", "db") == []
    assert reader.index("owner", "p1") == []
    assert names(reader.index("app", "web")) == ["child", "pre"]
    writer.apply_watcher_event(Delete(cm("pre")))
    assert names(reader.index("app", "web")) == ["child"]
    assert names(reader.index("first-letter", "c")) == ["child"]
    for ev in (INIT, InitApply(cm("new", labels={"app": "web"})), INIT_DONE):
        writer.apply_watcher_event(ev)
    assert names(reader.index("app", "web")) == ["new"]
    assert reader.index_values("app") == ["web"]
    with pytest.raises(KeyError):
        reader.index("nope", "x")


def test_stores_are_compact_by_default_and_only_dict_stores_get_the_gc_policy() -> None:
    reader, writer = store(CM)
    assert writer.compact
    assert writer._gc_policy is None
    assert Writer(CM).compact
    dict_reader, dict_writer = store(CM, compact=False)
    assert not dict_writer.compact
    assert dict_writer._gc_policy is default_gc_policy()
    for w in (writer, dict_writer):
        w.apply_watcher_event(Apply(cm("a", labels={"x": "1"})))
    got = reader.get(ObjectRef("ConfigMap", "a", "ns"))
    assert got is not None
    got["metadata"]["labels"]["x"] = "mutated"  # a private copy: the cache is untouched
    assert reader.get_by_key("a", "ns") == cm("a", labels={"x": "1"})
    assert dict_reader.get_by_key("a", "ns") is dict_reader.get(ObjectRef("ConfigMap", "a", "ns"))


def test_membership_never_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    reader, writer = store(CM)
    writer.apply_watcher_event(Apply(cm("a")))
    monkeypatch.setattr(store_module, "orjson", None)  # any decode would fail
    assert ObjectRef("ConfigMap", "a", "ns") in reader
    assert ObjectRef("ConfigMap", "b", "ns") not in reader
    assert ObjectRef("Pod", "a", "ns") not in reader


@pytest.mark.parametrize("compact", [False, True], ids=["dicts", "compact"])
def test_iterating_is_a_snapshot_decoded_one_object_at_a_time(
    compact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = store(CM, compact=compact, gc_policy=None)
    for name in ("a", "b", "c"):
        writer.apply_watcher_event(Apply(cm(name)))
    decoded: list[Any] = []
    real = orjson.loads
    monkeypatch.setattr(store_module.orjson, "loads", lambda raw: decoded.append(raw) or real(raw))
    objects = iter(reader)
    writer.apply_watcher_event(Delete(cm("b")))
    writer.apply_watcher_event(Apply(cm("d")))
    assert next(objects) == cm("a")
    assert len(decoded) == (1 if compact else 0)  # not the whole store up front
    assert [o["metadata"]["name"] for o in objects] == ["b", "c"]  # as it was when iteration began


@pytest.mark.parametrize("compact", [False, True], ids=["dicts", "compact"])
def test_a_relist_builds_its_indexes_as_it_fills_without_decoding(
    compact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = store(CM, gc_policy=None, compact=compact)
    writer.add_index("app", by_label("app"))
    writer.apply_watcher_event(Apply(cm("old", labels={"app": "web"})))
    writer.apply_watcher_event(INIT)
    writer.apply_watcher_event(InitApply(cm("a", labels={"app": "web"})))
    writer.add_index("owner", by_owner_uid)  # added mid-relist: covers the buffer too
    writer.apply_watcher_event(InitApply(cm("b", labels={"app": "db"}, ownerReferences=[{"uid": "u"}])))
    writer.apply_watcher_event(InitApply(cm("a", labels={"app": "db"})))  # listed twice: the last wins
    assert names(reader.index("app", "web")) == ["old"]  # the relist is not visible yet
    assert reader.index("owner", "u") == []
    decoded: list[bytes] = []
    counting = SimpleNamespace(loads=lambda b: decoded.append(b) or orjson.loads(b), dumps=orjson.dumps)
    monkeypatch.setattr(store_module, "orjson", counting)
    writer.apply_watcher_event(INIT_DONE)
    assert not decoded  # the swap decodes nothing
    assert names(reader.index("app", "db")) == ["a", "b"]
    assert reader.index("app", "web") == []
    assert names(reader.index("owner", "u")) == ["b"]


def test_gc_policy_freezes_large_stores_after_sync_and_every_so_many_writes() -> None:
    policy = FreezeAfterSync(min_objects=50, refreeze_writes=10)
    _reader, writer = store(CM, gc_policy=policy, compact=False)
    try:
        writer.apply_watcher_event(INIT)
        for i in range(20):
            writer.apply_watcher_event(InitApply(cm(f"s{i}")))
        writer.apply_watcher_event(INIT_DONE)
        assert policy.freezes == 0  # small store: the collector is left alone
        writer.apply_watcher_event(INIT)
        for i in range(49):
            writer.apply_watcher_event(InitApply(cm(f"o{i}")))
        assert policy.freezes == 0
        writer.apply_watcher_event(InitApply(cm("o49")))
        assert policy.freezes == 1  # the relist reached min_objects: frozen while it fills
        for i in range(50, 60):
            writer.apply_watcher_event(InitApply(cm(f"o{i}")))
        assert policy.freezes == 2
        writer.apply_watcher_event(INIT_DONE)
        assert policy.freezes == 3  # and after the sync
        assert gc.get_freeze_count() > 0
        for i in range(9):
            writer.apply_watcher_event(Apply(cm(f"o{i}", rv="2")))
        writer.apply_watcher_event(Delete(cm("o0")))  # deletes leave nothing new alive: not counted
        assert policy.freezes == 3
        writer.apply_watcher_event(Apply(cm("o9", rv="2")))
        assert policy.freezes == 4  # a fixed cadence, whatever the store's size
    finally:
        gc.unfreeze()


def test_gc_policy_rejects_a_zero_cadence() -> None:
    with pytest.raises(ValueError, match="refreeze_writes"):
        FreezeAfterSync(refreeze_writes=0)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("apply"), st.sampled_from("abcde"), st.integers(0, 9)),
        st.tuples(st.just("delete"), st.sampled_from("abcde"), st.just(0)),
        st.tuples(st.just("relist"), st.lists(st.sampled_from("abcde"), unique=True), st.booleans()),
    ),
    max_size=60,
)


@pytest.mark.parametrize("compact", [False, True], ids=["dicts", "compact"])
@settings(max_examples=200, deadline=None)
@given(ops)
def test_store_matches_dict_model(compact: bool, operations: list[tuple[Any, ...]]) -> None:
    reader, writer = store(CM, gc_policy=None, compact=compact)
    writer.add_index("v", lambda o: [o["metadata"]["resourceVersion"]])
    model: dict[str, str] = {}
    for op, arg, extra in operations:
        if op == "apply":
            writer.apply_watcher_event(Apply(cm(arg, rv=str(extra))))
            model[arg] = str(extra)
        elif op == "delete":
            writer.apply_watcher_event(Delete(cm(arg)))
            model.pop(arg, None)
        else:
            writer.apply_watcher_event(INIT)
            for name in arg:
                writer.apply_watcher_event(InitApply(cm(name, rv="r")))
            if extra:  # completed relist; otherwise abandoned and invisible
                writer.apply_watcher_event(INIT_DONE)
                model = dict.fromkeys(arg, "r")
            else:
                writer.apply_watcher_event(INIT)  # the next list starts over
                writer.apply_watcher_event(INIT_DONE)
                model = {}
        got = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in reader.state()}
        assert got == model
        for value in set(model.values()):
            assert names(reader.index("v", value)) == sorted(k for k, v in model.items() if v == value)


def test_compact_store_keeps_encoded_objects_the_collector_does_not_trace() -> None:
    reader, writer = store(CM)
    writer.add_index("owner", by_owner_uid)
    owned = cm("a", ownerReferences=[{"uid": "u1", "kind": "X", "name": "x", "apiVersion": "v1"}])
    for event in (INIT, InitApply(owned), InitApply(cm("b")), INIT_DONE, Apply(cm("c", ns=None))):
        writer.apply_watcher_event(event)
    stored = list(writer._cache.objects.values())  # the stored form itself
    assert all(isinstance(value, bytes) for value in stored)
    assert not any(gc.is_tracked(value) for value in stored)
    got = reader.get(ObjectRef("ConfigMap", "a", "ns"))
    assert got == owned
    assert got is not reader.get(ObjectRef("ConfigMap", "a", "ns"))  # a fresh decode per read
    assert reader.get(ObjectRef("ConfigMap", "c", "ns")) == cm("c", ns=None)  # cluster-scope fallback
    assert names(reader.index("owner", "u1")) == ["a"]
    assert reader.find(lambda o: o["metadata"]["name"] == "b") == cm("b")
    assert names(reader.state()) == ["a", "b", "c"]
    assert writer._gc_policy is None  # nothing for a GC policy to do
