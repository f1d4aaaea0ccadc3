"""One set of metric families per Prometheus registry, built on first use.

Every component that records metrics (the client, watches, stores, the work queue, reconciles, the
leader elector, the event-loop monitor) may be built many times in one process, while a metric
family can be registered in a ``CollectorRegistry`` only once. :class:`PerRegistry` is the one place
that rule lives: ``families = PerRegistry(build)`` then ``families(registry)`` returns the value
``build(registry)`` made for that registry the first time, from any thread.

Guarantees: ``build`` runs at most once per registry (under a lock); a registry that is garbage
collected takes its families with it. Pitfall: a family that something else registered in the same
registry under the same name is a real conflict and raises prometheus_client's ``ValueError``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry

__all__ = ["PerRegistry"]

T = TypeVar("T")


class PerRegistry(Generic[T]):
    """``build(registry)``'s result, memoized per registry (``None`` means prometheus_client's
    global ``REGISTRY``)."""

    __slots__ = ("_build", "_by_registry", "_lock")

    def __init__(self, build: Callable[[CollectorRegistry], T]) -> None:
        self._build = build
        self._by_registry: weakref.WeakKeyDictionary[CollectorRegistry, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, registry: CollectorRegistry | None = None) -> T:
        registry = REGISTRY if registry is None else registry
        with self._lock:
            found = self._by_registry.get(registry)
            if found is None:
                found = self._by_registry[registry] = self._build(registry)
            return found
