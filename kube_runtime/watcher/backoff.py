"""Backoff policies for retrying watches: client-go's reflector values by default.

A :class:`Backoff` hands out the delay before the next retry (``None``: give up) and can be reset
after a success. The stream helper :func:`kube_runtime.streams.backoff` sleeps after each error a
watcher yields. Keep one policy per watch stream: sharing one between streams lets a single failing
watch slow down the healthy ones (kube-rs's Controller shares one across all its triggers).
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Backoff", "ExponentialBackoff", "ResetTimerBackoff", "default_backoff_policy"]


@runtime_checkable
class Backoff(Protocol):
    def next(self) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to stop retrying."""
        ...

    def reset(self) -> None:
        """Start over from the smallest delay (called after a success)."""
        ...


class ExponentialBackoff:
    """``min_delay * factor**n`` capped at ``max_delay``, plus up to ``min_delay`` of random jitter.

    ``max_times`` bounds the number of delays before :meth:`next` returns ``None`` (default:
    unbounded). Pass ``rng`` for reproducible jitter.
    """

    __slots__ = ("_attempt", "_rng", "factor", "jitter", "max_delay", "max_times", "min_delay")

    def __init__(
        self,
        min_delay: float = 0.8,
        max_delay: float = 30.0,
        factor: float = 2.0,
        *,
        jitter: bool = True,
        max_times: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if min_delay < 0 or max_delay < min_delay or factor < 1:
            raise ValueError("need 0 <= min_delay <= max_delay and factor >= 1")
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.factor = factor
        self.jitter = jitter
        self.max_times = max_times
        self._rng = rng or random.Random()
        self._attempt = 0

    def next(self) -> float | None:
        if self.max_times is not None and self._attempt >= self.max_times:
            return None
        # Cap the exponent so a long outage cannot overflow the float.
        delay = min(self.min_delay * self.factor ** min(self._attempt, 64), self.max_delay)
        self._attempt += 1
        if self.jitter:
            delay += self._rng.uniform(0.0, self.min_delay)
        return delay

    def reset(self) -> None:
        self._attempt = 0


class ResetTimerBackoff:
    """Wraps a backoff and resets it when ``reset_after`` seconds passed since the previous delay.

    That is, an error after a long healthy stretch starts again from the smallest delay, even if
    nothing called :meth:`reset` in between. Reads ``anyio.current_time()``: call from async code.
    """

    __slots__ = ("_last", "inner", "reset_after")

    def __init__(self, inner: Backoff, reset_after: float = 120.0) -> None:
        self.inner = inner
        self.reset_after = reset_after
        self._last: float | None = None

    def next(self) -> float | None:
        now = anyio.current_time()
        if self._last is not None and now - self._last > self.reset_after:
            self.inner.reset()
        self._last = now
        return self.inner.next()

    def reset(self) -> None:
        self.inner.reset()


def default_backoff_policy() -> ResetTimerBackoff:
    """client-go's reflector policy: 0.8 s doubling to 30 s, jittered, reset after 120 s healthy."""
    return ResetTimerBackoff(ExponentialBackoff(0.8, 30.0, 2.0, jitter=True), reset_after=120.0)
