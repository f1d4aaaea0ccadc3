"""Terminal errors and panics (controller-runtime's semantics in Python terms), on the virtual clock."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.client.errors import ApiError
from kube_runtime.controller import (
    Action,
    Controller,
    Reconciled,
    ReconcilerFailed,
    ReconcilerFailedTerminally,
    ReconcilerPanicked,
    StrayCancellation,
    TerminalError,
)
from kube_runtime.controller.failures import is_panic, is_terminal
from tests.controller.conftest import config_map, take_until

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("error", "terminal", "panic"),
    [
        (TerminalError("bad spec"), True, False),
        (KeyError("spec"), False, True),
        (IndexError(0), False, True),
        (AttributeError("x"), False, True),
        (TypeError("x"), False, True),
        (ZeroDivisionError(), False, True),
        (AssertionError(), False, True),
        (NotImplementedError(), False, True),
        (ValueError("x"), False, False),
        (RuntimeError("x"), False, False),
        (OSError("x"), False, False),
        (TimeoutError(), False, False),
        (ApiError({"code": 404, "reason": "NotFound", "message": "gone"}), False, False),
    ],
)
def test_classification(error: Exception, terminal: bool, panic: bool) -> None:
    assert (is_terminal(error), is_panic(error)) == (terminal, panic)


def test_a_terminal_error_counts_through_its_cause_chain() -> None:
    outer = KeyError("wrapped")
    outer.__cause__ = TerminalError("bad spec")  # raise KeyError(...) from TerminalError(...)
    assert is_terminal(outer)
    assert not is_panic(outer)  # terminal wins
    assert not is_terminal(RuntimeError("x"))


async def test_a_terminal_error_is_not_retried_until_the_object_changes(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    starts: list[float] = []
    policy_calls = 0

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        starts.append(anyio.current_time())
        if (obj.get("data") or {}).get("fixed") != "yes":
            raise TerminalError("spec.size must be positive")
        return Action.await_change()

    def error_policy(obj: dict[str, Any], error: Exception, ctx: Any) -> Action:
        nonlocal policy_calls
        policy_calls += 1
        return Action.requeue(1)

    controller = Controller(config_maps)
    async with controller.run(reconcile, error_policy, None) as results:
        (failed,) = await take_until(results, lambda items: len(items) == 1)
        assert isinstance(failed, ReconcilerFailedTerminally)
        assert isinstance(failed.error, TerminalError)
        with anyio.move_on_after(3600):  # an hour: nothing retries it
            item = await results.receive()
            raise AssertionError(f"retried without a change: {item}")
        await config_maps.patch("a", {"data": {"fixed": "yes"}})
        (done,) = await take_until(results, lambda items: len(items) == 1)
    assert isinstance(done, Reconciled)
    assert policy_calls == 0
    assert len(starts) == 2


@pytest.mark.parametrize("bug", ["key", "not an action"])
async def test_a_panic_is_retried_with_backoff(config_maps: Api, bug: str) -> None:
    await config_maps.create(config_map("a"))
    starts: list[float] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Any:
        starts.append(anyio.current_time())
        if len(starts) < 3:
            if bug == "key":
                return obj["spec"]["replicas"]  # a ConfigMap has no spec: KeyError
            return None
        return Action.await_change()

    async with Controller(config_maps).run(reconcile, None, None) as results:
        items = await take_until(results, lambda items: len(items) == 3)
    assert [type(item) for item in items] == [ReconcilerPanicked, ReconcilerPanicked, Reconciled]
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([0.005, 0.01])


async def test_an_error_the_reconciler_raises_is_not_a_panic(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        raise ValueError("the external service refused")

    async with Controller(config_maps).run(reconcile, None, None) as results:
        (item,) = await take_until(results, lambda items: len(items) == 1)
    assert type(item) is ReconcilerFailed


@pytest.mark.parametrize("reconcile_timeout", [None, 30.0])
async def test_awaiting_a_future_cancelled_elsewhere_is_a_failure_not_a_shutdown(
    config_maps: Api, reconcile_timeout: float | None
) -> None:
    """asyncio raises CancelledError in every awaiter of a cancelled future, although the
    reconcile itself was not cancelled: that is the awaited work's failure. It used to escape the
    worker and end the whole result stream as if the controller had been shut down."""
    for name in ("a", "b", "c"):
        await config_maps.create(config_map(name))
    attempts: dict[str, int] = {}

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        name = obj["metadata"]["name"]
        attempts[name] = attempts.get(name, 0) + 1
        if name == "b" and attempts[name] == 1:
            shared = asyncio.get_running_loop().create_future()
            shared.cancel()  # a shared lookup another caller cancelled
            await shared
        return Action.await_change()

    controller = Controller(config_maps).with_config(concurrency=2).with_reconcile_timeout(reconcile_timeout)
    async with controller.run(reconcile, None, None) as results:
        items = await take_until(
            results, lambda items: sum(isinstance(i, Reconciled) for i in items) == 3, within=60
        )
    failed = [item for item in items if isinstance(item, ReconcilerFailed)]
    assert len(failed) == 1
    assert failed[0].obj_ref.name == "b"
    assert type(failed[0]) is ReconcilerFailed  # retried through the error policy, not a panic
    assert isinstance(failed[0].error, StrayCancellation)
    assert isinstance(failed[0].error.__cause__, asyncio.CancelledError)
    assert attempts == {"a": 1, "b": 2, "c": 1}  # retried after the backoff


async def test_a_real_cancellation_still_stops_the_reconcile(config_maps: Api) -> None:
    """Cancelling the consumer's scope cancels a running reconcile: it is not taken for a
    stray cancellation and retried."""
    await config_maps.create(config_map("a"))
    started = anyio.Event()
    cancelled: list[bool] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.set()
        try:
            await anyio.sleep_forever()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return Action.await_change()

    controller = Controller(config_maps)
    with anyio.CancelScope() as scope:
        async with controller.run(reconcile, None, None) as results:
            await started.wait()
            scope.cancel()
            await results.receive()
    assert cancelled == [True]
