"""A virtual-time asyncio event loop for deterministic tests of time-based code.

``loop.time()`` (and so ``anyio.current_time()``, ``asyncio.sleep``, ``anyio.sleep``,
``anyio.fail_after``, ``call_later``) reads a virtual clock that starts at 0. Whenever the loop
would block waiting for its next timer, the clock jumps straight to that timer instead, so a test
that waits 1000 s of backoff completes in microseconds and always takes the same path.

Work handed to a thread with ``loop.run_in_executor`` (the runtime's own blocking calls: exec
credential plugins, token files, kubeconfig loading, metrics collection) holds the clock: while
any is running the loop waits for it in real time instead of jumping, so a refresh that takes
50 ms of wall time takes no virtual time and a cached credential does not expire meanwhile.

Pitfall: the jump happens only when no socket is ready and no executor work is running at that
instant, so real I/O (a loopback server) still works, but time can race ahead of a peer the loop
cannot see: a thread started some other way (``anyio.to_thread``, ``threading``) or another
process. Use it for code whose only waits are timers, in-loop I/O and executor work.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple

__all__ = ["VirtualClockLoop", "virtual_clock_backend"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that never sleeps on a finite timeout; it advances the owning loop's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0 or self.loop is None:
            if not ready and timeout is None:
                # No timer pending at all: only real I/O can make progress.
                return super().select(None)
            return ready
        if self.loop.outside_work:
            # A thread is working for the loop: its result (through the loop's self-pipe) comes
            # first, however far away the next timer is.
            return super().select(None)
        self.loop.advance(timeout)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is waiting on a timer."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0
        #: Executor calls (``run_in_executor``) not yet finished: the clock holds while any runs.
        self.outside_work = 0

    def time(self) -> float:
        return self._virtual_now

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self.outside_work += 1
        future.add_done_callback(self._outside_work_done)
        return future

    def _outside_work_done(self, _future: asyncio.Future[Any]) -> None:
        self.outside_work -= 1

    def advance(self, seconds: float) -> None:
        """Move the clock forward (tests may call it directly to skip ahead)."""
        self._virtual_now += seconds


def virtual_clock_backend() -> tuple[str, dict[str, Any]]:
    """The ``anyio_backend`` fixture value that runs a test on a :class:`VirtualClockLoop`."""
    return ("asyncio", {"loop_factory": VirtualClockLoop})
