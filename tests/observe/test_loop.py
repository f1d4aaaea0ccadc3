"""Event-loop lag monitor on the virtual clock: a blocked loop is simulated by advancing the
clock without yielding, so the measured lag is exact."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.observe.loop import EventLoopLagMonitor
from kube_runtime.testing.clock import virtual_clock_backend


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def block_loop_for(seconds: float) -> None:
    """What a synchronous call inside a reconciler does: time passes, nothing else runs."""
    loop = asyncio.get_running_loop()
    loop.advance(seconds)  # type: ignore[attr-defined]


async def test_idle_loop_has_no_lag(registry: CollectorRegistry) -> None:
    async with EventLoopLagMonitor(interval=0.5, registry=registry) as monitor:
        await anyio.sleep(10)
    assert monitor.samples == 20
    assert monitor.max_lag == 0
    assert registry.get_sample_value("kube_runtime_event_loop_lag_seconds_count") == 20
    assert registry.get_sample_value("kube_runtime_event_loop_lag_seconds_bucket", {"le": "0.0005"}) == 20


async def test_blocking_shows_up_as_lag(registry: CollectorRegistry) -> None:
    async with EventLoopLagMonitor(interval=0.25, registry=registry) as monitor:
        await monitor.wait_tick()
        block_loop_for(2.0)
        await monitor.wait_tick()
    assert monitor.last_lag == pytest.approx(1.75)
    assert monitor.max_lag == pytest.approx(1.75)
    assert registry.get_sample_value("kube_runtime_event_loop_lag_seconds_bucket", {"le": "1.0"}) == 1
    assert registry.get_sample_value("kube_runtime_event_loop_lag_seconds_bucket", {"le": "2.5"}) == 2


async def test_exit_cancels_the_monitor_task(registry: CollectorRegistry) -> None:
    before = len(asyncio.all_tasks())
    async with EventLoopLagMonitor(interval=1, registry=registry):
        assert len(asyncio.all_tasks()) == before + 1
    assert len(asyncio.all_tasks()) == before


async def test_an_error_in_the_body_propagates(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="body"):
        async with EventLoopLagMonitor(interval=1, registry=registry):
            raise ValueError("body")


def test_interval_must_be_positive(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="positive"):
        EventLoopLagMonitor(interval=0, registry=registry)
