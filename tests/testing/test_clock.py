"""The virtual clock: jumps to the next timer when the loop would wait, holds while a thread works
for the loop (``run_in_executor``), and still serves real I/O."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest

from kube_runtime.testing.clock import VirtualClockLoop, virtual_clock_backend

pytestmark = pytest.mark.usefixtures("anyio_backend")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


async def test_an_hour_of_timers_takes_no_wall_time() -> None:
    started = time.monotonic()
    await anyio.sleep(3600)
    assert anyio.current_time() == 3600
    assert time.monotonic() - started < 5


async def test_executor_work_holds_the_clock_while_other_timers_are_pending() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(60)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(630)
        assert ticks == 10
        await loop.run_in_executor(None, time.sleep, 0.1)  # real work in a thread
        assert anyio.current_time() == 630
        assert ticks == 10
        assert loop.outside_work == 0
        await anyio.sleep(120)  # and the clock jumps again afterwards
        assert ticks == 12
        tg.cancel_scope.cancel()
