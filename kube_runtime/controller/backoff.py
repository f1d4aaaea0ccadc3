"""Per-object exponential backoff for failing reconciles (kube-rs has none: #1916, #297).

controller-runtime's item rate limiter: the n-th consecutive failure of an object waits
``base * 2**(n-1)`` seconds (5 ms doubling), capped at 1000 s; a success forgets the object. Memory
is one small entry per object that is currently failing.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

__all__ = ["DEFAULT_BASE_DELAY", "DEFAULT_MAX_DELAY", "ReconcileBackoff"]

DEFAULT_BASE_DELAY: Final = 0.005
DEFAULT_MAX_DELAY: Final = 1000.0


class ReconcileBackoff:
    """Failure counts per key and the delay each next retry should wait."""

    __slots__ = ("_failures", "base_delay", "max_delay")

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def next_delay(self, key: Hashable) -> float:
        """Count one more failure of ``key`` and return how long to wait before retrying it."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Cap the exponent: 2**40 * 5 ms is far beyond any max_delay, and floats stay finite.
        return min(self.base_delay * 2.0 ** min(failures, 40), self.max_delay)

    def failures(self, key: Hashable) -> int:
        """Consecutive failures of ``key`` so far."""
        failures = self._failures
        return failures.get(key, 0) if failures else 0  # usually empty: no hashing of ``key``

    def forget(self, key: Hashable) -> None:
        """``key`` succeeded (or is gone): its next failure starts from the base delay again."""
        failures = self._failures
        if failures:
            failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
