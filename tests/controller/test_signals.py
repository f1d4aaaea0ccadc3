"""Shutdown signals are handled once per process and fanned out to every controller that asked."""

from __future__ import annotations

import os
import signal
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, shutdown_on_signals
from kube_runtime.controller.signals import shutdown_signal_count
from tests.controller.conftest import config_map

pytestmark = pytest.mark.anyio


def slow_reconciler(started: dict[str, anyio.Event], cancelled: list[str]) -> Any:
    async def reconcile(obj: dict[str, Any], ctx: str) -> Action:
        started[ctx].set()
        try:
            await anyio.sleep(1000)
        except anyio.get_cancelled_exc_class():
            cancelled.append(ctx)
            raise
        return Action.await_change()

    return reconcile


async def test_two_controllers_in_one_process_both_stop_on_signals(
    config_maps: Api, secrets: Api, sigint_before: object
) -> None:
    """With a receiver per controller only the last one heard SIGINT and the other kept running."""
    for name in ("a", "b"):
        await config_maps.create(config_map(name))
        await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}})
    started = {"cms": anyio.Event(), "secrets": anyio.Event()}
    cancelled: list[str] = []
    ended: list[str] = []
    reconcile = slow_reconciler(started, cancelled)
    controllers = {
        "cms": Controller(config_maps).with_config(concurrency=1).shutdown_on_signal(),
        "secrets": Controller(secrets).with_config(concurrency=1).shutdown_on_signal(),
    }
    previous_term = signal.getsignal(signal.SIGTERM)

    async def consume(name: str) -> None:
        async with controllers[name].run(reconcile, None, name) as results:
            async for _ in results:
                pass
        ended.append(name)

    with anyio.fail_after(500):
        async with anyio.create_task_group() as tg:
            for name in controllers:
                tg.start_soon(consume, name)
            for event in started.values():
                await event.wait()
            os.kill(os.getpid(), signal.SIGTERM)  # graceful for both: running reconciles go on
            await anyio.sleep(10)
            assert (cancelled, ended) == ([], [])
            assert shutdown_signal_count() == 1
            os.kill(os.getpid(), signal.SIGINT)  # forceful for both
    assert sorted(cancelled) == ["cms", "secrets"]
    assert sorted(ended) == ["cms", "secrets"]
    assert signal.getsignal(signal.SIGINT) is sigint_before
    assert signal.getsignal(signal.SIGTERM) == previous_term
    assert shutdown_signal_count() == 0


async def test_graceful_signal_lets_every_controller_finish_its_work(config_maps: Api, secrets: Api) -> None:
    await config_maps.create(config_map("a"))
    await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}})
    started = {"cms": anyio.Event(), "secrets": anyio.Event()}
    gate = anyio.Event()
    finished: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: str) -> Action:
        started[ctx].set()
        await gate.wait()
        finished.append(ctx)
        return Action.requeue(1)

    async def consume(controller: Controller, name: str) -> None:
        async with controller.run(reconcile, None, name) as results:
            async for _ in results:
                pass

    with anyio.fail_after(500):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, Controller(config_maps).shutdown_on_signal(), "cms")
            tg.start_soon(consume, Controller(secrets).shutdown_on_signal(), "secrets")
            for event in started.values():
                await event.wait()
            with shutdown_on_signals(gate.set):  # opens the gate once the signal went round
                os.kill(os.getpid(), signal.SIGTERM)
                await gate.wait()
    assert sorted(finished) == ["cms", "secrets"]  # each finished its reconcile and requeued nothing


async def test_non_controller_parties_and_late_registrations() -> None:
    calls: list[str] = []
    heard = anyio.Event()

    def record(what: str) -> Any:
        def callback() -> None:
            nonlocal heard
            calls.append(what)
            heard.set()
            heard = anyio.Event()

        return callback

    async def signal_and_wait(signum: int) -> None:
        waiting = heard
        os.kill(os.getpid(), signum)
        await waiting.wait()

    def custom_handler(signum: int, frame: object) -> None:  # pragma: no cover - never called
        raise AssertionError("the process-wide receiver should have the signal")

    previous = signal.signal(signal.SIGTERM, custom_handler)
    try:
        with shutdown_on_signals(record("one graceful"), record("one forceful")):
            await signal_and_wait(signal.SIGTERM)
            # Joining a process that is already shutting down: told at once.
            with shutdown_on_signals(record("two graceful"), name="late"):
                assert calls == ["one graceful", "two graceful"]
                await signal_and_wait(signal.SIGTERM)
                with shutdown_on_signals(record("three graceful")):  # late again: graceful only
                    pass
        assert calls == ["one graceful", "two graceful", "one forceful", "three graceful"]
        assert signal.getsignal(signal.SIGTERM) is custom_handler  # restored after the last left
        assert shutdown_signal_count() == 0
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_a_failing_callback_does_not_stop_the_others(sigint_before: object) -> None:
    done = anyio.Event()

    def broken() -> None:
        raise RuntimeError("bug")

    with shutdown_on_signals(broken, name="broken"), shutdown_on_signals(done.set):
        os.kill(os.getpid(), signal.SIGINT)
        with anyio.fail_after(10):
            await done.wait()
    assert signal.getsignal(signal.SIGINT) is sigint_before
