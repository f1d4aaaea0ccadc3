"""The watcher as a pure state machine: no I/O, no clock, no randomness.

The driver (:mod:`kube_runtime.watcher.watcher`) asks :func:`next_call` what to do in the current
state, performs exactly that one call against the API server, and feeds what happened back as an
:data:`Outcome` to :func:`step`, which returns the next state and the items to yield. Because the
machine is a pair of pure functions over small frozen values, it can be checked exhaustively or
with property tests against a model.

Semantics (kube-rs ``watcher.rs``, with its known gaps fixed):

* ``LIST_WATCH``: ``Init`` with the first page, ``InitApply`` per listed object, ``InitDone`` after
  the last page, then a watch from the list's resourceVersion.
* ``STREAMING_LIST``: ``Init`` as soon as the ``sendInitialEvents`` watch opens (kube-rs emits no
  ``Init`` here, so a store kept stale objects from an aborted stream), ``InitApply`` per ADDED
  object, ``InitDone`` at the ``k8s.io/initial-events-end`` bookmark.
* The last resourceVersion seen in an object or bookmark is tracked; a normal end of the watch, an
  idle timeout or a broken connection resumes from it without relisting.
* An ``ERROR`` event with code 410 relists. So does a 410 when starting the watch (kube-rs retries
  that stale version forever).
* A list page requested with a ``continue`` token that fails with 410 (reason ``Expired``: the
  token's resourceVersion was compacted away) falls back to one list without ``limit`` and without
  ``continue`` (:class:`InitFullList`), as client-go's pager does for the reflector
  (``FullListIfExpired``); the fallback yields a fresh ``Init`` at once (the pages so far are
  discarded, as by a restart) and that one list completes it with ``InitDone``. kube-rs restarts
  the paged list instead, which never finishes while compaction outpaces it. The expired page is
  not an error value (nothing to back off from); the driver logs it.
* Any other list failure, and a failure of that full list, starts over from :class:`Empty`; the
  new list begins with a fresh ``Init``.
* A watch line that fails to decode is reported (``WatchFailed``) and read again: the watch reopens
  from the last version, and a streaming list starts over (kube-rs reads on, and the event or the
  listed object is lost); the same line failing again is skipped (:class:`Watching`,
  :class:`InitialWatch`).
* A server that does not serve streaming lists (kube-rs retries it forever, the store never ready):
  the step says so (``Stepped.streaming_unsupported``) and the driver lists with ``LIST_WATCH`` for
  the rest of the watcher's life, as client-go's reflector falls back to "standard LIST semantics".
  The step yields no error (nothing to back off from) and goes to :class:`Empty`, so the paged list
  begins with a fresh ``Init`` that discards whatever the stream delivered. The signals:

  - refused: opening the ``sendInitialEvents`` watch (or an ``ERROR`` event before its end marker)
    fails with 400, 403 or 422 naming ``sendInitialEvents`` or ``resourceVersionMatch`` in its
    message or causes (:func:`streaming_refused`). kube-apiserver >= 1.27 with the ``WatchList``
    gate off answers 422 Invalid, cause ``sendInitialEvents``: "Forbidden: sendInitialEvents is
    forbidden for watch unless the WatchList feature gate is enabled"; 1.19 to 1.26 answer 422,
    cause ``resourceVersionMatch``: "Forbidden: resourceVersionMatch is forbidden for watch".
  - silent: a server older than both parameters (or a proxy or non-kube-apiserver that drops them)
    serves the request as a plain watch from resourceVersion 0: the current objects as ADDED, then
    changes, never the end marker. Taken as unsupported, before the marker: a BOOKMARK without the
    ``k8s.io/initial-events-end`` annotation (kube-apiserver annotates every bookmark of a streaming
    list until it has sent one, so a supporting server never sends one), a normal end of the watch,
    or its idle timeout (:class:`~kube_runtime.client.errors.WatchTimeout`).

  Pitfall: a supporting server that ends the streaming watch before its marker (a restart, a
  ``timeoutSeconds`` shorter than sending the initial objects takes, a proxy closing it) also turns
  the watcher to paged lists, for good: correct, only costlier. So does a server that marks the end
  of its initial events with a bookmark lacking the annotation (some aggregated API servers did).
  A transport failure, an ``ERROR`` event of another kind and a decode failure keep starting the
  streaming list over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from kube_runtime.client.errors import ApiError, KubeError, ObjectDecodeError, WatchTimeout
from kube_runtime.client.head import LazyObject, RawList
from kube_runtime.client.json import KubeObject
from kube_runtime.watcher.event import (
    INIT,
    INIT_DONE,
    Apply,
    Delete,
    InitApply,
    InitialListFailed,
    NoResourceVersion,
    WatcherError,
    WatcherEvent,
    WatchError,
    WatchFailed,
    WatchStartFailed,
)

__all__ = [
    "INITIAL_EVENTS_END_ANNOTATION",
    "Call",
    "Empty",
    "InitFullList",
    "InitListed",
    "InitPage",
    "InitialWatch",
    "ListFailed",
    "ListPage",
    "Listed",
    "Outcome",
    "ReadWatch",
    "Received",
    "StartWatch",
    "State",
    "Stepped",
    "StreamBroken",
    "StreamDecodeFailed",
    "StreamEnded",
    "StreamErrorEvent",
    "WatchOpened",
    "WatchRejected",
    "WatcherItem",
    "Watching",
    "continue_expired",
    "has_open_watch",
    "next_call",
    "step",
    "streaming_refused",
    "watching_received",
]

INITIAL_EVENTS_END_ANNOTATION: Final = "k8s.io/initial-events-end"

WatcherItem: TypeAlias = WatcherEvent[KubeObject] | WatcherError

# -- states --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Empty:
    """Nothing known: the next step starts a full (re)list.

    ``refetch``: the streaming list starts again because a line of the last one failed to decode
    (see :class:`InitialWatch`)."""

    refetch: bool = False


@dataclass(frozen=True, slots=True)
class InitPage:
    """Part-way through a paged list: the next page is fetched with ``continue_token``."""

    continue_token: str
    resource_version: str | None


@dataclass(frozen=True, slots=True)
class InitFullList:
    """A page's ``continue`` token expired: the next call lists everything in one request (no
    ``limit``, no ``continue``; the first page's selectors and resourceVersion semantics). The
    ``Init`` that discards the pages so far was already yielded; this list's objects follow it."""


@dataclass(frozen=True, slots=True)
class InitialWatch:
    """A streaming-list watch is open and still sending its initial objects.

    A line that fails to decode would leave its object out of the list (and of the store the list
    is swapped into), so the list starts over; ``refetch`` marks that second list, which reports
    and skips a line failing again rather than starting over forever."""

    refetch: bool = False


@dataclass(frozen=True, slots=True)
class InitListed:
    """The state at ``resource_version`` is known; the next step opens a watch from it.

    ``refetch``: the watch reopens to read again the events a line that failed to decode was
    among (see :class:`Watching`)."""

    resource_version: str
    refetch: bool = False


@dataclass(frozen=True, slots=True)
class Watching:
    """A watch is open; ``resource_version`` is the last version seen (object or bookmark).

    A line that fails to decode closes the watch, which reopens from ``resource_version`` to read
    the lost event again (client-go's reflector does the same; kube-rs reads on and the event is
    lost). ``refetch`` marks such a reopened watch: a line failing again before the version moves
    is the same line, which reading a third time cannot help, so it is reported and skipped, and
    the watch goes on (no stall on an object the server keeps sending malformed)."""

    resource_version: str
    refetch: bool = False


State: TypeAlias = Empty | InitPage | InitFullList | InitialWatch | InitListed | Watching

# -- calls: the one I/O call the driver makes next ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListPage:
    """List one page: the first (``continue_token`` ``None``) or the next one. ``full``: one list of
    everything instead, without ``limit`` (the fallback after an expired token)."""

    continue_token: str | None
    full: bool = False


@dataclass(frozen=True, slots=True)
class StartWatch:
    """Open a watch: resumed from ``resource_version``, or the initial streaming-list watch."""

    resource_version: str | None
    initial: bool


@dataclass(frozen=True, slots=True)
class ReadWatch:
    """Read the next item of the open watch (bounded by the idle timeout)."""


Call: TypeAlias = ListPage | StartWatch | ReadWatch

# -- outcomes: what the call produced --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """A list page arrived: a :class:`RawList` (items left as bytes), or the decoded List object
    (``items``, ``metadata.continue``/``resourceVersion``) from a list function that decodes."""

    page: RawList | dict[str, Any]


@dataclass(frozen=True, slots=True)
class ListFailed:
    error: BaseException


@dataclass(frozen=True, slots=True)
class WatchOpened:
    pass


@dataclass(frozen=True, slots=True)
class WatchRejected:
    """Opening the watch failed: an ``ApiError`` (HTTP status) or a transport failure."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class Received:
    """A watch event: ``type`` is ADDED, MODIFIED, DELETED or BOOKMARK; ``object`` the event's
    object, lazy (as the watch decoder makes it) or decoded."""

    type: str
    object: LazyObject | KubeObject

    @property
    def lazy(self) -> LazyObject:
        obj = self.object
        return obj if type(obj) is LazyObject else LazyObject.from_object(obj)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class StreamErrorEvent:
    """The server sent an ``ERROR`` event carrying a Status."""

    error: ApiError


@dataclass(frozen=True, slots=True)
class StreamDecodeFailed:
    """One line could not be decoded; the stream is still usable, but the line's event is lost
    unless read again."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class StreamBroken:
    """The connection broke; the stream is unusable."""

    error: BaseException


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The watch ended normally (server timeout) or was idle for too long (``idle=True``)."""

    idle: bool = False


Outcome: TypeAlias = (
    Listed
    | ListFailed
    | WatchOpened
    | WatchRejected
    | Received
    | StreamErrorEvent
    | StreamDecodeFailed
    | StreamBroken
    | StreamEnded
)


@dataclass(frozen=True, slots=True)
class Stepped:
    """The next state and the items to yield. ``streaming_unsupported``: the server does not serve
    streaming lists (see the module docstring); the driver passes ``streaming=False`` to
    :func:`next_call` from now on. It is not part of the state because it outlives every state (a
    410 long after the fallback must relist with pages again)."""

    state: State
    items: tuple[WatcherItem, ...] = ()
    streaming_unsupported: bool = False


_EMPTY: Final = Empty()
_FULL_LIST: Final = InitFullList()
_LIST_EVERYTHING: Final = ListPage(None, full=True)
_INITIAL_WATCH: Final = InitialWatch()
_REFETCHING_LIST: Final = InitialWatch(refetch=True)
_READ: Final = ReadWatch()
_UNSTREAMABLE: Final = Stepped(_EMPTY, (), streaming_unsupported=True)
#: Query parameters of the initial streaming watch that a server without streaming lists refuses.
_STREAMING_PARAMETERS: Final = ("sendInitialEvents", "resourceVersionMatch")


def has_open_watch(state: State) -> bool:
    """Whether the driver must hold an open watch stream in this state (and close it on leaving)."""
    return isinstance(state, InitialWatch | Watching)


def next_call(state: State, *, streaming: bool) -> Call:
    """The single call to make in ``state`` (``streaming``: the initial strategy is streaming list)."""
    if isinstance(state, Empty):
        return StartWatch(None, initial=True) if streaming else ListPage(None)
    if isinstance(state, InitPage):
        return ListPage(state.continue_token)
    if isinstance(state, InitFullList):
        return _LIST_EVERYTHING
    if isinstance(state, InitListed):
        return StartWatch(state.resource_version, initial=False)
    return _READ


def step(state: State, outcome: Outcome) -> Stepped:
    """The next state and the items to yield, given what the last action produced.

    Raises ``ValueError`` for an outcome that cannot follow the state's action (a driver bug).
    """
    if isinstance(state, Empty | InitPage | InitFullList):
        return _step_listing(state, outcome)
    if isinstance(state, InitListed):
        return _step_starting(state, outcome)
    if isinstance(state, InitialWatch):
        return _step_initial_watch(state, outcome)
    return _step_watching(state, outcome)


def _unexpected(state: State, outcome: Outcome) -> ValueError:
    return ValueError(f"outcome {type(outcome).__name__} cannot follow state {state!r}")


def continue_expired(error: BaseException) -> bool:
    """Whether a page requested with a ``continue`` token failed because the token expired: a 410
    (kube-apiserver answers reason ``Expired``, "The provided continue parameter is too old ...")."""
    return isinstance(error, ApiError) and (error.is_gone or error.reason == "Expired")


def streaming_refused(error: BaseException) -> bool:
    """Whether the initial streaming watch failed because the server does not accept it: an
    ``ApiError`` 400 (BadRequest), 403 or 422 (Invalid) whose message, or a cause's field or
    message, names ``sendInitialEvents`` or ``resourceVersionMatch`` (the parameters only that watch
    sends; see the module docstring for kube-apiserver's answers). An authorization 403 names the
    verb and resource, never a parameter, so it stays an ordinary error."""
    if not isinstance(error, ApiError) or error.code not in (400, 403, 422):
        return False
    texts = [error.message]
    causes = error.details.get("causes")
    if isinstance(causes, list):
        for cause in causes:
            if isinstance(cause, dict):
                texts.append(str(cause.get("field") or ""))
                texts.append(str(cause.get("message") or ""))
    return any(name in text for text in texts for name in _STREAMING_PARAMETERS)


def _step_listing(state: Empty | InitPage | InitFullList, outcome: Outcome) -> Stepped:
    first = isinstance(state, Empty)
    if isinstance(outcome, Listed):
        carried = state.resource_version if isinstance(state, InitPage) else None
        return _page(outcome.page, carried, first=first)
    if isinstance(outcome, ListFailed):
        if isinstance(state, InitPage) and continue_expired(outcome.error):
            # client-go's pager (FullListIfExpired): the rest cannot be paged at the list's version;
            # list everything at once. The Init resets a store's buffer of the pages so far.
            return Stepped(_FULL_LIST, (INIT,))
        return Stepped(_EMPTY, (InitialListFailed(outcome.error),))
    if first and isinstance(outcome, WatchOpened):
        assert isinstance(state, Empty)
        return Stepped(_REFETCHING_LIST if state.refetch else _INITIAL_WATCH, (INIT,))
    if first and isinstance(outcome, WatchRejected):
        if streaming_refused(outcome.error):
            return _UNSTREAMABLE
        return Stepped(_EMPTY, (WatchStartFailed(outcome.error),))
    raise _unexpected(state, outcome)


def _page(page: RawList | dict[str, Any], carried_rv: str | None, *, first: bool) -> Stepped:
    if isinstance(page, RawList):
        continue_token = page.continue_token
        resource_version = page.resource_version or carried_rv
    else:
        meta = page.get("metadata") or {}
        continue_token = meta.get("continue") or None
        resource_version = meta.get("resourceVersion") or carried_rv
    if continue_token is None and resource_version is None:
        return Stepped(_EMPTY, (NoResourceVersion(),))
    items: list[WatcherItem] = [INIT] if first else []
    if isinstance(page, RawList):
        try:
            objects = page.objects()
        except ObjectDecodeError as exc:
            return Stepped(_EMPTY, (InitialListFailed(exc),))
        items.extend(InitApply(obj) for obj in objects)
    else:
        decoded = page.get("items") or ()
        _fill_type(page, decoded)
        items.extend(InitApply(obj) for obj in decoded)
    if continue_token is not None:
        return Stepped(InitPage(continue_token, resource_version), tuple(items))
    assert resource_version is not None
    items.append(INIT_DONE)
    return Stepped(InitListed(resource_version), tuple(items))


def _fill_type(page: dict[str, Any], objects: Any) -> None:
    """List items usually omit ``kind``/``apiVersion``; copy them from the List so every object has them."""
    list_kind = page.get("kind")
    api_version = page.get("apiVersion")
    if not isinstance(list_kind, str) or not list_kind.endswith("List") or not api_version:
        return
    kind = list_kind[: -len("List")]
    for obj in objects:
        if "kind" not in obj:
            obj["kind"] = kind
            obj["apiVersion"] = api_version


def _step_starting(state: InitListed, outcome: Outcome) -> Stepped:
    if isinstance(outcome, WatchOpened):
        return Stepped(Watching(state.resource_version, state.refetch))
    if isinstance(outcome, WatchRejected):
        error = WatchStartFailed(outcome.error)
        if isinstance(outcome.error, ApiError) and outcome.error.is_gone:
            # Our fix: the version is gone from the server's history; retrying it can only 410 again.
            return Stepped(_EMPTY, (error,))
        return Stepped(state, (error,))
    raise _unexpected(state, outcome)


def _step_initial_watch(state: InitialWatch, outcome: Outcome) -> Stepped:
    if isinstance(outcome, Received):
        kind = outcome.type
        if kind in ("ADDED", "MODIFIED"):
            return Stepped(state, (InitApply(outcome.object),))
        if kind == "BOOKMARK":
            try:
                meta = outcome.lazy.meta.metadata
            except ObjectDecodeError as exc:
                return _initial_decode_failed(state, exc)
            annotations = meta.annotations or {}
            if annotations.get(INITIAL_EVENTS_END_ANNOTATION) != "true":
                return _UNSTREAMABLE  # the server ignored sendInitialEvents (module docstring)
            resource_version = meta.resourceVersion or None
            if resource_version is None:
                return Stepped(_EMPTY, (NoResourceVersion(),))
            return Stepped(Watching(resource_version), (INIT_DONE,))
        if kind == "DELETED":
            # The server never sends deletes among initial events; nothing to undo in the buffer.
            return Stepped(state)
        return Stepped(state, (_unknown_type(kind),))
    if isinstance(outcome, StreamDecodeFailed):
        return _initial_decode_failed(state, outcome.error)
    if _ended_unstreamed(outcome):
        return _UNSTREAMABLE
    return _stream_trouble(state, outcome, resume=_EMPTY)


def _ended_unstreamed(outcome: Outcome) -> bool:
    """Whether ``outcome``, before the end marker of a streaming list, means the server does not
    serve streaming lists: a normal end, the idle timeout, or an ``ERROR`` event refusing it."""
    if isinstance(outcome, StreamEnded):
        return True
    if isinstance(outcome, StreamBroken):
        return isinstance(outcome.error, WatchTimeout)
    return isinstance(outcome, StreamErrorEvent) and streaming_refused(outcome.error)


def _initial_decode_failed(state: InitialWatch, error: BaseException) -> Stepped:
    """A line of a streaming list failed to decode: list again, unless this list is that second
    one (:class:`InitialWatch`)."""
    if state.refetch:
        return Stepped(state, (WatchFailed(error),))
    return Stepped(Empty(refetch=True), (WatchFailed(error),))


def watching_received(kind: str, obj: LazyObject) -> tuple[str, WatcherItem | None] | None:
    """The watching state's transition for the common event: an ADDED, MODIFIED or DELETED object,
    or a BOOKMARK, that carries a resourceVersion. Returns the resourceVersion to watch from next and
    the item to yield (``None`` for a bookmark); ``None`` for any other event, which needs
    :func:`step`. Only the object's head is read (``obj.meta``; raises ``ObjectDecodeError`` for an
    object built from a dict whose metadata has the wrong shape); the item carries ``obj`` itself.

    This is the function :func:`step` applies to such an event in :class:`Watching`, so a driver
    holding a ``Watching`` state may call it per event and build the next ``Watching`` only when the
    stream leaves the steady state: the same transition without the intermediate values.
    """
    version = obj.meta.metadata.resourceVersion
    if not version:
        return None
    if kind == "MODIFIED" or kind == "ADDED":
        return version, Apply(obj)
    if kind == "DELETED":
        return version, Delete(obj)
    if kind == "BOOKMARK":
        return version, None
    return None


def _step_watching(state: Watching, outcome: Outcome) -> Stepped:
    if isinstance(outcome, Received):
        kind = outcome.type
        try:
            moved = watching_received(kind, outcome.lazy)
        except ObjectDecodeError as exc:
            return _decode_failed(state, exc)
        if moved is not None:
            version, item = moved
            following = state if version == state.resource_version else Watching(version)
            return Stepped(following, () if item is None else (item,))
        if kind == "BOOKMARK":
            return Stepped(state)  # a bookmark without a usable resourceVersion: nothing to resume from
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            return Stepped(_EMPTY, (NoResourceVersion(),))
        return Stepped(state, (_unknown_type(kind),))
    if isinstance(outcome, StreamDecodeFailed):
        return _decode_failed(state, outcome.error)
    return _stream_trouble(state, outcome, resume=InitListed(state.resource_version))


def _decode_failed(state: Watching, error: BaseException) -> Stepped:
    """A line of the open watch failed to decode: reopen from the last version to read it again,
    unless this watch is that reopening and the version has not moved since (:class:`Watching`)."""
    if state.refetch:
        return Stepped(state, (WatchFailed(error),))
    return Stepped(InitListed(state.resource_version, refetch=True), (WatchFailed(error),))


def _stream_trouble(state: InitialWatch | Watching, outcome: Outcome, *, resume: State) -> Stepped:
    """Errors and ends of an open watch. ``resume`` is where a closed stream continues from."""
    if isinstance(outcome, StreamErrorEvent):
        error = WatchError(outcome.error)
        return Stepped(_EMPTY if outcome.error.is_gone else state, (error,))
    if isinstance(outcome, StreamDecodeFailed):
        return Stepped(state, (WatchFailed(outcome.error),))
    if isinstance(outcome, StreamBroken):
        return Stepped(resume, (WatchFailed(outcome.error),))
    if isinstance(outcome, StreamEnded):
        return Stepped(resume)
    raise _unexpected(state, outcome)


def _unknown_type(kind: str) -> WatchFailed:
    return WatchFailed(KubeError(f"unknown watch event type {kind!r}"))
