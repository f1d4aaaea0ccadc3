"""The runner's one-shot wake-up: set before or during the wait, and safe after a cancelled wait."""

from __future__ import annotations

import asyncio

import pytest

from kube_runtime.controller.runner import _Waker


async def test_set_before_the_wait_returns_at_once() -> None:
    waker = _Waker()
    waker.set()
    assert waker.is_set()
    await asyncio.wait_for(waker.wait(), 1)


async def test_set_wakes_the_waiting_task() -> None:
    waker = _Waker()
    waiting = asyncio.ensure_future(waker.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    waker.set()
    await asyncio.wait_for(waiting, 1)


async def test_set_after_a_cancelled_wait_only_records_it() -> None:
    waker = _Waker()
    waiting = asyncio.ensure_future(waker.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    waker.set()  # the future is cancelled: no InvalidStateError
    assert waker.is_set()
    await asyncio.wait_for(waker.wait(), 1)
