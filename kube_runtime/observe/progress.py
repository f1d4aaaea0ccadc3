"""Reconcile-loop progress, the signal behind ``/livez``.

kube-rs's advice is to fail liveness when the last reconcile is too old. Taken literally that
kills an idle controller that simply has nothing to do, so :class:`ReconcileProgress` only
reports a stall when the loop has work waiting (queued or in flight) *and* no result arrived for
``threshold`` seconds: a hung reconciler, a deadlocked queue, a runner that stopped pulling.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from prometheus_client import REGISTRY, CollectorRegistry

__all__ = ["ReconcileProgress", "pending_work_from_metrics"]


def pending_work_from_metrics(
    controller: str, registry: CollectorRegistry | None = None
) -> Callable[[], float | None]:
    """Work waiting in ``controller``, read from the metrics the controller publishes:
    ``workqueue_depth`` plus ``controller_runtime_active_workers`` for that ``controller`` label.

    The callable returns ``None`` when neither metric has a series for the controller yet (work
    unknown). It walks the registry, so call it at probe rate, not per reconcile.
    """
    reg = REGISTRY if registry is None else registry
    wanted = {"workqueue_depth", "controller_runtime_active_workers"}

    def pending() -> float | None:
        total: float | None = None
        for family in reg.collect():
            if family.name not in wanted:
                continue
            for sample in family.samples:
                if sample.labels.get("controller") == controller:
                    total = (total or 0.0) + sample.value
        return total

    return pending


class ReconcileProgress:
    """When a controller's reconcile loop last produced a result, and whether it is stalled.

    ``mark()`` is called for every result item (``observe_results(progress=...)`` does it).
    ``stalled()`` is ``None`` when healthy, otherwise a one-line reason; it is healthy while less
    than ``threshold`` seconds passed since the last result, or since a probe last found no work
    waiting (so the first reconcile after a long idle spell has the whole threshold), and while
    ``pending()`` reports no work (``pending`` returning ``None`` counts as work, so without a
    pending source the check is purely time-based: requeue idle objects periodically).
    ``active()`` (optional) says whether the loop may run at all (a leader-gated controller: only
    while leading); while it is false the loop is healthy and its idle time starts over.
    """

    def __init__(
        self,
        threshold: float = 300.0,
        *,
        pending: Callable[[], float | None] | None = None,
        active: Callable[[], bool] | None = None,
    ) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.pending = pending
        self.active = active
        self.last_progress: float | None = None

    def mark(self, now: float | None = None) -> None:
        """Record that the loop produced a result at ``now`` (default: ``anyio.current_time()``)."""
        self.last_progress = anyio.current_time() if now is None else now

    def stalled(self) -> str | None:
        now = anyio.current_time()
        if self.last_progress is None or (self.active is not None and not self.active()):
            self.last_progress = now  # the grace period starts with the first (active) probe
            return None
        waiting = self.pending() if self.pending is not None else None
        if waiting is not None and waiting <= 0:
            # Nothing waits: healthy, and the idle time starts over, so work that arrives after a
            # long idle spell gets the whole threshold (counted from the last probe that saw none).
            self.last_progress = now
            return None
        idle_for = now - self.last_progress
        if idle_for <= self.threshold:
            return None
        what = "unknown work" if waiting is None else f"{waiting:g} item(s)"
        return (
            f"no reconcile finished for {idle_for:.0f}s (threshold {self.threshold:g}s) with {what} pending"
        )

    async def check(self) -> str | None:
        """The health-check form of :meth:`stalled`."""
        return self.stalled()
