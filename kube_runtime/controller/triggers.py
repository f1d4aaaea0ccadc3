"""Triggers: streams of objects (or watcher events) turned into streams of reconcile requests.

kube-rs's ``trigger_self``, ``trigger_owners``, ``trigger_others`` and ``trigger_with``, usable
without the :class:`~kube_runtime.controller.controller.Controller` (which builds its watches with
them) and fed to an :func:`~kube_runtime.controller.applier.applier`::

    requests = trigger_self(watcher(api).default_backoff().reflect(writer).synced_objects(reader), resource)

Guarantees: every helper yields :class:`~kube_runtime.controller.action.ReconcileRequest` values
and passes errors (exception instances) through unchanged, as the stream helpers do; an exception
raised by a mapper is yielded in place of that item's requests and the stream goes on. Closing a
trigger closes the stream it reads.

Pitfall: ``trigger_owners`` and ``trigger_others`` take watcher *events* (not objects) so that a
related object deleted while its watch was away still triggers at the relist
(:mod:`~kube_runtime.controller.related`); build a new trigger per run of its watch.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any, TypeAlias, TypeVar

from kube_runtime.client.head import LazyObject
from kube_runtime.client.json import KubeObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import DEFAULT_PRIORITY, LOW_PRIORITY, ReconcileReason, ReconcileRequest
from kube_runtime.controller.related import RelatedRequests
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import Store
from kube_runtime.streams import (
    DeletedLazyObject,
    DeletedObject,
    ListedLazyObject,
    ListedObject,
    PredicateMemory,
    WatchStream,
)

__all__ = [
    "RequestItem",
    "store_requests",
    "trigger_others",
    "trigger_owners",
    "trigger_self",
    "trigger_with",
]

T = TypeVar("T")

#: What a trigger yields: a request, or an error from its source (or its mapper).
RequestItem: TypeAlias = ReconcileRequest | Exception


def trigger_with(
    stream: AsyncIterable[T | Exception], mapper: Callable[[T], Iterable[ReconcileRequest]]
) -> WatchStream[RequestItem]:
    """The requests ``mapper`` returns for each item of ``stream`` (kube-rs ``trigger_with``)."""
    return _Triggered(stream, mapper)


def trigger_self(
    stream: AsyncIterable[KubeObject | LazyObject | Exception],
    resource: ApiResource,
    *,
    on_delete: Callable[[ObjectRef], object] | None = None,
) -> WatchStream[RequestItem]:
    """A request (reason ``object updated``) for each object of ``resource``, at low priority for
    objects a relist yielded (:class:`~kube_runtime.streams.ListedObject`); deleted objects
    (:class:`~kube_runtime.streams.DeletedObject`) trigger nothing (handle deletion with a
    finalizer), but their ref is passed to ``on_delete`` if given, so that state kept per object
    can go with it. Items may also be :class:`~kube_runtime.client.head.LazyObject` values
    (``synced_objects(..., lazy=True)``, with its ``ListedLazyObject``/``DeletedLazyObject``
    markers): their refs come from their heads, nothing is decoded."""

    return _SelfTriggered(stream, resource, on_delete)


def store_requests(
    reader: Store, resource: ApiResource, reason: ReconcileReason
) -> Callable[[], list[ReconcileRequest]]:
    """A function returning a low-priority request (``reason``) for every object ``reader`` holds
    when called (refs read from the stored heads, nothing decoded): the ``on_relist`` of
    :func:`trigger_owners`/:func:`trigger_others`, or a bulk reconcile."""

    def requests() -> list[ReconcileRequest]:
        return [
            ReconcileRequest(ObjectRef.from_head(lazy.meta, resource), reason, LOW_PRIORITY)
            for lazy in reader.lazy_objects(LazyObject)
        ]

    return requests


def trigger_owners(
    stream: AsyncIterable[Any],
    owner: ApiResource,
    child: ApiResource,
    memory: PredicateMemory | None = None,
    *,
    on_relist: Callable[[], Iterable[ReconcileRequest]] | None = None,
) -> WatchStream[RequestItem]:
    """For each watcher event of ``child`` objects (deletes included), a request for every
    ``ownerReferences`` entry of kind ``owner`` (``controller: true`` is not needed); children
    gone at a relist trigger their owners as their delete would have. ``memory`` (a
    :class:`~kube_runtime.streams.PredicateMemory`) filters applied children; their deletes and
    relist disappearances always trigger. Children are read from their heads (nothing decoded).

    ``on_relist`` (for example :func:`store_requests` over the owners' store) is asked for
    requests at the end of every relist after the first: a child created and deleted while the
    watch was away is in no list, so only a reconcile of every owner covers it (see
    :mod:`~kube_runtime.controller.related`). Without it such a child goes unnoticed, as in
    kube-rs and client-go."""

    def to_requests(obj: KubeObject | LazyObject) -> Iterable[ReconcileRequest]:
        if isinstance(obj, LazyObject):
            head = obj.meta
            owner_refs = head.metadata.ownerReferences
            if not owner_refs:
                return ()
            reason = ReconcileReason.related_object_updated(ObjectRef.from_head(head, child))
            namespace = head.metadata.namespace
        else:
            meta = obj.get("metadata") or {}
            owner_refs = meta.get("ownerReferences")
            if not owner_refs:
                return ()
            reason = ReconcileReason.related_object_updated(ObjectRef.from_obj(obj, child))
            namespace = meta.get("namespace")
        requests = []
        for owner_ref in owner_refs:
            ref = ObjectRef.from_owner_ref(namespace, owner_ref, owner)
            if ref is not None:
                requests.append(ReconcileRequest(ref, reason))
        return requests

    return _Triggered(stream, RelatedRequests(to_requests, memory, heads=True, on_relist=on_relist))


def trigger_others(
    stream: AsyncIterable[Any],
    other: ApiResource,
    mapper: Callable[[KubeObject], Iterable[ObjectRef]],
    memory: PredicateMemory | None = None,
    *,
    on_relist: Callable[[], Iterable[ReconcileRequest]] | None = None,
) -> WatchStream[RequestItem]:
    """For each watcher event of ``other`` objects (a delete hands ``mapper`` a
    :class:`~kube_runtime.streams.DeletedObject`), a request for every ref ``mapper`` names; objects
    gone at a relist trigger what they last mapped to, without calling ``mapper`` again.
    ``memory`` and ``on_relist`` as in :func:`trigger_owners`."""

    def to_requests(obj: KubeObject) -> Iterable[ReconcileRequest]:
        reason = ReconcileReason.related_object_updated(ObjectRef.from_obj(obj, other))
        return [ReconcileRequest(ref, reason) for ref in mapper(obj)]

    return _Triggered(stream, RelatedRequests(to_requests, memory, on_relist=on_relist))


class _SelfTriggered(WatchStream[RequestItem]):
    """:func:`trigger_self`'s stream: at most one request per item, made in ``__anext__`` itself
    (it runs once per watch event: no mapper call and no batch in between)."""

    __slots__ = ("_items", "_on_delete", "_resource")

    def __init__(
        self,
        stream: AsyncIterable[Any],
        resource: ApiResource,
        on_delete: Callable[[ObjectRef], object] | None,
    ) -> None:
        super().__init__(stream)
        self._items = self._source
        self._resource = resource
        self._on_delete = on_delete

    async def __anext__(self) -> RequestItem:
        while True:
            item: Any = await self._items.__anext__()
            if isinstance(item, Exception):
                return item
            try:
                if isinstance(item, LazyObject):  # refs from the head: nothing decoded
                    ref = ObjectRef.from_head(item.meta, self._resource)
                    deleted = isinstance(item, DeletedLazyObject)
                    listed = isinstance(item, ListedLazyObject)
                else:
                    ref = ObjectRef.from_obj(item, self._resource)
                    deleted = isinstance(item, DeletedObject)
                    listed = isinstance(item, ListedObject)
                if not deleted:
                    priority = LOW_PRIORITY if listed else DEFAULT_PRIORITY
                    return ReconcileRequest(ref, ReconcileReason.OBJECT_UPDATED, priority)
                if self._on_delete is not None:
                    self._on_delete(ref)
            except Exception as exc:  # an object without a name, or a failing delete listener
                return exc


class _Triggered(WatchStream[RequestItem]):
    """One ``__anext__`` per request; a multi-request item is handed out one request at a time."""

    __slots__ = ("_batch", "_items", "_to_requests")

    def __init__(
        self, stream: AsyncIterable[Any], to_requests: Callable[[Any], Iterable[ReconcileRequest]]
    ) -> None:
        super().__init__(stream)
        self._items = self._source
        self._to_requests = to_requests
        self._batch: list[ReconcileRequest] = []

    async def __anext__(self) -> RequestItem:
        batch = self._batch
        if batch:
            return batch.pop()
        while True:
            item = await self._items.__anext__()
            if isinstance(item, Exception):
                return item
            try:
                requests = list(self._to_requests(item))
            except Exception as exc:  # a mapper bug or an object without a name
                return exc
            if requests:
                requests.reverse()
                first = requests.pop()
                self._batch = requests
                return first
