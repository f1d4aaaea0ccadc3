"""The Controller end to end against the embedded API server (over loopback HTTP), on virtual time."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import (
    Action,
    Controller,
    ObjectNotFound,
    QueueError,
    ReconcileBackoff,
    Reconciled,
    ReconcileReason,
    ReconcilerFailed,
    current_reconcile,
)
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import ExponentialBackoff, WatcherConfig
from tests.controller.conftest import CONFIG_MAP, SECRET, config_map, take_until

pytestmark = pytest.mark.anyio


def cm_ref(name: str) -> ObjectRef:
    return ObjectRef.for_resource(CONFIG_MAP, name, "default")


async def await_change(obj: dict[str, Any], ctx: Any) -> Action:
    return Action.await_change()


def names(items: list[Any]) -> list[str]:
    return [item[0].name for item in items if isinstance(item, Reconciled)]


async def test_reconciles_listed_and_new_objects(config_maps: Api) -> None:
    for name in ("a", "b", "c"):
        await config_maps.create(config_map(name))
    controller = Controller(config_maps, WatcherConfig())
    async with controller.run(await_change, None, None) as results:
        first = await take_until(results, lambda items: len(items) == 3)
        assert sorted(names(first)) == ["a", "b", "c"]
        assert all(str(item.reason) == "object updated" for item in first)
        await config_maps.create(config_map("d"))
        await config_maps.patch("a", {"data": {"k": "v"}})
        later = await take_until(results, lambda items: len(items) == 2)
        assert sorted(names(later)) == ["a", "d"]


async def test_a_compact_store_hands_reconcilers_the_same_objects(config_maps: Api) -> None:
    for name in ("a", "b"):
        await config_maps.create(config_map(name, k=name))
    seen: dict[str, dict[str, Any]] = {}

    async def record(obj: dict[str, Any], ctx: Any) -> Action:
        seen[obj["metadata"]["name"]] = obj
        return Action.await_change()

    controller = Controller(config_maps, WatcherConfig())  # compact by default
    async with controller.run(record, None, None) as results:
        await take_until(results, lambda items: len(items) == 2)
        await config_maps.patch("a", {"data": {"k": "changed"}})
        await take_until(results, lambda items: len(items) == 1)
    assert seen["a"]["data"] == {"k": "changed"}
    assert seen["b"] == await config_maps.get("b")
    assert controller.store.get(cm_ref("a")) == seen["a"]
    assert controller.store.get(cm_ref("a")) is not controller.store.get(cm_ref("a"))  # decoded per read


async def test_result_items_unpack_as_kube_rs_tuples(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))

    async def slow(obj: dict[str, Any], ctx: Any) -> Action:
        await anyio.sleep(2)
        return Action.requeue(30)

    async with Controller(config_maps).run(slow, None, None) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    ref, action = item
    assert (ref, action) == (cm_ref("a"), Action.requeue(30))
    assert item == (cm_ref("a"), Action.requeue(30))
    assert item.reason == ReconcileReason.OBJECT_UPDATED
    assert item.duration == 2.0


async def test_deletes_of_the_main_object_do_not_trigger(config_maps: Api) -> None:
    await config_maps.create(config_map("doomed"))
    async with Controller(config_maps).with_config(concurrency=1).run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
        await config_maps.delete("doomed")
        await config_maps.create(config_map("marker"))
        items = await take_until(results, lambda items: "marker" in names(items))
    assert items == [(cm_ref("marker"), Action.await_change())]


async def test_requeue_and_error_policy_reasons(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    calls: list[tuple[float, str]] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        info = current_reconcile()
        assert info is not None
        calls.append((anyio.current_time(), str(info.reason)))
        if len(calls) == 1:
            return Action.requeue(10)
        if len(calls) == 2:
            raise ValueError("boom")
        return Action.await_change()

    def error_policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        assert isinstance(error, ValueError)
        return Action.requeue(5)

    async with Controller(config_maps).run(reconcile, error_policy, None) as results:
        items = await take_until(results, lambda items: len(items) == 3)
    start = calls[0][0]
    assert [(t - start, reason) for t, reason in calls] == [
        (0.0, "object updated"),
        (10.0, "reconciler requested retry"),
        (15.0, "error policy requested retry"),
    ]
    assert isinstance(items[1], ReconcilerFailed)
    assert isinstance(items[1].error, ValueError)
    assert items[1].obj_ref == cm_ref("a")
    assert str(items[1].reason) == "reconciler requested retry"


async def test_async_error_policy(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    seen: list[str] = []

    async def failing(obj: dict[str, Any], ctx: list[str]) -> Action:
        raise RuntimeError("nope")

    async def error_policy(obj: dict[str, Any], error: Exception, ctx: list[str]) -> Action:
        await anyio.sleep(1)
        ctx.append(str(error))
        return Action.await_change()

    async with Controller(config_maps).run(failing, error_policy, seen) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(item, ReconcilerFailed)
    assert seen == ["nope"]


async def test_per_object_backoff_doubles_and_resets_on_success(config_maps: Api) -> None:
    """kube-rs has no per-object reconcile backoff (#1916): 5 ms doubling, reset on success."""
    await config_maps.create(config_map("a"))
    attempts: list[float] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        attempts.append(anyio.current_time())
        info = current_reconcile()
        assert info is not None
        assert info.failures == (len(attempts) - 1 if len(attempts) <= 6 else len(attempts) - 7)
        if len(attempts) == 6:
            return Action.requeue(100)  # success: the backoff is forgotten
        if len(attempts) < 6 or len(attempts) == 7:
            raise RuntimeError("still failing")
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, None, None) as results:
        await take_until(results, lambda items: len(items) == 8, within=300)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(attempts)]
    assert gaps == [0.005, 0.01, 0.02, 0.04, 0.08, 100.0, 0.005]


def test_reconcile_backoff_caps_at_1000_seconds() -> None:
    backoff = ReconcileBackoff()
    delays = [backoff.next_delay("k") for _ in range(30)]
    assert delays[:3] == [0.005, 0.01, 0.02]
    assert delays[-1] == 1000.0
    assert backoff.failures("k") == 30
    backoff.forget("k")
    assert backoff.next_delay("k") == 0.005
    assert len(backoff) == 1


async def test_error_policy_can_opt_into_the_backoff(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    attempts: list[float] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        attempts.append(anyio.current_time())
        raise RuntimeError("x")

    def policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        return Action.requeue_with_backoff()

    backoff = ReconcileBackoff(base_delay=1.0, max_delay=3.0)
    async with Controller(config_maps).error_backoff(backoff).run(reconcile, policy, None) as results:
        await take_until(results, lambda items: len(items) == 5)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps == [1.0, 2.0, 3.0, 3.0]


async def test_a_raising_error_policy_falls_back_to_the_backoff(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        raise RuntimeError("x")

    def policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        raise KeyError("bug in the policy")

    async with Controller(config_maps).run(reconcile, policy, None) as results:
        items = await take_until(results, lambda items: len(items) == 3)
    assert all(isinstance(item, ReconcilerFailed) for item in items)


async def test_reconciler_returning_a_non_action_is_a_failure(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Any:
        return None

    def policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, policy, None) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(item, ReconcilerFailed)
    assert isinstance(item.error, TypeError)


async def test_owns_maps_children_and_their_deletes_to_the_owner(config_maps: Api, secrets: Api) -> None:
    parent = await config_maps.create(config_map("parent"))
    owner_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "parent",
        "uid": parent["metadata"]["uid"],
    }
    async with Controller(config_maps).owns(secrets).run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
        await secrets.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "child", "ownerReferences": [owner_ref]},
            }
        )
        [created] = await take_until(results, lambda items: len(items) == 1)
        await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orphan"}})
        await secrets.delete("child")
        [deleted] = await take_until(results, lambda items: len(items) == 1)
    child_ref = ObjectRef.for_resource(SECRET, "child", "default")
    for item in (created, deleted):
        assert item[0] == cm_ref("parent")
        assert item.reason == ReconcileReason.related_object_updated(child_ref)
        assert str(item.reason) == "related object updated: Secret.v1./child.default"


async def test_a_child_moved_to_another_owner_triggers_both_owners(config_maps: Api, secrets: Api) -> None:
    """The owner a child leaves (moved or orphaned) is reconciled too: it was never reconciled
    again, with a stale view of its children."""
    owners = {name: await config_maps.create(config_map(name)) for name in ("a", "b")}

    def owned_by(name: str) -> list[dict[str, Any]]:
        uid = owners[name]["metadata"]["uid"]
        return [{"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid}]

    async with Controller(config_maps).owns(secrets).run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 2)
        child = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "c", "ownerReferences": owned_by("a")},
        }
        await secrets.create(child)
        await take_until(results, lambda items: len(items) == 1)
        await secrets.patch("c", {"metadata": {"ownerReferences": owned_by("b")}})
        moved = await take_until(results, lambda items: len(items) == 2)
        await secrets.patch("c", {"metadata": {"ownerReferences": None}})
        [orphaned] = await take_until(results, lambda items: len(items) == 1)
    assert sorted(item[0].name for item in moved) == ["a", "b"]
    assert orphaned[0] == cm_ref("b")


async def test_watches_maps_related_objects(config_maps: Api, secrets: Api) -> None:
    await config_maps.create(config_map("target"))

    def mapper(secret: dict[str, Any]) -> list[ObjectRef]:
        target = (secret["metadata"].get("labels") or {}).get("target")
        return [cm_ref(target)] if target else []

    controller = Controller(config_maps).watches(secrets, WatcherConfig(), mapper)
    async with controller.run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
        await secrets.create(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"target": "target"}}}
        )
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert item[0] == cm_ref("target")
    assert str(item.reason) == "related object updated: Secret.v1./s.default"


async def test_a_failing_mapper_is_a_queue_error(config_maps: Api, secrets: Api) -> None:
    def mapper(secret: dict[str, Any]) -> list[ObjectRef]:
        raise LookupError("mapper bug")

    await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    controller = Controller(config_maps).watches(secrets, WatcherConfig(), mapper)
    async with controller.run(await_change, None, None) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(item, QueueError)
    assert isinstance(item.watcher_error, LookupError)


async def test_a_mapper_returning_names_instead_of_refs_is_a_queue_error(
    config_maps: Api, secrets: Api
) -> None:
    """Strings from a mapper reached the run's store lookup and ended the whole controller."""
    await config_maps.create(config_map("target"))

    def mapper(secret: dict[str, Any]) -> Any:
        if secret["metadata"]["name"] == "wrong":
            return ["target"]  # names, not ObjectRefs
        return [cm_ref("target")]

    await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong"}})
    controller = Controller(config_maps).watches(secrets, WatcherConfig(), mapper).with_config(concurrency=1)
    async with controller.run(await_change, None, None) as results:
        items = await take_until(results, lambda items: any(isinstance(i, QueueError) for i in items))
        error = next(i for i in items if isinstance(i, QueueError))
        assert isinstance(error.watcher_error, TypeError)
        await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "right"}})
        later = await take_until(results, lambda items: "right" in str(items[-1].reason))
    assert later[-1][0] == cm_ref("target")


async def refs(*items: ObjectRef | Exception) -> AsyncIterator[ObjectRef | Exception]:
    for item in items:
        yield item
    await anyio.sleep_forever()


async def test_reconcile_on_and_object_not_found(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    async with Controller(config_maps).with_config(concurrency=1).run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
    controller = Controller(config_maps).reconcile_on(refs(cm_ref("a"), cm_ref("ghost"), RuntimeError("bad")))
    async with controller.run(await_change, None, None) as results:
        items = await take_until(results, lambda items: len(items) == 3)
    not_found = [i for i in items if isinstance(i, ObjectNotFound)]
    errors = [i for i in items if isinstance(i, QueueError)]
    assert [i.obj_ref for i in not_found] == [cm_ref("ghost")]
    assert [str(i.watcher_error) for i in errors] == ["bad"]
    # The ref from reconcile_on merged with the watch's request for "a" (one entry per object).
    assert names(items) == ["a"]


async def test_reconcile_all_on(config_maps: Api) -> None:
    for name in ("a", "b"):
        await config_maps.create(config_map(name))
    trigger = anyio.Event()

    async def ticks() -> AsyncIterator[None]:
        await trigger.wait()
        yield None
        await anyio.sleep_forever()

    async with Controller(config_maps).reconcile_all_on(ticks()).run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 2)
        trigger.set()
        items = await take_until(results, lambda items: len(items) == 2)
    assert sorted(names(items)) == ["a", "b"]
    assert all(str(item.reason) == "bulk reconcile requested" for item in items)


async def test_one_failing_watch_does_not_pause_the_other_triggers(
    config_maps: Api, api_server: ApiServer
) -> None:
    """kube-rs shares one backoff between all trigger streams (trino-operator#936, kube-rs #763),
    so while one watch keeps failing every trigger is paused. Here each trigger backs off alone."""
    from kube_runtime.client import ApiResource

    missing = Api(api_server.client, ApiResource("example.com", "v1", "Missing", "missings", True), "default")
    controller = (
        Controller(config_maps)
        .owns(missing)
        .trigger_backoff(lambda: ExponentialBackoff(10.0, 600.0, jitter=False))
    )
    async with controller.run(await_change, None, None) as results:
        errors = await take_until(results, lambda items: len(items) >= 2)
        assert all(isinstance(e, QueueError) for e in errors)  # the owns watch failed twice: 10 s + 20 s
        created_at = anyio.current_time()
        await config_maps.create(config_map("a"))
        items = await take_until(results, lambda items: any(isinstance(i, Reconciled) for i in items))
        reconciled_at = anyio.current_time()
    assert names(items) == ["a"]
    assert reconciled_at - created_at < 1.0  # not after the failing watch's 40 s backoff


async def test_watch_recovers_after_a_dropped_watch_and_a_410(
    config_maps: Api, api_server: ApiServer
) -> None:
    await config_maps.create(config_map("a"))
    async with Controller(config_maps).run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
        api_server.faults.close_watches()
        await config_maps.patch("a", {"data": {"x": "1"}})
        await take_until(results, lambda items: "a" in names(items))
        api_server.faults.compact()
        api_server.faults.close_watches()
        await config_maps.create(config_map("b"))
        items = await take_until(results, lambda items: "b" in names(items))
    assert "b" in names(items)


async def test_graceful_shutdown_finishes_running_reconciles(config_maps: Api) -> None:
    for name in ("a", "b"):
        await config_maps.create(config_map(name))
    stop = anyio.Event()
    finished: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        stop.set()
        await anyio.sleep(5)
        finished.append(obj["metadata"]["name"])
        return Action.requeue(1)

    controller = Controller(config_maps).with_config(concurrency=1).graceful_shutdown_on(stop)
    async with controller.run(reconcile, None, None) as results:
        items = [item async for item in results]
    assert len(items) == 1  # the running one finished and yielded; the queued one never started
    assert finished == names(items)
    assert anyio.current_time() >= 5.0


async def test_leaving_the_block_early_cancels_running_reconciles(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    started = anyio.Event()
    cancelled: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.set()
        try:
            await anyio.sleep(1000)
        except anyio.get_cancelled_exc_class():
            cancelled.append(obj["metadata"]["name"])
            raise
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, None, None):
        await started.wait()
    assert cancelled == ["a"]
    assert anyio.current_time() < 1000


async def test_signals_shut_down_gracefully_then_forcefully(config_maps: Api, sigint_before: object) -> None:
    import os
    import signal

    for name in ("a", "b"):
        await config_maps.create(config_map(name))
    started = anyio.Event()
    cancelled: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.set()
        try:
            await anyio.sleep(1000)
        except anyio.get_cancelled_exc_class():
            cancelled.append(obj["metadata"]["name"])
            raise
        return Action.await_change()

    controller = Controller(config_maps).with_config(concurrency=1).shutdown_on_signal()
    async with controller.run(reconcile, None, None) as results:
        await started.wait()
        os.kill(os.getpid(), signal.SIGTERM)  # graceful: "a" keeps running, "b" never starts
        await anyio.sleep(10)
        assert cancelled == []
        os.kill(os.getpid(), signal.SIGINT)  # forceful
        items = [item async for item in results]
    assert items == []
    assert len(cancelled) == 1
    assert anyio.current_time() < 1000
    assert signal.getsignal(signal.SIGINT) is sigint_before


async def test_await_run_consumes_until_shutdown(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    stop = anyio.Event()
    seen: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        seen.append(obj["metadata"]["name"])
        stop.set()
        return Action.await_change()

    await Controller(config_maps).graceful_shutdown_on(stop).run(reconcile, None, None)
    assert seen == ["a"]


async def test_iterating_without_async_with_is_refused(config_maps: Api) -> None:
    run = Controller(config_maps).run(await_change, None, None)
    with pytest.raises(TypeError, match="async with"):
        async for _ in run:  # type: ignore[attr-defined]
            pass


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_unconsumed_results_stop_new_reconciles(config_maps: Api, concurrency: int) -> None:
    """The result stream holds one untaken result per worker; with it full, each worker's next
    result waits to be handed over and nothing else starts: twice the limit, then nothing."""
    names = [f"cm-{i}" for i in range(10)]
    for name in names:
        await config_maps.create(config_map(name))
    started: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.append(obj["metadata"]["name"])
        return Action.await_change()

    controller = Controller(config_maps).with_config(concurrency=concurrency)
    async with controller.run(reconcile, None, None) as results:
        await anyio.sleep(100)
        assert len(started) == 2 * concurrency
        items = await take_until(results, lambda items: len(items) == len(names))
    assert sorted(started) == names
    assert sorted(item.obj_ref.name for item in items if isinstance(item, Reconciled)) == names


async def test_a_dict_store_is_shared_with_the_reconciler(config_maps: Api) -> None:
    await config_maps.create(config_map("a", k="v"))
    controller = Controller(config_maps, compact_store=False)

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        assert controller.store.get(cm_ref("a")) is obj
        return Action.await_change()

    async with controller.run(reconcile, None, None) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(item, Reconciled)
    assert not controller.store._cache.compact


async def test_by_default_a_reconciler_may_mutate_its_object_without_touching_the_cache(
    config_maps: Api,
) -> None:
    """controller-runtime's contract (its cache deep-copies on read): the object is private."""
    await config_maps.create(config_map("a", k="v"))
    controller = Controller(config_maps)

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        assert obj == controller.store.get(cm_ref("a"))
        obj["data"]["k"] = "mutated"
        obj["metadata"].clear()
        return Action.await_change()

    async with controller.run(reconcile, None, None) as results:
        [item] = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(item, Reconciled)
    cached = controller.store.get(cm_ref("a"))
    assert cached is not None
    assert cached["data"] == {"k": "v"}
    assert cached["metadata"]["name"] == "a"


async def test_debounce_merges_a_burst_of_changes(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    starts: list[float] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        starts.append(anyio.current_time())
        return Action.await_change()

    async with Controller(config_maps).with_config(debounce=5).run(reconcile, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
        burst_start = anyio.current_time()
        for i in range(4):  # a change every second for 4 s
            await config_maps.patch("a", {"data": {"n": str(i)}})
            await anyio.sleep(1)
        await take_until(results, lambda items: len(items) == 1)
    assert len(starts) == 2
    assert starts[1] - burst_start >= 3 + 5  # 5 s after the last change of the burst


async def test_a_controller_runs_once_at_a_time(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    controller = Controller(config_maps)
    async with controller.run(await_change, None, None) as results:
        await take_until(results, lambda items: len(items) == 1)
        with pytest.raises(RuntimeError, match="already running"):  # as itself (kube_runtime._tasks)
            await controller.run(await_change, None, None)
    async with controller.run(await_change, None, None) as results:  # sequential runs are fine
        await take_until(results, lambda items: len(items) == 1)
