"""The idle watchdog: a read that waits too long ends the iteration; nothing else is ended or eaten.

All on the virtual clock: every wait below is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.client.idle import IdleTimedStream, idle_timed
from kube_runtime.testing.clock import virtual_clock_backend

pytestmark = pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])


async def spaced(gaps: list[float]) -> AsyncIterator[int]:
    """Yields 0, 1, ... each after its gap, then waits forever."""
    for number, gap in enumerate(gaps):
        await anyio.sleep(gap)
        yield number
    await anyio.sleep_forever()


async def test_a_silent_stream_ends_at_its_bound_and_stays_ended(anyio_backend: Any) -> None:
    stream = idle_timed(spaced([1, 2]), 5, url="/x")
    assert isinstance(stream, IdleTimedStream)
    start = anyio.current_time()
    assert [item async for item in stream] == [0, 1]
    assert anyio.current_time() - start == 3 + 5
    assert stream.idle_timed_out
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()
    await stream.aclose()


async def test_items_just_inside_the_bound_keep_it_open(anyio_backend: Any) -> None:
    stream = idle_timed(spaced([4.9] * 20), 5)
    got = [item async for item in stream]
    assert got == list(range(20))
    assert stream.idle_timed_out


async def test_a_slow_consumer_is_never_cut_off(anyio_backend: Any) -> None:
    """The clock runs only while a read waits: time spent between reads does not count."""
    stream = idle_timed(spaced([0, 0, 0]), 1)
    seen = []
    async for item in stream:
        seen.append(item)
        await anyio.sleep(30)
    assert seen == [0, 1, 2]


async def test_a_cancellation_from_outside_propagates_and_does_not_end_the_stream(anyio_backend: Any) -> None:
    stream = idle_timed(spaced([10]), 60)
    with anyio.move_on_after(3) as scope:
        await stream.__anext__()
    assert scope.cancelled_caught
    assert not stream.idle_timed_out


async def test_a_cancellation_from_outside_at_the_same_moment_still_propagates(anyio_backend: Any) -> None:
    """An outside deadline and the idle bound fall due together: the outside cancellation must not
    be taken for the watchdog's, and the task is not left cancelled."""
    stream = idle_timed(spaced([100]), 5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(5):
            await stream.__anext__()
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await anyio.sleep(1)


async def test_retiming_bounds_the_waiting_read_from_its_start(anyio_backend: Any) -> None:
    stream = idle_timed(spaced([100]), 60)
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:

        async def tighten() -> None:
            await anyio.sleep(2)
            stream.set_idle_timeout(4)

        tg.start_soon(tighten)
        assert [item async for item in stream] == []
    assert anyio.current_time() - start == 4
    assert stream.idle_timeout == 4


async def test_retiming_past_the_due_time_ends_the_read_at_once(anyio_backend: Any) -> None:
    stream = idle_timed(spaced([100]), 60)
    start = anyio.current_time()
    async with anyio.create_task_group() as tg:

        async def tighten() -> None:
            await anyio.sleep(10)
            stream.set_idle_timeout(4)

        tg.start_soon(tighten)
        assert [item async for item in stream] == []
    assert anyio.current_time() - start == 10
