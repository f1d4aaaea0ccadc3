"""Reconcile timeouts on the virtual clock: cancellation, the typed error, the backoff, and no
second reconcile of the object while the cancelled one unwinds."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, ControllerConfig, Reconciled, ReconcileTimedOut
from tests.controller.conftest import config_map, take_until

pytestmark = pytest.mark.anyio


async def test_a_reconcile_past_its_timeout_is_cancelled_and_nothing_overlaps_its_unwinding(
    config_maps: Api,
) -> None:
    await config_maps.create(config_map("a"))
    log: list[tuple[str, float]] = []
    running = 0
    cancelled = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        nonlocal running
        running += 1
        assert running == 1, "two reconciles of one object at once"
        log.append(("start", anyio.current_time()))
        try:
            if len(log) == 1:
                await anyio.sleep(100)
            return Action.await_change()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            log.append(("cancelled", anyio.current_time()))
            with anyio.CancelScope(shield=True):
                await anyio.sleep(5)  # cleanup that takes a while
            log.append(("unwound", anyio.current_time()))
            raise
        finally:
            running -= 1

    async def change_while_unwinding() -> None:
        await cancelled.wait()
        await anyio.sleep(1)
        await config_maps.patch("a", {"data": {"v": "changed"}})

    controller = Controller(config_maps).with_reconcile_timeout(10)
    async with controller.run(reconcile, None, None) as results, anyio.create_task_group() as tg:
        tg.start_soon(change_while_unwinding)
        items = await take_until(results, lambda items: len(items) == 2, within=60)
    timed_out, done = items
    assert isinstance(timed_out, ReconcileTimedOut)
    assert isinstance(timed_out.error, TimeoutError)
    assert timed_out.timeout == 10
    assert timed_out.duration == pytest.approx(15)  # the cleanup is part of the attempt
    assert isinstance(done, Reconciled)
    (_start, t0), (_, cancelled_at), (_, unwound_at), (_, restarted_at) = log
    assert cancelled_at - t0 == pytest.approx(10)
    assert restarted_at >= unwound_at  # the change waited for the cancelled reconcile to unwind


@pytest.mark.parametrize("after_cancel", ["returns", "raises"])
async def test_a_reconcile_that_catches_its_timeout_is_still_timed_out(
    config_maps: Api, after_cancel: str
) -> None:
    """Caught and turned into an Action (or another error) after a cleanup, the cancellation at
    the deadline is still a timeout: reported, counted, retried with backoff, the Action dropped."""
    await config_maps.create(config_map("a"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await anyio.sleep(1)
            if after_cancel == "raises":
                raise RuntimeError("gave up") from None
            return Action.requeue(600)
        return Action.await_change()

    controller = Controller(config_maps).with_reconcile_timeout(2)
    async with controller.run(reconcile, None, None) as results:
        items = await take_until(results, lambda items: len(items) == 2, within=60)
    assert all(isinstance(item, ReconcileTimedOut) for item in items)
    first = items[0]
    assert isinstance(first, ReconcileTimedOut)
    assert (first.timeout, first.duration) == (2, pytest.approx(3))


async def test_the_timed_out_object_is_backed_off_through_the_error_policy(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    errors: list[BaseException] = []
    starts: list[float] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        starts.append(anyio.current_time())
        await anyio.sleep(100)
        return Action.await_change()

    def error_policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        errors.append(error)
        return Action.requeue_with_backoff()

    config = ControllerConfig(reconcile_timeout=1)
    async with Controller(config_maps).with_config(config).run(reconcile, error_policy, None) as results:
        items = await take_until(results, lambda items: len(items) == 3, within=60)
    assert all(isinstance(item, ReconcileTimedOut) for item in items)
    assert all(isinstance(error, TimeoutError) for error in errors)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps == pytest.approx([1.005, 1.01])  # the timeout plus the doubling backoff


async def test_an_action_sets_the_timeout_of_the_reconcile_it_requeues(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    calls = 0

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        nonlocal calls
        calls += 1
        if calls == 1:
            return Action.requeue(1).with_timeout(2)
        await anyio.sleep(5)
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, None, None) as results:
        items = await take_until(results, lambda items: len(items) == 2, within=60)
    assert isinstance(items[0], Reconciled)
    assert isinstance(items[1], ReconcileTimedOut)
    assert (items[1].timeout, items[1].duration) == (2, pytest.approx(2))


async def test_without_a_timeout_nothing_is_cancelled(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        await anyio.sleep(3600)
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, None, None) as results:
        (item,) = await take_until(results, lambda items: len(items) == 1, within=7200)
    assert isinstance(item, Reconciled)


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="reconcile_timeout"):
        ControllerConfig(reconcile_timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        Action.requeue(1).with_timeout(-1)
