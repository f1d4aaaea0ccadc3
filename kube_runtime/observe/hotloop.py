"""Hot-loop detection: an object reconciled over and over because its own reconcile changes it.

The troubleshooting guide's first symptom is a reconciler that writes something
non-deterministic (a timestamp, a counter) to the object it reconciles: every write produces a
watch event, the event schedules another reconcile, and the loop never settles.

How it is recognised, from the result stream alone (no help needed from the reconciler):

* the reconcile's reason is *object updated*: it was triggered by a change of the object itself
  (not a requeue the reconciler asked for, not a related object);
* it started within ``gap`` seconds of the previous reconcile of the same object finishing
  (start = completion time - duration). A change the reconciler wrote arrives as a watch event
  while the reconcile is still running or just after, and the runner starts the next reconcile
  as soon as the previous one ends, so self-inflicted changes chain with gaps near zero; an
  independent writer lines up like that only by chance;
* ``threshold`` such reconciles chain back to back within ``window`` seconds.

When that happens a WARNING names the object and ``kube_runtime_hot_loop_detections_total``
counts one detection; a loop that persists is reported again once per ``window``. Any reconcile
of the object that breaks the chain (another reason, a longer gap) resets it.

Pitfalls: a second controller fighting over the same field (annotation ping-pong) also chains
and is reported; that is a hot loop too, just not a self-inflicted one. A debounce longer than
``gap`` hides the chain: set ``gap`` to at least the controller's debounce. State is one small
entry per recently reconciled object, dropped ``window`` seconds after its last reconcile.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

__all__ = ["HotLoopDetector"]

log = structlog.get_logger(__name__)


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


_NO_START: float = float("nan")


@dataclass(slots=True)
class _ObjectChain:
    last_end: float
    starts: deque[float] = field(default_factory=deque)
    reported_at: float | None = None


def _is_object_updated(reason: Any) -> bool:
    kind = getattr(reason, "kind", None)
    if kind is not None:
        return bool(kind == "object_updated")
    return str(reason) == "object updated"


class HotLoopDetector:
    """Detects objects whose reconciles keep re-triggering themselves (see the module docs).

    Feed it every finished reconcile with :meth:`observe` (``observe_results`` does).
    ``detections`` lists ``(object_ref, count)`` of every report, newest last (bounded).
    """

    def __init__(
        self,
        controller: str = "",
        *,
        threshold: int = 10,
        window: float = 60.0,
        gap: float = 1.0,
    ) -> None:
        if threshold < 2:
            raise ValueError("threshold must be at least 2")
        self.controller = controller
        self.threshold = threshold
        self.window = window
        self.gap = gap
        self.detections: deque[tuple[Any, int]] = deque(maxlen=100)
        #: Objects whose latest reconcile continued a chain.
        self._chains: dict[Any, _ObjectChain] = {}
        #: Every other recent object: (end of its latest reconcile, its start if it was an
        #: update, else NaN).
        self._last: dict[Any, tuple[float, float]] = {}
        self._counter: _Incrementable | None = None
        self._next_sweep = 0.0

    def bind_counter(self, counter: _Incrementable) -> None:
        """Count each detection on ``counter`` (the controller's labelled metric child)."""
        self._counter = counter

    def observe(self, obj_ref: Any, reason: Any, duration: float, now: float) -> bool:
        """Record a reconcile of ``obj_ref`` that finished at ``now`` after ``duration`` seconds.
        Returns ``True`` when this reconcile triggered a report."""
        if now >= self._next_sweep:
            self._sweep(now)
        started = now - duration
        updated = _is_object_updated(reason)
        chain = self._chains.get(obj_ref)
        if chain is None:
            # Most objects are not chaining: one (end, start) pair each, no chain state.
            last = self._last.get(obj_ref)
            if last is None or not updated or started - last[0] > self.gap:
                self._last[obj_ref] = (now, started if updated else _NO_START)
                return False
            del self._last[obj_ref]
            chain = self._chains[obj_ref] = _ObjectChain(last_end=now)
            if last[1] == last[1]:  # the previous reconcile was an update too (not NaN)
                chain.starts.append(last[1])
        elif updated and started - chain.last_end <= self.gap:
            chain.last_end = now
        else:  # the chain is broken: back to the plain pair
            del self._chains[obj_ref]
            self._last[obj_ref] = (now, started if updated else _NO_START)
            return False
        starts = chain.starts
        starts.append(started)
        while starts and starts[0] < now - self.window:
            starts.popleft()
        while len(starts) > self.threshold:
            starts.popleft()
        if len(starts) < self.threshold:
            return False
        if chain.reported_at is not None and now - chain.reported_at < self.window:
            return False
        chain.reported_at = now
        self.detections.append((obj_ref, len(starts)))
        if self._counter is not None:
            self._counter.inc()
        log.warning(
            "hot loop: object keeps being reconciled because of changes made right after its own "
            "reconcile; make the reconciler's writes deterministic or skip no-op patches",
            controller=self.controller,
            reconciles=len(starts),
            seconds=round(now - starts[0], 3),
            **{"object.ref": str(obj_ref)},
        )
        return True

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.window
        horizon = now - self.window
        for ref in [ref for ref, chain in self._chains.items() if chain.last_end < horizon]:
            del self._chains[ref]
        for ref in [ref for ref, (end, _) in self._last.items() if end < horizon]:
            del self._last[ref]

    def __len__(self) -> int:
        """Objects currently tracked (bounded by objects reconciled within the last window or two)."""
        return len(self._chains) + len(self._last)
