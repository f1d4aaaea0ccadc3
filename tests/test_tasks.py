"""The one task-group helper: body exceptions unwrapped, a lone background failure as itself."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.client.resource import ApiResource
from kube_runtime.leader import LeaderElector
from kube_runtime.store.shared import SharedReflector
from kube_runtime.store.store import store


async def forever(log: list[str]) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        log.append("cancelled")


async def run_with(
    task: Callable[..., Coroutine[Any, Any, None]], *args: Any, body: Callable[[], Awaitable[None]]
) -> None:
    async with BackgroundTasks() as tasks:
        tasks.start_soon(task, *args, name="task")
        await body()


async def raise_after_a_checkpoint(exc: Exception) -> None:
    await anyio.lowlevel.checkpoint()
    raise exc


async def test_an_exception_from_the_body_comes_out_as_itself() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="body"):
        await run_with(forever, log, body=lambda: raise_after_a_checkpoint(ValueError("body")))
    assert log == ["cancelled"]


async def test_a_lone_background_failure_is_raised_as_itself_and_cancels_the_body() -> None:
    log: list[str] = []

    async def boom() -> None:
        raise KeyError("task")

    with pytest.raises(KeyError, match="task"):
        await run_with(boom, body=lambda: forever(log))
    assert log == ["cancelled"]


async def test_several_background_failures_are_grouped() -> None:
    async def two_failures() -> None:
        async with BackgroundTasks() as tasks:
            tasks.start_soon(raise_after_a_checkpoint, RuntimeError("a"), name="a")
            tasks.start_soon(raise_after_a_checkpoint, RuntimeError("b"), name="b")
            await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as info:
        await two_failures()
    assert sorted(str(exc) for exc in info.value.exceptions) == ["a", "b"]


async def test_a_background_failure_during_a_failing_body_is_noted_on_the_body_error() -> None:
    async def fails_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise RuntimeError("cleanup failed")

    with pytest.raises(ValueError, match="body") as info:
        await run_with(fails_when_cancelled, body=lambda: raise_after_a_checkpoint(ValueError("body")))
    assert any("cleanup failed" in note for note in info.value.__notes__)


async def test_cancellation_of_the_enclosing_scope_cancels_the_tasks_and_stays_cancellation() -> None:
    log: list[str] = []
    with anyio.move_on_after(0.01) as scope:
        await run_with(forever, log, body=anyio.sleep_forever)
    assert scope.cancelled_caught
    assert log == ["cancelled"]


async def test_a_normal_exit_cancels_the_tasks() -> None:
    log: list[str] = []
    await run_with(forever, log, body=anyio.lowlevel.checkpoint)
    assert log == ["cancelled"]


async def test_shared_reflector_body_exception_is_not_wrapped() -> None:
    _reader, writer = store(ApiResource.builtin("ConfigMap"))

    async def nothing() -> AsyncIterator[Any]:
        await anyio.sleep_forever()
        yield  # pragma: no cover

    async def body() -> None:
        async with SharedReflector(writer, nothing()):
            raise LookupError("body")

    with pytest.raises(LookupError):
        await body()


async def test_leader_elector_body_exception_is_not_wrapped(api_server: Any) -> None:
    elector = LeaderElector(
        api_server.client,
        "tasks-body",
        "default",
        registry=CollectorRegistry(),
        lease_duration=1.0,
        renew_deadline=0.6,
        retry_period=0.1,
    )

    async def body() -> None:
        async with elector:
            await elector.leading
            raise LookupError("body")

    with pytest.raises(LookupError):
        await body()
    assert elector.lost.is_set()
