"""Terminal errors and panics (controller-runtime's semantics in Python terms), on the virtual clock."""

from __future__ import annotations

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
