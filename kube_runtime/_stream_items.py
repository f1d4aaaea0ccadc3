"""What the stream helpers of :mod:`kube_runtime.streams` yield: the item aliases and the marker
types telling a delete or a relist from an update. Import them from :mod:`kube_runtime.streams`,
which re-exports them; they live here only to keep that module small."""

from __future__ import annotations

from typing import Any, TypeAlias

from kube_runtime.client.head import LazyObject
from kube_runtime.client.json import KubeObject
from kube_runtime.watcher.event import Delete, WatcherEvent

__all__ = [
    "DeletedLazyObject",
    "DeletedObject",
    "EventItem",
    "LazyItem",
    "ListedLazyObject",
    "ListedObject",
    "ObjectItem",
    "SyncedItem",
]

EventItem: TypeAlias = WatcherEvent[KubeObject] | Exception
ObjectItem: TypeAlias = KubeObject | Exception
LazyItem: TypeAlias = LazyObject | Exception
"""What ``synced_objects(..., lazy=True)`` yields: lazy objects (and their markers) and errors."""
SyncedItem: TypeAlias = KubeObject | LazyObject | Exception
"""What ``synced_objects`` yields when whether it is lazy is only known at run time."""


class DeletedObject(dict[str, Any]):
    """The last state of a deleted object, as yielded by
    :func:`~kube_runtime.streams.touched_objects`.

    A plain ``dict`` in every respect (a shallow copy of the object); the type lets later helpers
    and controllers tell a delete from an update: :func:`~kube_runtime.streams.predicate_filter`
    always passes it.
    """

    __slots__ = ()


class ListedObject(dict[str, Any]):
    """An object yielded by :func:`~kube_runtime.streams.synced_objects` because a (re)list ended,
    not because it changed: triggers give its reconcile a low priority (controller-runtime enqueues
    its initial list that way). A plain ``dict`` in every respect (a shallow copy of the stored
    object).
    """

    __slots__ = ()


class ListedLazyObject(LazyObject):
    """:class:`ListedObject` for ``synced_objects(..., lazy=True)``: the object as a
    :class:`~kube_runtime.client.head.LazyObject` (a fresh decode of the stored bytes on ``object``)."""

    __slots__ = ()


class DeletedLazyObject(LazyObject):
    """:class:`DeletedObject` for ``synced_objects(..., lazy=True)``: the deleted object's last state
    as a :class:`~kube_runtime.client.head.LazyObject`."""

    __slots__ = ()


class ModifyFailed(Exception):
    """The function given to :func:`~kube_runtime.streams.modify` raised on an object. The event
    went on unmodified just before this error (a store after ``modify`` stays complete, a relist
    included); ``error`` is what the function raised (also the ``__cause__``)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(f"modify function raised: {type(error).__name__}: {error}")
        self.error = error
        self.__cause__ = error


def deleted_lazy(item: Delete[KubeObject]) -> DeletedLazyObject:
    """The last state of a deleted object, marked, as a lazy object."""
    lazy = item.lazy
    if lazy is None:
        return DeletedLazyObject(None, None, item.object)
    return DeletedLazyObject(lazy.raw, lazy.meta)
