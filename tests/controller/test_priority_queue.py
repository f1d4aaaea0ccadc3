"""The priority queue end to end: which triggers ask for low priority, requeue priorities, and a
live change overtaking a listed backlog through the embedded API server (virtual clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, ControllerConfig
from kube_runtime.controller.action import DEFAULT_PRIORITY, LOW_PRIORITY, ReconcileRequest
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.metrics import QueueMetrics
from kube_runtime.controller.reconcile import ReconcileAttempts
from kube_runtime.controller.scheduler import Due
from kube_runtime.controller.triggers import trigger_owners, trigger_self
from kube_runtime.store import store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.streams import ListedObject, reflect, synced_objects
from kube_runtime.watcher import Apply, Init, InitApply, InitDone
from tests.controller.conftest import CONFIG_MAP, SECRET, config_map, take_until

pytestmark = pytest.mark.anyio


def cm(name: str, rv: str = "1", owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": rv, "uid": name}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Secret", "name": owner, "uid": owner}]
    return {"metadata": meta}


async def _events(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def test_relisted_objects_are_low_priority_live_changes_are_not() -> None:
    reader, writer = store(CONFIG_MAP)
    events = _events(Init(), InitApply(cm("a")), InitApply(cm("b")), InitDone(), Apply(cm("a", "2")))
    requests = [r async for r in trigger_self(synced_objects(reflect(events, writer), reader), CONFIG_MAP)]
    assert all(isinstance(r, ReconcileRequest) for r in requests)
    got = sorted((r.obj_ref.name, r.priority) for r in requests if isinstance(r, ReconcileRequest))
    assert got == sorted([("a", DEFAULT_PRIORITY), ("a", LOW_PRIORITY), ("b", LOW_PRIORITY)])


async def test_synced_objects_marks_only_the_relist() -> None:
    reader, writer = store(CONFIG_MAP)
    events = _events(Init(), InitApply(cm("a")), InitDone(), Apply(cm("a", "2")))
    items = [o async for o in synced_objects(reflect(events, writer), reader)]
    assert [type(o) for o in items] == [ListedObject, dict]
    assert items[0] == cm("a")  # a plain copy of the stored object


async def test_owner_triggers_from_a_relist_are_low_priority_missed_deletes_are_not() -> None:
    events = _events(
        Init(),
        InitApply(cm("child-1", owner="s1")),
        InitApply(cm("child-2", owner="s2")),
        InitDone(),
        Apply(cm("child-1", "2", owner="s1")),
        Init(),  # a relist without child-2: its delete was missed
        InitApply(cm("child-1", "2", owner="s1")),
        InitDone(),
    )
    requests = [r async for r in trigger_owners(events, SECRET, CONFIG_MAP)]
    got = [(r.obj_ref.name, r.priority) for r in requests if isinstance(r, ReconcileRequest)]
    assert got == [
        ("s1", LOW_PRIORITY),
        ("s2", LOW_PRIORITY),
        ("s1", DEFAULT_PRIORITY),
        ("s1", LOW_PRIORITY),
        ("s2", DEFAULT_PRIORITY),
    ]


def test_action_priority() -> None:
    action = Action.requeue(5).with_priority(LOW_PRIORITY)
    assert (action.requeue_after, action.priority) == (5.0, LOW_PRIORITY)
    assert repr(action) == "Action.requeue(5.0).with_priority(-100)"
    assert Action.await_change().priority is None


async def _order_of_reconciles(config_maps: Api, *, priority_queue: bool) -> list[str]:
    """20 listed objects, one worker, 1 s per reconcile; cm-19 changes after the first start."""
    for i in range(20):
        await config_maps.create(config_map(f"cm-{i:02}"))
    order: list[str] = []
    first = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        order.append(f"{obj['metadata']['name']}:{(obj.get('data') or {}).get('v', '')}")
        first.set()
        await anyio.sleep(1)
        return Action.await_change()

    config = ControllerConfig(concurrency=1, priority_queue=priority_queue)

    async def write() -> None:
        await first.wait()
        await config_maps.patch("cm-19", {"data": {"v": "live"}})

    controller = Controller(config_maps).with_config(config)
    async with controller.run(reconcile, None, None) as results, anyio.create_task_group() as tg:
        tg.start_soon(write)
        await take_until(results, lambda items: "cm-19:live" in order and len(items) >= 20, within=120)
    assert all(isinstance(item, str) for item in order)
    return order


async def test_a_live_change_overtakes_the_listed_backlog(config_maps: Api) -> None:
    order = await _order_of_reconciles(config_maps, priority_queue=True)
    assert order.index("cm-19:live") == 1  # right after the reconcile that was running
    assert "cm-19:" not in order  # its listed entry was raised, not run twice


async def test_without_the_priority_queue_it_waits_its_turn(config_maps: Api) -> None:
    order = await _order_of_reconciles(config_maps, priority_queue=False)
    assert order.index("cm-19:live") == 19


@pytest.mark.parametrize(
    ("outcome", "want"),
    [
        (Action.requeue(1), LOW_PRIORITY),
        (Action.requeue(1).with_priority(5), 5),
        (RuntimeError("boom"), LOW_PRIORITY),
    ],
)
async def test_a_requeue_keeps_the_priority_it_ran_at_unless_the_action_names_one(
    outcome: Action | Exception, want: int
) -> None:
    reader, writer = store(CONFIG_MAP)
    writer.apply_watcher_event(Apply(cm("a")))
    requeued: list[tuple[ReconcileRequest, float, int]] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    attempts: ReconcileAttempts[None] = ReconcileAttempts(
        name="prio",
        store=reader,
        reconcile=reconcile,
        error_policy=None,
        context=None,
        error_backoff=ReconcileBackoff(),
        decode=None,
        metrics=QueueMetrics("prio", CollectorRegistry()),
        clock=anyio.current_time,
        requeue=lambda request, run_at, priority: requeued.append((request, run_at, priority)),
    )
    request = ReconcileRequest(ObjectRef.from_obj(cm("a"), CONFIG_MAP), priority=LOW_PRIORITY)
    await attempts(request, Due(request, 0.0, LOW_PRIORITY))
    ((again, _, priority),) = requeued
    assert (priority, again.priority) == (want, want)
