"""The events a watcher yields, and the errors it yields as values.

A watcher's stream is ``AsyncIterator[Event | WatcherError]``: errors are values, not exceptions,
so one failure never ends the stream; the next iteration recovers (kube-rs semantics).

Bracketing guarantee: every full (re)list is ``Init``, then zero or more ``InitApply``, then
``InitDone``; a relist that fails part-way restarts with a new ``Init`` (so a store discards the
partial buffer). ``Apply``/``Delete`` only appear after an ``InitDone``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from kube_runtime.client.errors import ApiError, KubeError

__all__ = [
    "Apply",
    "Delete",
    "Event",
    "Init",
    "InitApply",
    "InitDone",
    "InitialListFailed",
    "NoResourceVersion",
    "WatchError",
    "WatchFailed",
    "WatchStartFailed",
    "WatcherError",
]

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Init:
    """A (re)list starts: a store begins a fresh buffer."""


@dataclass(frozen=True, slots=True)
class InitApply(Generic[K]):
    """An object of the list in progress."""

    object: K


@dataclass(frozen=True, slots=True)
class InitDone:
    """The list is complete: a store swaps its buffer in atomically."""


@dataclass(frozen=True, slots=True, init=False)
class Apply(Generic[K]):
    """An object was added or modified."""

    object: K

    def __init__(self, object: K) -> None:
        # Frozen: the slot is filled through its descriptor, as the generated __init__ would through
        # object.__setattr__, at a third of the cost (one is built per watch event).
        _set_apply_object(self, object)


@dataclass(frozen=True, slots=True, init=False)
class Delete(Generic[K]):
    """An object was deleted; ``object`` is its last state."""

    object: K

    def __init__(self, object: K) -> None:
        _set_delete_object(self, object)


_set_apply_object: Callable[[Apply[Any], Any], None] = vars(Apply)["object"].__set__
_set_delete_object: Callable[[Delete[Any], Any], None] = vars(Delete)["object"].__set__


Event: TypeAlias = Init | InitApply[K] | InitDone | Apply[K] | Delete[K]

#: The shared instances of the field-less events (compare with ``isinstance`` or ``is``).
INIT = Init()
INIT_DONE = InitDone()


class WatcherError(KubeError):
    """Base of the errors a watcher yields. All are retryable: keep iterating."""


class InitialListFailed(WatcherError):
    """A list page failed; the watcher restarts the list (with a new ``Init``)."""

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
