"""The main trigger's stage without HTTP: scripted watcher events, a real store and Controller.

A relist must trigger reconciles only once the store shows the listed state (kube-rs's
``Controller::new`` triggers on each ``InitApply``, before its store swaps the list in).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.client.json import KubeObject
from kube_runtime.controller import Action, Controller, ObjectNotFound, Reconciled, ReconcileReason
from kube_runtime.controller import controller as controller_module
from kube_runtime.store import store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.streams import DeletedObject, WatchStream, reflect, synced_objects
from kube_runtime.watcher import Apply, Delete, Init, InitApply, InitDone, WatchFailed
from tests.controller.conftest import CONFIG_MAP, SECRET

pytestmark = pytest.mark.anyio


def cm(name: str, rv: int) -> KubeObject:
    meta = {"name": name, "namespace": "default", "resourceVersion": str(rv), "uid": name}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def version(obj: KubeObject) -> str:
    return f"{obj['metadata']['name']}{obj['metadata']['resourceVersion']}"


def ref(name: str) -> ObjectRef:
    return ObjectRef.for_resource(CONFIG_MAP, name, "default")


def listing(*objects: KubeObject) -> list[Any]:
    return [Init(), *(InitApply(obj) for obj in objects), InitDone()]


async def test_synced_objects_yield_a_relist_only_once_the_store_shows_it() -> None:
    reader, writer = store(CONFIG_MAP)
    events: list[Any] = [
        *listing(cm("a", 1), cm("b", 1), cm("c", 1)),
        WatchFailed(RuntimeError("410")),
        # The relist: "a" changed, "c" was deleted and "d" created while the watch was away.
        *listing(cm("a", 2), cm("b", 1), cm("d", 1)),
        Apply(cm("a", 3)),  # changed while the list was in progress
        Delete(cm("b", 1)),
    ]
    consumed = 0

    async def source() -> AsyncIterator[Any]:
        nonlocal consumed
        for event in events:
            consumed += 1
            yield event

    seen: list[tuple[int, str]] = []
    async for item in synced_objects(reflect(source(), writer), reader, deletes=True):
        if isinstance(item, Exception):
            seen.append((consumed, "error"))
            continue
        name = item["metadata"]["name"]
        if isinstance(item, DeletedObject):
            assert reader.get(ref(name)) is None
            seen.append((consumed, f"-{name}"))
            continue
        assert reader.get(ref(name)) == item, "yielded before the store shows it"
        seen.append((consumed, version(item)))
    assert seen == [
        (5, "a1"), (5, "b1"), (5, "c1"),  # at the first InitDone (event 5)
        (6, "error"),
        (11, "a2"), (11, "b1"), (11, "d1"),  # at the relist's InitDone: no "c", nothing before
        (12, "a3"),
        (13, "-b"),
    ]  # fmt: skip


async def test_a_large_store_is_yielded_in_batches_that_let_the_loop_run() -> None:
    reader, writer = store(CONFIG_MAP)

    async def source() -> AsyncIterator[Any]:
        for event in listing(*(cm(f"cm-{i}", 1) for i in range(1200))):
            yield event

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.lowlevel.checkpoint()
        before = ticks
        names = [item["metadata"]["name"] async for item in synced_objects(reflect(source(), writer), reader)]
        tg.cancel_scope.cancel()
    assert len(names) == 1200
    assert ticks - before >= 2  # the loop ran between batches of 500


class ScriptedWatcher:
    """Stands in for ``watcher()`` in the controller module: yields the test's events, waiting on
    the virtual clock between steps so that whatever the events triggered runs meanwhile."""

    def __init__(self, *steps: list[Any]) -> None:
        self.steps = steps
        self.done = anyio.Event()

    def __call__(self, api: Api, config: Any, *, progress: Any = None) -> WatchStream[Any]:
        return WatchStream(self._events())

    async def _events(self) -> AsyncIterator[Any]:
        for step in self.steps:
            for event in step:
                yield event
            await anyio.sleep(1)
        self.done.set()
        await anyio.sleep_forever()


async def test_a_relist_triggers_after_the_swap_and_never_reads_the_old_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """First list a, b, c. Then b is reconciling (blocked) when the relist comes: a changed, c was
    deleted and d created while the watch was away, and a changes again right after the list.
    Every reconcile from the relist on must read the relisted state or newer; d is reconciled, c
    is not (no ``ObjectNotFound``); b's running reconcile is followed by one of the new state; the
    latest version of each object is reconciled; no object runs twice at once. kube-rs's
    ``Controller::new`` (and this controller before the fix) reconciles a and d on their
    ``InitApply``, reading a's old version and ``ObjectNotFound`` for d, and never again."""
    scripted = ScriptedWatcher(
        listing(cm("a", 1), cm("b", 1), cm("c", 1)),
        [Apply(cm("b", 2))],
        [WatchFailed(RuntimeError("410 Gone")), Init(), InitApply(cm("a", 2)), InitApply(cm("b", 3))],
        [InitApply(cm("d", 1))],
        [InitDone(), Apply(cm("a", 4))],
    )
    monkeypatch.setattr(controller_module, "watcher", scripted)
    controller = Controller(Api(None, CONFIG_MAP, "default"))  # type: ignore[arg-type]  # never called
    controller.trigger_backoff(lambda: _NoBackoff())
    reconciles: list[str] = []
    running: set[str] = set()
    overlaps: list[str] = []
    b_running, release_b = anyio.Event(), anyio.Event()

    async def reconcile(obj: KubeObject, _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        if name in running:
            overlaps.append(name)
        running.add(name)
        try:
            reconciles.append(version(obj))
            if version(obj) == "b2":
                b_running.set()
                await release_b.wait()
        finally:
            running.discard(name)
        return Action.await_change()

    results: list[Any] = []
    with anyio.fail_after(600):
        async with controller.run(reconcile, None, None) as stream, anyio.create_task_group() as tg:

            async def consume() -> None:
                async for item in stream:
                    results.append(item)

            tg.start_soon(consume)
            await b_running.wait()
            relist_starts = len(reconciles)
            await scripted.done.wait()
            release_b.set()
            await anyio.sleep(10)  # quiescence on the virtual clock
            tg.cancel_scope.cancel()

    assert sorted(reconciles[: relist_starts - 1]) == ["a1", "b1", "c1"]
    assert reconciles[relist_starts - 1] == "b2"
    after = reconciles[relist_starts:]
    assert [r for r in after if r in ("a1", "c1", "b1", "b2")] == [], f"read the old state: {after}"
    assert {r[0] for r in after} == {"a", "b", "d"}
    assert [r for r in after if r.startswith("a")][-1] == "a4"
    assert [r for r in after if r.startswith("b")] == ["b3"]
    assert [r for r in after if r.startswith("d")] == ["d1"]
    assert not [item for item in results if isinstance(item, ObjectNotFound)]
    assert overlaps == []
    assert sum(isinstance(item, Reconciled) for item in results) == len(reconciles)


class _NoBackoff:
    def next(self) -> float | None:
        return 0.0

    def reset(self) -> None:
        pass


def secret(name: str, rv: int, owner: str) -> KubeObject:
    owner_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": owner}
    meta = {"name": name, "namespace": "default", "resourceVersion": str(rv), "ownerReferences": [owner_ref]}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta}


def owners(obj: KubeObject) -> list[ObjectRef]:
    return [ref(owner["name"]) for owner in obj["metadata"]["ownerReferences"]]


@pytest.mark.parametrize("relation", ["owns", "watches"])
async def test_a_related_object_deleted_while_its_watch_was_away_triggers_at_the_relist(
    relation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The related watch relists (410) without the child c1, deleted meanwhile: c1's owner p is
    reconciled as for c1's delete. kube-rs (``touched_objects`` over the relist) never triggers p:
    a relist has no deletes, and only the children still there (c2 -> q) trigger."""
    main = ScriptedWatcher(listing(cm("p", 1), cm("q", 1)))
    children = ScriptedWatcher(
        listing(secret("c1", 1, "p"), secret("c2", 1, "q")),
        [WatchFailed(RuntimeError("410 Gone")), *listing(secret("c2", 1, "q"))],
    )
    if relation == "owns":
        monkeypatch.setattr(controller_module, "watcher", main)
        monkeypatch.setattr(controller_module, "metadata_watcher", children)
    else:
        calls = iter([main, children])
        monkeypatch.setattr(controller_module, "watcher", lambda *a, **kw: next(calls)(*a, **kw))
    secrets_api = Api(None, SECRET, "default")  # type: ignore[arg-type]  # never called
    controller = Controller(Api(None, CONFIG_MAP, "default")).trigger_backoff(lambda: _NoBackoff())  # type: ignore[arg-type]
    if relation == "owns":
        controller.owns(secrets_api)
    else:
        controller.watches(secrets_api, None, owners)
    results: list[tuple[float, Any]] = []
    with anyio.fail_after(600):
        async with controller.run(await_change, None, None) as stream, anyio.create_task_group() as tg:

            async def consume() -> None:
                async for item in stream:
                    results.append((anyio.current_time(), item))

            tg.start_soon(consume)
            await children.done.wait()
            await anyio.sleep(10)  # quiescence on the virtual clock
            tg.cancel_scope.cancel()

    after_relist = [
        (item[0].name, item.reason) for at, item in results if at >= 1 and isinstance(item, Reconciled)
    ]
    c1 = ReconcileReason.related_object_updated(ObjectRef.for_resource(SECRET, "c1", "default"))
    c2 = ReconcileReason.related_object_updated(ObjectRef.for_resource(SECRET, "c2", "default"))
    assert sorted(after_relist, key=str) == sorted([("p", c1), ("q", c2)], key=str)


async def await_change(_obj: KubeObject, _ctx: None) -> Action:
    return Action.await_change()
