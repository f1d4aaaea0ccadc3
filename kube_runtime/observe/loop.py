"""Event-loop lag: how late timers fire, the asyncio counterpart of tokio-metrics.

Everything in a controller shares one event loop. A reconciler that blocks it (a synchronous
HTTP call, a big JSON dump, a CPU-heavy loop) delays every watch, every reconcile and the health
probes. :class:`EventLoopLagMonitor` sleeps for ``interval`` over and over and records how much
later than scheduled each wakeup came in ``kube_runtime_event_loop_lag_seconds`` (histogram).
Sustained lag above a few milliseconds means something blocks the loop; the task dump
(``kube_runtime.observe.taskdump``) helps find what.

The cost is one timer per ``interval`` (default 0.25 s). Blocking shorter than the interval
between two ticks may go unseen; the worst lag is still bounded by the blocking time.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final

import anyio
from prometheus_client import CollectorRegistry, Histogram

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.metric_families import PerRegistry

__all__ = ["EVENT_LOOP_LAG_BUCKETS", "EventLoopLagMonitor", "event_loop_lag_histogram"]

#: From 0.5 ms (noise) to 10 s (a loop that is effectively frozen).
EVENT_LOOP_LAG_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def _lag_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "kube_runtime_event_loop_lag_seconds",
        "How much later than scheduled the event loop ran a timer callback",
        buckets=EVENT_LOOP_LAG_BUCKETS,
        registry=registry,
    )


_lag_histograms: PerRegistry[Histogram] = PerRegistry(_lag_histogram)


def event_loop_lag_histogram(registry: CollectorRegistry | None = None) -> Histogram:
    """The ``kube_runtime_event_loop_lag_seconds`` histogram of ``registry`` (default ``REGISTRY``)."""
    return _lag_histograms(registry)


class EventLoopLagMonitor:
    """``async with EventLoopLagMonitor():`` measures loop lag until the block exits.

    ``last_lag`` and ``max_lag`` (seconds) and ``samples`` are kept for health checks and tests.
    The monitor's task belongs to the monitor's own task group and is cancelled on exit.
    """

    def __init__(self, interval: float = 0.25, *, registry: CollectorRegistry | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.histogram = event_loop_lag_histogram(registry)
        self.last_lag = 0.0
        self.max_lag = 0.0
        self.samples = 0
        self._tasks: BackgroundTasks | None = None
        self._tick = anyio.Event()

    async def wait_tick(self) -> None:
        """Wait until the monitor records its next sample."""
        await self._tick.wait()

    async def _run(self) -> None:
        while True:
            expected = anyio.current_time() + self.interval
            await anyio.sleep(self.interval)
            lag = max(0.0, anyio.current_time() - expected)
            self.histogram.observe(lag)
            self.last_lag = lag
            self.max_lag = max(self.max_lag, lag)
            self.samples += 1
            tick, self._tick = self._tick, anyio.Event()
            tick.set()

    async def __aenter__(self) -> EventLoopLagMonitor:
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        tasks.start_soon(self._run, name="kube_runtime event loop lag monitor")
        self._tasks = tasks
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        return await tasks.__aexit__(exc_type, exc, tb)
