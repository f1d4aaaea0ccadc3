"""A virtual-time asyncio event loop for deterministic tests of time-based code.

``loop.time()`` (and so ``anyio.current_time()``, ``asyncio.sleep``, ``anyio.sleep``,
``anyio.fail_after``, ``call_later``) reads a virtual clock that starts at 0. Whenever the loop
would block waiting for its next timer, the clock jumps straight to that timer instead, so a test
that waits 1000 s of backoff completes in microseconds and always takes the same path.

Pitfall: the jump happens only when no socket is ready at that instant, so real I/O (a loopback
server) still works, but time can race ahead of a peer that runs in another thread or process.
Use it for code whose only waits are timers and in-loop I/O.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["VirtualClockLoop", "virtual_clock_backend"]


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
        self.loop.advance(timeout)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when every task is waiting on a timer."""

    def __init__(self) -> None:
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (tests may call it directly to skip ahead)."""
        self._virtual_now += seconds


def virtual_clock_backend() -> tuple[str, dict[str, Any]]:
    """The ``anyio_backend`` fixture value that runs a test on a :class:`VirtualClockLoop`."""
    return ("asyncio", {"loop_factory": VirtualClockLoop})
