"""Property tests of the storage core: history rollback, resumption and paging agree with a model."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.selectors import parse_label_selector
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import ADDED, DELETED, Storage

NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
OPS = st.lists(st.tuples(st.sampled_from(["put", "delete"]), NAMES, st.integers(0, 3)), max_size=40)


def _setup(history: int) -> tuple[Storage, ObjectOps, Any]:
    storage = Storage(history_size=history)
    registry = Registry()
    ops = ObjectOps(storage, registry)
    ns = registry.lookup("", "v1", "namespaces")
    assert ns is not None
    ops.create(ns, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    cm = registry.lookup("", "v1", "configmaps")
    return storage, ops, cm


def _view(records: Any) -> dict[str, str]:
    return {r.key[1]: r.obj.get("data", {}).get("v", "") for r in records}


@settings(max_examples=150, deadline=None)
@given(ops=OPS, history=st.integers(1, 50))
def test_state_at_and_events_after_match_the_model(ops: list[tuple[str, str, int]], history: int) -> None:
    storage, obj_ops, cm = _setup(history)
    coll = storage.collection(cm.storage_key)
    model: dict[str, str] = {}
    snapshots = {storage.rv: dict(model)}
    codes: list[int] = []
    for op, name, value in ops:
        if op == "delete" and name not in model:
            try:
                obj_ops.delete(cm, "default", name)
            except StatusError as exc:
                codes.append(exc.code)
            snapshots[storage.rv] = dict(model)
            continue
        if True:
            if op == "put":
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name},
                    "data": {"v": str(value)},
                }
                if name in model:
                    obj_ops.update(cm, "default", name, body)
                else:
                    obj_ops.create(cm, "default", body)
                model[name] = str(value)
            else:
                obj_ops.delete(cm, "default", name)
                del model[name]
        snapshots[storage.rv] = dict(model)
    assert set(codes) <= {404}
    assert _view(coll.objects.values()) == model
    for rv, expected in snapshots.items():
        if rv < coll.history_start_rv:
            continue
        assert _view(coll.state_at(rv).values()) == expected
        assert [r.key[1] for r in coll.snapshot(rv, storage.rv)] == sorted(expected)
        # Replaying the events after rv on top of the state at rv gives the current state.
        state = _view(coll.state_at(rv).values())
        for ev in coll.events_after(rv):
            name = ev.record.key[1]
            if ev.type == DELETED:
                del state[name]
            else:
                assert (ev.type == ADDED) == (name not in state)
                state[name] = ev.record.obj.get("data", {}).get("v", "")
        assert state == model


LABELS = st.dictionaries(st.sampled_from(["app", "tier", "x"]), st.sampled_from(["a", "b", "c"]), max_size=3)
REQUIREMENTS = st.sampled_from(
    [
        ("app=a", lambda ls: ls.get("app") == "a"),
        ("app==b", lambda ls: ls.get("app") == "b"),
        ("app!=a", lambda ls: ls.get("app") != "a"),
        ("tier in (a,b)", lambda ls: ls.get("tier") in ("a", "b")),
        ("tier notin (a,b)", lambda ls: ls.get("tier") not in ("a", "b")),
        ("x", lambda ls: "x" in ls),
        ("!x", lambda ls: "x" not in ls),
    ]
)


@settings(max_examples=200, deadline=None)
@given(labels=LABELS, reqs=st.lists(REQUIREMENTS, min_size=1, max_size=4))
def test_label_selector_matches_the_model(labels: dict[str, str], reqs: list[Any]) -> None:
    selector = parse_label_selector(",".join(text for text, _ in reqs))
    expected = all(pred(labels) for _, pred in reqs)
    assert selector.matches({"metadata": {"labels": labels}}) == expected
