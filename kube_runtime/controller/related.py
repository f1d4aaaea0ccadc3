"""Triggers from related objects (``owns``, ``watches``) that survive a relist of their watch.

Guarantee: a related object (a child for ``owns``) that was deleted while its watch was away
still triggers the objects it last mapped to, once the relist shows it gone (at ``InitDone``),
exactly as its delete would have. kube-rs (``trigger_owners``/``trigger_others`` over
``touched_objects``) loses these: a relist carries no deletes, so the owner of a child deleted
during the outage is not reconciled unless something else triggers it. client-go's informers
report them (``DeletedFinalStateUnknown``); this does the same without a cache of the objects.

Guarantee: a related object that stops mapping to an object (a child moved to another owner or
orphaned, a ``watches`` mapper now naming another object) triggers the object it no longer maps to
as well, live or at a relist, as controller-runtime enqueues the owners of both the old and the new
child: for the one left, the relation's end is as good as a delete. Like deletes, these requests
pass predicates unfiltered. kube-rs triggers only the new mapping.

Requests for related objects seen in a (re)list (``InitApply``) get :data:`LOW_PRIORITY`, as
controller-runtime enqueues its initial list; the ones for objects gone at a relist keep their
priority (they stand for missed deletes, live changes).

A related object created and deleted again while its watch was away is in no list and sent no
delete: nothing tells which object it mapped to. ``on_relist`` covers that case: it is called at
the ``InitDone`` of every relist after the first of a run (a relist always follows a gap in the
watch: the resourceVersion it resumed from was gone) and its requests are emitted at
:data:`LOW_PRIORITY`. The Controller passes every object of its main store there, so a child the
controller wrote and someone deleted during an outage still gets its owner reconciled
(client-go's informers miss this case too; a resync period hides it after hours).

Cost: the requests each related object last mapped to (nothing for objects that map to none),
kept per watch and run. Pitfall: a vanished object is not passed to the mapper again (its last
state is not kept): it triggers what it mapped to when last seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kube_runtime.client.head import LazyObject
from kube_runtime.client.json import KubeObject
from kube_runtime.controller.action import LOW_PRIORITY, ReconcileRequest
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import lazy_key, object_key
from kube_runtime.streams import DeletedLazyObject, DeletedObject, PredicateMemory
from kube_runtime.watcher.event import Apply, Delete, Init, InitApply, InitDone

__all__ = ["RelatedRequests"]


class RelatedRequests:
    """Maps watcher events of related objects to reconcile requests, remembering per object what
    it mapped to, so that objects missing from a relist trigger like deletes.

    ``to_requests(obj)`` maps one object (a :class:`DeletedObject` for a delete). Call it with
    every event of one watch, ``Init``/``InitDone`` included; :meth:`reset` before a new run.

    ``memory`` (optional, a :class:`~kube_runtime.streams.PredicateMemory`) decides whether an
    applied object's requests are emitted; they are remembered either way, so a filtered-out
    object that vanishes at a relist still triggers. Deletes always pass (and are forgotten).

    ``heads``: hand ``to_requests`` the :class:`~kube_runtime.client.head.LazyObject` of events that
    carry one (a :class:`~kube_runtime.streams.DeletedLazyObject` for a delete), and key and filter
    them by their heads: nothing is decoded for a ``to_requests`` that reads heads only.

    ``on_relist`` (optional): the requests for objects that a related object seen by no list or
    event may have mapped to, asked at the end of every relist after the first (see the module
    docs); emitted at low priority, except for objects that relist already requested (their
    requests name the related object that caused them).
    """

    __slots__ = (
        "_heads",
        "_listed",
        "_listed_before",
        "_listing",
        "_mapped",
        "_memory",
        "_on_relist",
        "_requested",
        "_to_requests",
    )

    def __init__(
        self,
        to_requests: Callable[[Any], Iterable[ReconcileRequest]],
        memory: PredicateMemory | None = None,
        *,
        heads: bool = False,
        on_relist: Callable[[], Iterable[ReconcileRequest]] | None = None,
    ) -> None:
        self._to_requests = to_requests
        self._on_relist = on_relist
        #: Whether a listing of this run completed (the next one is a relist after a gap).
        self._listed_before = False
        #: The objects the (re)list in progress has requested so far (``on_relist`` skips them).
        self._requested: set[ObjectRef] = set()
        self._memory = memory
        self._heads = heads
        #: Related object key -> the requests it last mapped to (non-empty ones only).
        self._mapped: dict[str, tuple[ReconcileRequest, ...]] = {}
        #: The same for the (re)list in progress, swapped in at its InitDone.
        self._listing: dict[str, tuple[ReconcileRequest, ...]] | None = None
        #: Every key of the (re)list in progress (mapping or not), to tell what vanished.
        self._listed: set[str] = set()

    def reset(self) -> None:
        self._mapped = {}
        self._listing = None
        self._listed = set()
        self._listed_before = False
        self._requested = set()

    def __call__(self, event: object) -> Iterable[ReconcileRequest]:
        if isinstance(event, Apply):
            requests, left = self._remember(self._mapped, self._subject(event), self._mapped)
            return [*requests, *left]
        if isinstance(event, InitApply):
            if self._listing is None:  # InitApply without Init: a listing anyway
                self._listing = {}
            subject = self._subject(event)
            key = _key(subject)
            if key is not None:
                self._listed.add(key)
            requests, left = self._remember(self._listing, subject, self._mapped)
            if self._on_relist is not None:
                self._requested.update(r.obj_ref for r in requests)
                self._requested.update(r.obj_ref for r in left)
            # What it no longer maps to stands for a missed change: its priority is kept.
            return [ReconcileRequest(r.obj_ref, r.reason, LOW_PRIORITY) for r in requests] + left
        if isinstance(event, Delete):
            subject = self._subject(event)
            key = _key(subject)
            if key is not None:
                self._mapped.pop(key, None)
            if isinstance(subject, LazyObject):
                if self._memory is not None:
                    self._memory.forget_lazy(subject)
                return self._to_requests(DeletedLazyObject(subject.raw, subject.meta))
            if self._memory is not None:
                self._memory.forget(subject)
            return self._to_requests(DeletedObject(subject))
        if isinstance(event, Init):
            self._listing, self._listed, self._requested = {}, set(), set()
            return ()
        if isinstance(event, InitDone):
            listed = self._listed
            vanished = [requests for key, requests in self._mapped.items() if key not in listed]
            self._mapped, self._listing, self._listed = self._listing or {}, None, set()
            missed = [request for requests in vanished for request in requests]
            relisted, self._listed_before = self._listed_before, True
            if relisted and self._on_relist is not None:
                # Objects this relist already requested keep the reason naming their object.
                covered = self._requested | {r.obj_ref for r in missed}
                missed += [
                    ReconcileRequest(r.obj_ref, r.reason, LOW_PRIORITY)
                    for r in self._on_relist()
                    if r.obj_ref not in covered
                ]
            self._requested = set()
            return missed
        return ()

    def _subject(self, event: Apply[Any] | InitApply[Any] | Delete[Any]) -> KubeObject | LazyObject:
        """What ``to_requests`` is handed for ``event``'s object."""
        if self._heads:
            lazy = event.lazy
            if lazy is not None:
                return lazy
        return event.object  # type: ignore[no-any-return]

    def _remember(
        self,
        mapped: dict[str, tuple[ReconcileRequest, ...]],
        obj: KubeObject | LazyObject,
        before: dict[str, tuple[ReconcileRequest, ...]] | None = None,
    ) -> tuple[tuple[ReconcileRequest, ...], list[ReconcileRequest]]:
        """The requests ``obj`` maps to (empty when the predicate memory filters it), remembered
        in ``mapped``, and, with ``before`` (the mapping it replaces), the requests of every
        object it mapped to there and no longer does (never filtered)."""
        requests = tuple(self._to_requests(obj))
        key = _key(obj)
        left: list[ReconcileRequest] = []
        if key is not None:
            earlier = before.get(key) if before is not None else None
            if earlier:
                named = {r.obj_ref for r in requests}
                left = [r for r in earlier if r.obj_ref not in named]
            if requests:
                mapped[key] = requests
            else:
                mapped.pop(key, None)
        memory = self._memory
        if memory is not None and not memory.passes(obj):
            return (), left
        return requests, left

    def __len__(self) -> int:
        """Related objects remembered (those that map to at least one request)."""
        return len(self._mapped)


def _key(obj: KubeObject | LazyObject) -> str | None:
    return lazy_key(obj) if isinstance(obj, LazyObject) else object_key(obj)
