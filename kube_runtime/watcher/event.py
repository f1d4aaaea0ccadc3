"""The events a watcher yields, and the errors it yields as values.

A watcher's stream is ``AsyncIterator[Event | WatcherError]``: errors are values, not exceptions,
so one failure never ends the stream; the next iteration recovers (kube-rs semantics).

Bracketing guarantee: every full (re)list is ``Init``, then zero or more ``InitApply``, then
``InitDone``; a relist that fails part-way restarts with a new ``Init`` (so a store discards the
partial buffer), and so does a paged list whose ``continue`` token expired, listed again in one
request. ``Apply``/``Delete`` only appear after an ``InitDone``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from kube_runtime.client.errors import ApiError, KubeError
from kube_runtime.client.head import LazyObject

__all__ = [
    "Apply",
    "Delete",
    "Init",
    "InitApply",
    "InitDone",
    "InitialListFailed",
    "NoResourceVersion",
    "WatchError",
    "WatchFailed",
    "WatchStartFailed",
    "WatcherError",
    "WatcherEvent",
]

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Init:
    """A (re)list starts: a store begins a fresh buffer."""


class _ObjectEvent(Generic[K]):
    """An event carrying one object: a decoded value, or a :class:`LazyObject` decoded on demand.

    ``object`` is the object (for a lazy one, decoded on first access and cached: shared, treat it
    as read-only); ``lazy`` is the :class:`LazyObject` when the event was built from one (the
    watcher's events are), else ``None``. Immutable; equal when of the same class with equal objects.
    """

    __slots__ = ("_value",)
    __match_args__ = ("object",)

    def __init__(self, object: K | LazyObject) -> None:
        self._value = object

    @property
    def object(self) -> K:
        value = self._value
        if type(value) is LazyObject:
            return value.object  # type: ignore[return-value]  # K is a KubeObject for lazy events
        return value  # type: ignore[return-value]

    @property
    def lazy(self) -> LazyObject | None:
        value = self._value
        return value if type(value) is LazyObject else None

    def __eq__(self, other: builtins.object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _ObjectEvent)
        return bool(self.object == other.object)

    __hash__ = None  # type: ignore[assignment]  # the object may be a mutable dict

    def __repr__(self) -> str:
        return f"{type(self).__name__}(object={self._value!r})"


class InitApply(_ObjectEvent[K]):
    """An object of the list in progress."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class InitDone:
    """The list is complete: a store swaps its buffer in atomically."""


class Apply(_ObjectEvent[K]):
    """An object was added or modified."""

    __slots__ = ()


class Delete(_ObjectEvent[K]):
    """An object was deleted; ``object`` is its last state."""

    __slots__ = ()


WatcherEvent: TypeAlias = Init | InitApply[K] | InitDone | Apply[K] | Delete[K]

#: The shared instances of the field-less events (compare with ``isinstance`` or ``is``).
INIT = Init()
INIT_DONE = InitDone()


class WatcherError(KubeError):
    """Base of the errors a watcher yields. All are retryable: keep iterating."""


class InitialListFailed(WatcherError):
    """A list page failed; the watcher restarts the list (with a new ``Init``).

    Not yielded for a page whose ``continue`` token expired (410): the watcher then lists
    everything in one request at once, after a new ``Init`` (see :mod:`kube_runtime.watcher.state`).
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"initial list failed: {cause}")
        self.__cause__ = cause


class WatchStartFailed(WatcherError):
    """Opening the watch failed (HTTP error or transport failure)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"failed to start watching: {cause}")
        self.__cause__ = cause


class WatchError(WatcherError):
    """The server sent an ``ERROR`` event; ``status`` is its Status (410 means relist)."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(f"watch error event: {error}")
        self.error = error
        self.__cause__ = error

    @property
    def code(self) -> int:
        return self.error.code


class WatchFailed(WatcherError):
    """The open watch stream broke (transport error or an undecodable line)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"watch stream failed: {cause}")
        self.__cause__ = cause


class NoResourceVersion(WatcherError):
    """The server sent an object or list without a resourceVersion; the watcher relists."""

    def __init__(self) -> None:
        super().__init__("no resourceVersion in a list or watch event")
