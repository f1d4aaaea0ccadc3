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
``gap`` hides the chain: set ``gap`` to at least the controller's debounce.

Memory: one small entry per recently reconciled object (its last end and start; a short list of
starts while it chains), in insertion order, so expiry pops the oldest in O(1) per reconcile
instead of scanning. An entry goes:

* when the object goes: :meth:`HotLoopDetector.forget` (the recorder calls it for every delete
  the controller reports and for every ``ObjectNotFound``);
* ``window + gap`` seconds after the object's last reconcile, when no later reconcile could still
  chain to it within the window (so expiry never changes what is reported);
* when more than ``max_tracked`` objects are tracked, oldest first. Only an object whose next
  reconcile started within ``gap`` of its last one but finished after ``max_tracked`` other
  objects' reconciles can lose a link this way."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

__all__ = ["DEFAULT_MAX_TRACKED", "HotLoopDetector"]

log = structlog.get_logger(__name__)


class _Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


_NO_START: float = float("nan")
_NEVER: float = float("inf")
#: Objects a detector tracks at most by default (about 2 MB of entries, plus their keys).
DEFAULT_MAX_TRACKED = 10_000


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
        #: Objects whose latest reconcile continued a chain, oldest ``last_end`` first.
        self._chains: OrderedDict[Any, _ObjectChain] = OrderedDict()
        #: Every other tracked object, oldest first: (end of its latest reconcile, its start if it
        #: was an update, else NaN).
        self._last: OrderedDict[Any, tuple[float, float]] = OrderedDict()
        self._counter: _Incrementable | None = None
        #: When the oldest entry expires (``inf``: nothing tracked).
        self._next_expiry = _NEVER

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
        started = now - duration
        updated = _is_object_updated(reason)
        # Popped and re-inserted, so each map stays ordered by the time of the latest reconcile.
        chain = self._chains.pop(obj_ref, None)
        if chain is None:
            # Most objects are not chaining: one (end, start) pair each, no chain state.
            last = self._last.pop(obj_ref, None)
            if last is None or not updated or started - last[0] > self.gap:
                self._track_last(obj_ref, now, started if updated else _NO_START)
                return False
            chain = _ObjectChain(last_end=now)
            if last[1] == last[1]:  # the previous reconcile was an update too (not NaN)
                chain.starts.append(last[1])
        elif updated and started - chain.last_end <= self.gap:
            chain.last_end = now
        else:  # the chain is broken: back to the plain pair
            self._track_last(obj_ref, now, started if updated else _NO_START)
            return False
        self._chains[obj_ref] = chain
        self._bound()
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

    def _track_last(self, obj_ref: Any, now: float, started: float) -> None:
        self._last[obj_ref] = (now, started)
        self._bound()

    def _bound(self) -> None:
        """Drop the oldest entries beyond ``max_tracked`` (plain pairs before chains) and note
        when the oldest remaining one expires."""
        last, chains = self._last, self._chains
        excess = len(last) + len(chains) - self.max_tracked
        while excess > 0:
            (last if last else chains).popitem(last=False)
            excess -= 1
        if self._next_expiry == _NEVER:
            self._next_expiry = self._oldest_end() + self.window + self.gap

    def _oldest_end(self) -> float:
        oldest = _NEVER
        for end, _ in self._last.values():
            oldest = end
            break
        for chain in self._chains.values():
            oldest = min(oldest, chain.last_end)
            break
        return oldest

    def _expire(self, now: float) -> None:
        """Drop every entry whose last reconcile ended more than ``window + gap`` ago: a later
        reconcile chaining to it started within ``gap`` of that end, so it took over ``window``
        and every start it would have added to the chain is already outside the window."""
        horizon = now - self.window - self.gap
        last = self._last
        while last and next(iter(last.values()))[0] < horizon:
            last.popitem(last=False)
        chains = self._chains
        while chains and next(iter(chains.values())).last_end < horizon:
            chains.popitem(last=False)
        self._next_expiry = self._oldest_end() + self.window + self.gap

    def __len__(self) -> int:
        """Objects currently tracked (at most ``max_tracked``)."""
        return len(self._chains) + len(self._last)
