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
and is reported; that is a hot loop too, just not a self-inflicted one. So does any other writer
that changes the object more often than once per ``gap`` (a client patching it in a tight loop):
the detector sees changes, not who made them, and the warning says so. A debounce longer than
``gap`` hides the chain: set ``gap`` to at least the controller's debounce.

Memory: one small entry per recently reconciled object (its last end and start; a short list of
starts while it chains). The plain entries are kept in the order of their last reconcile, so
expiry reads only the oldest ones (at most once a second) instead of scanning them all; the few
chaining objects are swept once per window. An entry goes:

* when the object goes: :meth:`HotLoopDetector.forget` (the recorder calls it for every delete
  the controller reports and for every ``ObjectNotFound``);
* ``window + gap`` seconds after the object's last reconcile (up to a second later; a chain: up to
  a window later), when no later reconcile could still chain to it within the window (so expiry
  never changes what is reported);
* when more than ``max_tracked`` objects are tracked, oldest first (a tenth of them at once). Only
  an object whose next reconcile started within ``gap`` of its last one but finished after about
  ``0.9 * max_tracked`` other objects' reconciles can lose a link this way."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from kube_runtime.controller.action import ReconcileReason

__all__ = ["DEFAULT_MAX_TRACKED", "HotLoopDetector"]

log = structlog.get_logger(__name__)


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


_NO_START: float = float("nan")
_NEVER: float = float("inf")
#: Entries expire in batches: up to this many seconds after their time.
_EXPIRY_BATCH = 1.0
#: Objects a detector tracks at most by default (about 2 MB of entries, plus their keys).
DEFAULT_MAX_TRACKED = 10_000


@dataclass(slots=True)
class _ObjectChain:
    last_end: float
    starts: deque[float] = field(default_factory=deque)
    reported_at: float | None = None


_OBJECT_UPDATED = ReconcileReason.OBJECT_UPDATED


def _is_object_updated(reason: Any) -> bool:
    kind = getattr(reason, "kind", None)
    if kind is not None:
        return bool(kind == "object_updated")
    return str(reason) == "object updated"


class HotLoopDetector:
    """Detects objects whose reconciles keep re-triggering themselves (see the module docs).

    Feed it every finished reconcile with :meth:`observe` (``observe_results`` does), in the
    order they finish, and :meth:`forget` objects that are gone. ``detections`` lists
    ``(object_ref, count)`` of every report, newest last (bounded). ``len()`` is the number of
    objects tracked, at most ``max_tracked``.
    """

    def __init__(
        self,
        controller: str = "",
        *,
        threshold: int = 10,
        window: float = 60.0,
        gap: float = 1.0,
        max_tracked: int = DEFAULT_MAX_TRACKED,
    ) -> None:
        if threshold < 2:
            raise ValueError("threshold must be at least 2")
        if max_tracked < 1:
            raise ValueError("max_tracked must be at least 1")
        self.controller = controller
        self.threshold = threshold
        self.window = window
        self.gap = gap
        self.max_tracked = max_tracked
        self.detections: deque[tuple[Any, int]] = deque(maxlen=100)
        #: Objects whose latest reconcile continued a chain (few: swept once per window).
        self._chains: dict[Any, _ObjectChain] = {}
        #: Every other tracked object, oldest first (an entry is re-inserted at every reconcile):
        #: (end of its latest reconcile, its start if it was an update, else NaN).
        self._last: dict[Any, tuple[float, float]] = {}
        self._counter: _Incrementable | None = None
        #: When the oldest pair expires (``inf``: none tracked), and when chains are swept next.
        self._next_expiry = _NEVER
        self._next_chain_sweep = 0.0

    def bind_counter(self, counter: _Incrementable) -> None:
        """Count each detection on ``counter`` (the controller's labelled metric child)."""
        self._counter = counter

    def forget(self, obj_ref: Any) -> None:
        """Drop what is kept for ``obj_ref`` (it was deleted): its next reconcile starts afresh."""
        if self._last.pop(obj_ref, None) is None:
            self._chains.pop(obj_ref, None)

    def observe(self, obj_ref: Any, reason: Any, duration: float, now: float) -> bool:
        """Record a reconcile of ``obj_ref`` that finished at ``now`` after ``duration`` seconds.
        Returns ``True`` when this reconcile triggered a report."""
        if now >= self._next_expiry:
            self._expire(now)
        chains = self._chains
        if chains and now >= self._next_chain_sweep:
            self._sweep_chains(now)
        started = now - duration
        updated = reason is _OBJECT_UPDATED or _is_object_updated(reason)
        chain = chains.get(obj_ref) if chains else None
        if chain is None:
            # Most objects are not chaining: one (end, start) pair each, no chain state. Popped
            # and re-inserted, so the pairs stay ordered by the time of their latest reconcile.
            pairs = self._last
            last = pairs.pop(obj_ref, None)
            if last is None or not updated or started - last[0] > self.gap:
                pairs[obj_ref] = (now, started if updated else _NO_START)
                if last is None:  # one more object tracked
                    self._bound()
                return False
            chain = chains[obj_ref] = _ObjectChain(last_end=now)  # as many objects tracked as before
            if last[1] == last[1]:  # the previous reconcile was an update too (not NaN)
                chain.starts.append(last[1])
        elif updated and started - chain.last_end <= self.gap:
            chain.last_end = now
        else:  # the chain is broken: back to the plain pair (as many objects tracked as before)
            del chains[obj_ref]
            self._last[obj_ref] = (now, started if updated else _NO_START)
            if self._next_expiry == _NEVER:
                self._next_expiry = now + self.window + self.gap
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
            "hot loop: object keeps being reconciled because it changes right after each reconcile; "
            "make the reconciler's writes deterministic or skip no-op patches (or, if another "
            "writer changes it this often, filter that change with a predicate)",
            controller=self.controller,
            reconciles=len(starts),
            seconds=round(now - starts[0], 3),
            **{"object.ref": str(obj_ref)},
        )
        return True

    def _bound(self) -> None:
        """Drop the oldest entries beyond ``max_tracked`` (plain pairs before chains; a tenth of
        ``max_tracked`` at once, so that one scan serves many reconciles) and note when the
        oldest pair expires."""
        pairs, chains = self._last, self._chains
        excess = len(pairs) + len(chains) - self.max_tracked
        if excess > 0:
            oldest = list(itertools.islice(pairs, max(excess, self.max_tracked // 10)))
            for ref in oldest:
                del pairs[ref]
            excess -= len(oldest)
            while excess > 0:
                del chains[next(iter(chains))]
                excess -= 1
        if self._next_expiry == _NEVER:
            for end, _ in pairs.values():
                self._next_expiry = end + self.window + self.gap + _EXPIRY_BATCH
                break

    def _expire(self, now: float) -> None:
        """Drop every pair whose last reconcile ended more than ``window + gap`` ago: a later
        reconcile chaining to it started within ``gap`` of that end, so it took over ``window``
        and every start it would have added to the chain is already outside the window. Runs at
        most once per :data:`_EXPIRY_BATCH` seconds (one scan of the oldest entries each time)."""
        horizon = now - self.window - self.gap
        pairs = self._last
        expired = []
        self._next_expiry = _NEVER
        for ref, (end, _) in pairs.items():
            if end >= horizon:
                self._next_expiry = end + self.window + self.gap + _EXPIRY_BATCH
                break
            expired.append(ref)
        for ref in expired:
            del pairs[ref]

    def _sweep_chains(self, now: float) -> None:
        """Drop the chains that ended ``window + gap`` ago (as :meth:`_expire` does the pairs)."""
        self._next_chain_sweep = now + self.window
        horizon = now - self.window - self.gap
        chains = self._chains
        for ref in [ref for ref, chain in chains.items() if chain.last_end < horizon]:
            del chains[ref]

    def __len__(self) -> int:
        """Objects currently tracked (at most ``max_tracked``)."""
        return len(self._chains) + len(self._last)
