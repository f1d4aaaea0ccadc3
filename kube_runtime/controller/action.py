"""What a reconcile asks for next, and why a reconcile was started.

``Action`` is the reconciler's answer (requeue after a delay, or wait for the next change).
``ReconcileReason`` says why a reconcile was scheduled; its ``str()`` is kube-rs's display string
(it names the reconcile span and log lines). ``ReconcileRequest`` pairs a ref with a reason (and
a priority) and is equal/hashed by the ref only, so a scheduler keeps one entry per object
whatever the reason.

Priorities are controller-runtime's: ints, higher first; :data:`DEFAULT_PRIORITY` (0) for live
changes, :data:`LOW_PRIORITY` (-100, its ``handler.LowPriority``) for objects a (re)list or a bulk
reconcile produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kube_runtime.store.object_ref import ObjectRef

__all__ = ["DEFAULT_PRIORITY", "LOW_PRIORITY", "Action", "ReconcileReason", "ReconcileRequest"]

#: Longest delay any requeue is scheduled for (kube-rs clamps to about six months, #1772).
MAX_REQUEUE_SECONDS: Final = 180 * 24 * 3600.0
#: The priority of a live change (and of anything that does not say).
DEFAULT_PRIORITY: Final = 0
#: The priority of an object seen in a (re)list or a bulk reconcile: controller-runtime's
#: ``handler.LowPriority``.
LOW_PRIORITY: Final = -100


@dataclass(frozen=True, slots=True)
class Action:
    """The reconciler's (or error policy's) request for the object's next reconcile.

    ``requeue_after`` is a delay in seconds, counted from the moment the reconcile finished, or
    ``None`` to wait for the next watch event. ``backoff`` (error policies only) asks for the
    controller's per-object exponential delay instead of a fixed one. ``priority`` (see
    :meth:`with_priority`) is the requeue's priority; ``None`` keeps the priority the reconcile
    was started at (controller-runtime's ``Result.Priority``). ``timeout`` (see
    :meth:`with_timeout`) is the requeued reconcile's timeout; ``None``: the controller's.
    """

    requeue_after: float | None
    backoff: bool = False
    priority: int | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        # Checked however the action is made (``Action(...)`` included): a NaN delay would
        # compare false with every deadline and corrupt the scheduler's order for other objects.
        delay = self.requeue_after
        if delay is not None and not delay >= 0:
            raise ValueError(f"requeue delay must be a non-negative number, got {delay}")
        timeout = self.timeout
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout}")

    def with_priority(self, priority: int) -> Action:
        """The same action with its requeue at ``priority`` (higher runs first among due ones)."""
        return Action(self.requeue_after, self.backoff, int(priority), self.timeout)

    def with_timeout(self, seconds: float) -> Action:
        """The same action, and the reconcile it requeues is cancelled after ``seconds`` instead
        of the controller's reconcile timeout. Pitfall: a change of the object that comes due
        before the requeue replaces it, and runs with the controller's timeout."""
        return Action(self.requeue_after, self.backoff, self.priority, float(seconds))

    @classmethod
    def requeue(cls, seconds: float) -> Action:
        """Reconcile again after ``seconds`` (clamped to 180 days), unless a change comes first."""
        if not seconds >= 0:  # NaN included
            raise ValueError(f"requeue delay must be a non-negative number, got {seconds}")
        return cls(min(float(seconds), MAX_REQUEUE_SECONDS))

    @classmethod
    def await_change(cls) -> Action:
        """Do nothing until the object (or a related object) changes."""
        return _AWAIT_CHANGE

    @classmethod
    def requeue_with_backoff(cls) -> Action:
        """For error policies: retry after the object's exponential backoff delay (5 ms doubling to
        1000 s, reset when a reconcile of it succeeds). kube-rs has no such thing (#1916)."""
        return _BACKOFF

    def __repr__(self) -> str:
        if self.backoff:
            text = "Action.requeue_with_backoff()"
        elif self.requeue_after is None:
            text = "Action.await_change()"
        else:
            text = f"Action.requeue({self.requeue_after})"
        if self.priority is not None:
            text += f".with_priority({self.priority})"
        return text if self.timeout is None else f"{text}.with_timeout({self.timeout})"


_AWAIT_CHANGE: Final = Action(None)
_BACKOFF: Final = Action(None, backoff=True)


class ReconcileReason:
    """Why a reconcile was scheduled: kube-rs's ``ReconcileReason`` variants.

    Use the class attributes for the field-less variants and :meth:`related_object_updated` /
    :meth:`custom` for the others. ``kind`` names the variant; ``str()`` is the display string.
    Reasons compare by value. The reconciler is deliberately not told the reason (kube-rs #800);
    it reaches spans, logs and the result stream.
    """

    __slots__ = ("_display", "kind", "obj_ref")

    UNKNOWN: ReconcileReason
    OBJECT_UPDATED: ReconcileReason
    RECONCILER_REQUESTED_RETRY: ReconcileReason
    ERROR_POLICY_REQUESTED_RETRY: ReconcileReason
    BULK_RECONCILE: ReconcileReason

    def __init__(self, kind: str, display: str, obj_ref: ObjectRef | None = None) -> None:
        self.kind = kind
        self.obj_ref = obj_ref
        self._display = display

    @classmethod
    def related_object_updated(cls, obj_ref: ObjectRef) -> ReconcileReason:
        """A watched related object (named by ``obj_ref``) changed."""
        return cls("related_object_updated", f"related object updated: {obj_ref}", obj_ref)

    @classmethod
    def custom(cls, reason: str) -> ReconcileReason:
        """A caller-defined reason, displayed as given."""
        return cls("custom", reason)

    def __str__(self) -> str:
        return self._display

    def __repr__(self) -> str:
        return f"ReconcileReason({self.kind}: {self._display!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReconcileReason):
            return NotImplemented
        return self.kind == other.kind and self._display == other._display

    def __hash__(self) -> int:
        return hash((self.kind, self._display))


ReconcileReason.UNKNOWN = ReconcileReason("unknown", "unknown")
ReconcileReason.OBJECT_UPDATED = ReconcileReason("object_updated", "object updated")
ReconcileReason.RECONCILER_REQUESTED_RETRY = ReconcileReason(
    "reconciler_requested_retry", "reconciler requested retry"
)
ReconcileReason.ERROR_POLICY_REQUESTED_RETRY = ReconcileReason(
    "error_policy_requested_retry", "error policy requested retry"
)
ReconcileReason.BULK_RECONCILE = ReconcileReason("bulk_reconcile", "bulk reconcile requested")


class ReconcileRequest:
    """A request to reconcile ``obj_ref`` for ``reason``.

    Equality and hashing use ``obj_ref`` only, so a scheduler holds one request per object; which
    reason survives a merge is the scheduler's rule (the earliest request's, a tie taking the newer).
    ``priority`` is the request's priority (the entry keeps the highest one asked for);
    ``timeout`` the reconcile's timeout in seconds (``None``: the controller's).

    ``obj_ref`` must be an :class:`~kube_runtime.store.object_ref.ObjectRef` (``TypeError``
    otherwise): a mapper returning names would fail later, in the store lookup of the run, and
    end the controller; made inside a trigger, the error is a ``QueueError`` instead.
    """

    __slots__ = ("_hash", "obj_ref", "priority", "reason", "timeout")

    def __init__(
        self,
        obj_ref: ObjectRef,
        reason: ReconcileReason = ReconcileReason.UNKNOWN,
        priority: int = DEFAULT_PRIORITY,
        timeout: float | None = None,
    ) -> None:
        if type(obj_ref) is not ObjectRef and not isinstance(obj_ref, ObjectRef):
            raise TypeError(f"a reconcile request needs an ObjectRef, got {obj_ref!r}")
        self.obj_ref = obj_ref
        self.reason = reason
        self.priority = priority
        self.timeout = timeout
        # Hashed once: schedulers and runners look a request up several times per reconcile.
        self._hash = hash(obj_ref)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReconcileRequest):
            return NotImplemented
        return self.obj_ref == other.obj_ref

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        if self.priority == DEFAULT_PRIORITY:
            return f"ReconcileRequest({self.obj_ref}, {self.reason})"
        return f"ReconcileRequest({self.obj_ref}, {self.reason}, priority={self.priority})"
