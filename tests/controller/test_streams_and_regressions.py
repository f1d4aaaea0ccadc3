"""Controllers over caller-supplied streams and shared stores, and kube-rs regressions."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.client.json import KubeObject
from kube_runtime.controller import Action, Controller, QueueError, Reconciled, ReconcileReason
from kube_runtime.store import SharedReflector, store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.watcher import Init, InitApply, InitDone, WatcherConfig, WatchFailed, watcher
from tests.controller.conftest import CONFIG_MAP, config_map, take_until

pytestmark = pytest.mark.anyio


def synthetic(name: str) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1", "uid": name},
    }


async def listed(writer: Any, objects: list[KubeObject]) -> AsyncIterator[Any]:
    """A main stream that reflects one complete list and then stays open."""
    writer.apply_watcher_event(Init())
    for obj in objects:
        writer.apply_watcher_event(InitApply(obj))
    writer.apply_watcher_event(InitDone())
    for obj in objects:
        yield obj
    yield WatchFailed(RuntimeError("synthetic"))
    await anyio.sleep_forever()


async def test_applier_does_not_deadlock_when_the_requeue_buffer_is_full() -> None:
    """kube-rs #926: with more objects than the requeue buffer (100) all requeueing at once, the
    applier deadlocked. 5,000 objects x 3 reconciles, unbounded concurrency, must all complete."""
    reader, writer = store(CONFIG_MAP)
    objects = [synthetic(f"cm-{i}") for i in range(5000)]
    counts: dict[str, int] = {}

    async def reconcile(obj: KubeObject, ctx: Any) -> Action:
        name = obj["metadata"]["name"]
        counts[name] = counts.get(name, 0) + 1
        return Action.requeue(0) if counts[name] < 3 else Action.await_change()

    controller = Controller.for_stream(CONFIG_MAP, listed(writer, objects), reader).with_config(concurrency=0)
    started = time.perf_counter()
    with anyio.fail_after(600):
        async with controller.run(reconcile, None, None) as results:
            reconciled = 0
            async for item in results:
                if isinstance(item, Reconciled):
                    reconciled += 1
                    if reconciled == 15_000:
                        break
                else:
                    assert isinstance(item, QueueError)
    elapsed = time.perf_counter() - started
    assert set(counts.values()) == {3}
    assert len(counts) == 5000
    print(f"\n#926 regression: 15,000 reconciles in {elapsed:.2f} s wall ({15_000 / elapsed:,.0f}/s)")


async def test_reasons_are_kept_by_the_earliest_request() -> None:
    """kube-rs #1114: the reason used to latch on to "reconciler requested retry"."""
    reader, writer = store(CONFIG_MAP)
    ref = ObjectRef.for_resource(CONFIG_MAP, "a", "default")
    bump = anyio.Event()

    async def refs() -> AsyncIterator[ObjectRef]:
        await bump.wait()
        yield ref
        await anyio.sleep_forever()

    async def reconcile(obj: KubeObject, ctx: Any) -> Action:
        return Action.requeue(100)

    controller = Controller.for_stream(CONFIG_MAP, listed(writer, [synthetic("a")]), reader).reconcile_on(
        refs()
    )

    def reconciled(items: list[Any]) -> list[Reconciled]:
        # The trigger stream's QueueError may come before or after any of them.
        return [i for i in items if isinstance(i, Reconciled)]

    async with controller.run(reconcile, None, None) as results:
        first = await take_until(results, lambda items: len(reconciled(items)) == 1)
        assert str(reconciled(first)[0].reason) == "object updated"
        bump.set()  # a new request now must win over the requeue 100 s away
        items = await take_until(results, lambda items: len(reconciled(items)) == 1)
        later = await take_until(results, lambda items: len(reconciled(items)) == 1, within=200)
    assert [str(reconciled(items)[0].reason), str(reconciled(later)[0].reason)] == [
        "unknown",
        "reconciler requested retry",
    ]


async def test_controllers_share_one_store(config_maps: Api) -> None:
    """Two controllers on one watch and one cache (kube-rs #1080)."""
    await config_maps.create(config_map("a"))
    reader, writer = store(CONFIG_MAP)
    seen: dict[str, list[str]] = {"one": [], "two": []}

    def reconciler(name: str) -> Any:
        async def reconcile(obj: KubeObject, ctx: Any) -> Action:
            seen[name].append(obj["metadata"]["name"])
            return Action.await_change()

        return reconcile

    stream = watcher(config_maps, WatcherConfig()).default_backoff()
    async with SharedReflector(writer, stream) as shared:
        one = Controller.for_shared(shared, CONFIG_MAP, name="one")
        two = Controller.for_shared(shared, name="two")
        async with one.run(reconciler("one"), None, None) as r1, two.run(reconciler("two"), None, None) as r2:
            await config_maps.create(config_map("b"))
            async with anyio.create_task_group() as tg:

                async def drain(results: Any) -> None:
                    await take_until(results, lambda items: len(items) >= 1 and "b" in str(items))

                tg.start_soon(drain, r1)
                tg.start_soon(drain, r2)
    assert "b" in seen["one"]
    assert "b" in seen["two"]
    assert reader.get(ObjectRef.for_resource(CONFIG_MAP, "b", "default")) is not None


def test_reason_display_strings() -> None:
    ref = ObjectRef.for_resource(CONFIG_MAP, "x", "ns")
    assert [
        str(r)
        for r in (
            ReconcileReason.UNKNOWN,
            ReconcileReason.OBJECT_UPDATED,
            ReconcileReason.related_object_updated(ref),
            ReconcileReason.RECONCILER_REQUESTED_RETRY,
            ReconcileReason.ERROR_POLICY_REQUESTED_RETRY,
            ReconcileReason.BULK_RECONCILE,
            ReconcileReason.custom("my reason"),
        )
    ] == [
        "unknown",
        "object updated",
        "related object updated: ConfigMap.v1./x.ns",
        "reconciler requested retry",
        "error policy requested retry",
        "bulk reconcile requested",
        "my reason",
    ]


def test_action_requeue_is_clamped_and_validated() -> None:
    assert Action.requeue(1e12).requeue_after == 180 * 24 * 3600
    assert Action.await_change().requeue_after is None
    with pytest.raises(ValueError, match="negative"):
        Action.requeue(-1)
    assert Action.requeue(float("inf")).requeue_after == 180 * 24 * 3600


@pytest.mark.parametrize(
    "make",
    [
        lambda: Action.requeue(float("nan")),
        lambda: Action(float("nan")),  # made directly, as a dataclass
        lambda: Action(-1.0),
        lambda: Action.requeue(1).with_timeout(float("nan")),
        lambda: Action(None, timeout=0.0),
    ],
)
def test_an_action_with_a_nan_or_negative_delay_or_timeout_cannot_be_made(make: Any) -> None:
    """A NaN requeue delay compares false with every deadline: it used to reach the scheduler's
    heap and break its order, and unrelated objects lost their requeues."""
    with pytest.raises(ValueError, match=r"non-negative number|positive"):
        make()
