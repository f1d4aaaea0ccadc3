"""The watcher's I/O driver: runs the pure state machine of :mod:`kube_runtime.watcher.state`.

``watcher(api, config)`` is an endless async iterator of events and error values. It starts no
background task: each ``__anext__`` makes at most one API call (a list page, opening a watch, or
reading the open watch), so it is safe to iterate, cancel and close; closing it closes the open
watch connection. It never sleeps either: add :meth:`WatchStream.default_backoff` (or
:func:`kube_runtime.streams.backoff`) so that a failing API server is not retried in a hot loop.

Timeouts: each watch is opened with the idle timeout of the watcher's
:class:`~kube_runtime.watcher.cadence.IdleBudget` (learned from bookmarks, at most
``timeoutSeconds`` + 5 s), which bounds the request until its response headers and then every
silence on the stream. A watch given up that way is yielded as ``WatchStartFailed`` (no headers)
or ``WatchFailed`` (silence), both caused by a
:class:`~kube_runtime.client.errors.WatchTimeout`, and the next iteration resumes from the last
resourceVersion, so a backoff stage delays the retry and ``observe_watch`` counts and logs it.

Lists: pages of ``page_size`` objects (``limit`` and ``continue``). A page whose ``continue``
token expired (410: its resourceVersion was compacted) is not retried from scratch: the next call
lists everything in one request (see :mod:`kube_runtime.watcher.state`), logged at INFO, and its
``Init`` is counted by ``observe_watch`` as a relist.

Streaming lists: when the state machine finds that the server does not serve them (the
``sendInitialEvents`` watch refused, or served as a plain watch without the end marker: see
:mod:`kube_runtime.watcher.state`), this watcher lists with paged ``list`` calls and watches from
the list's version for the rest of its life. That is logged once, at WARNING, naming the resource
and the signal; no error value is yielded for it, so a backoff stage does not delay the list.
Pitfall: the switch is per watcher, so every new watcher (a restarted controller) tries streaming
first again, and against such a server pays one refused request (or one streamed list) each time.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from kube_runtime.client.errors import ApiError, ObjectDecodeError, WatchDecodeError, WatchTimeout
from kube_runtime.client.idle import IdleTimedStream
from kube_runtime.client.json import KubeObject
from kube_runtime.client.lines import WatchEvent
from kube_runtime.client.resource import ApiResource
from kube_runtime.watcher.cadence import IdleBudget
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.event import (
    Apply,
    Delete,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    WatcherError,
    WatchStartFailed,
)
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.shards import check_shard_info
from kube_runtime.watcher.state import (
    Empty,
    InitFullList,
    Listed,
    ListFailed,
    ListPage,
    Outcome,
    Received,
    StartWatch,
    State,
    StreamBroken,
    StreamDecodeFailed,
    StreamEnded,
    StreamErrorEvent,
    WatcherItem,
    Watching,
    WatchOpened,
    WatchRejected,
    has_open_watch,
    next_call,
    step,
    watching_received,
)

if TYPE_CHECKING:
    from kube_runtime.streams import WatchStream

__all__ = ["MetadataWatchableApi", "WatchableApi", "metadata_watcher", "watch_object", "watcher"]

_log = logging.getLogger("kube_runtime.watcher")

T = TypeVar("T")
ListFn = Callable[..., Any]
WatchFn = Callable[..., AbstractAsyncContextManager[IdleTimedStream[Any]]]


class WatchableApi(Protocol):
    """The part of :class:`kube_runtime.client.api.Api` a watcher uses. An object that also has
    ``list_raw`` (same parameters, returning a :class:`~kube_runtime.client.head.RawList`, as
    ``Api`` does) is listed through it, so list items are never decoded whole."""

    async def list(
        self,
        *,
        label_selector: str | None = ...,
        field_selector: str | None = ...,
        limit: int | None = ...,
        continue_token: str | None = ...,
        resource_version: str | None = ...,
        resource_version_match: str | None = ...,
    ) -> dict[str, Any]: ...

    def watch(
        self,
        *,
        resource_version: str | None = ...,
        label_selector: str | None = ...,
        field_selector: str | None = ...,
        timeout_seconds: int | None = ...,
        allow_bookmarks: bool = ...,
        send_initial_events: bool = ...,
        resource_version_match: str | None = ...,
        idle_timeout: float | None = ...,
    ) -> AbstractAsyncContextManager[IdleTimedStream[Any]]: ...


class MetadataWatchableApi(Protocol):
    """The metadata-only verbs of :class:`kube_runtime.client.api.Api`. An object that also has
    ``list_metadata_raw`` (same parameters, returning a :class:`~kube_runtime.client.head.RawList`
    whose ``objects()`` are the items ``list_metadata`` returns, as ``Api`` does) is listed through
    it, so list items are never decoded whole. Pitfall: ``list_metadata`` is then never called, so
    a wrapper (a test double, a proxy) overriding only ``list_metadata`` of an ``Api`` is bypassed."""

    async def list_metadata(
        self,
        *,
        label_selector: str | None = ...,
        field_selector: str | None = ...,
        limit: int | None = ...,
        continue_token: str | None = ...,
        resource_version: str | None = ...,
        resource_version_match: str | None = ...,
    ) -> dict[str, Any]: ...

    def watch_metadata(
        self,
        *,
        resource_version: str | None = ...,
        label_selector: str | None = ...,
        field_selector: str | None = ...,
        timeout_seconds: int | None = ...,
        allow_bookmarks: bool = ...,
        send_initial_events: bool = ...,
        resource_version_match: str | None = ...,
        idle_timeout: float | None = ...,
    ) -> AbstractAsyncContextManager[IdleTimedStream[Any]]: ...


def watcher(
    api: WatchableApi, config: WatcherConfig | None = None, *, progress: WatchProgress | None = None
) -> WatchStream[WatcherItem]:
    """Watch every object ``api`` can see, as ``Init``/``InitApply``/``InitDone``/``Apply``/``Delete``.

    Errors are yielded as :class:`~kube_runtime.watcher.event.WatcherError` values and the next
    iteration recovers; the stream never ends by itself. See :mod:`kube_runtime.watcher.state`
    for exactly when it resumes and when it relists. ``progress`` (optional) is stamped on every
    list page and every line of the open watch, bookmarks included (see
    :class:`~kube_runtime.watcher.progress.WatchProgress`); bookmarks still yield nothing.
    """
    list_fn = _list_fn(api, "list_raw", api.list)
    return _stream(_drive(list_fn, api.watch, config or WatcherConfig(), progress, _resource_of(api)))


def metadata_watcher(
    api: MetadataWatchableApi, config: WatcherConfig | None = None, *, progress: WatchProgress | None = None
) -> WatchStream[WatcherItem]:
    """Like :func:`watcher`, over ``PartialObjectMetadata`` (metadata only: far less memory).

    Listed through ``api.list_metadata_raw`` when it has one (``Api`` does): listed objects arrive
    as bytes with decoded heads, the same dicts ``list_metadata`` gives once ``object`` is read
    (see :class:`MetadataWatchableApi`)."""
    cfg = config or WatcherConfig()
    list_fn = _list_fn(api, "list_metadata_raw", api.list_metadata)
    return _stream(_drive(list_fn, api.watch_metadata, cfg, progress, _resource_of(api)))


def watch_object(
    api: WatchableApi,
    name: str,
    config: WatcherConfig | None = None,
    *,
    progress: WatchProgress | None = None,
) -> WatchStream[KubeObject | WatcherError | None]:
    """The states of one object by name: the object on every change, ``None`` once it is gone.

    ``None`` also comes after a (re)list that did not contain the object, so a delete missed while
    disconnected is still reported. Pitfall: on an ``Api`` over all namespaces, objects with the
    same name in several namespaces are mixed together.
    """
    cfg = (config or WatcherConfig()).fields(f"metadata.name={name}")
    list_fn = _list_fn(api, "list_raw", api.list)
    return _stream(_single_object(_drive(list_fn, api.watch, cfg, progress, _resource_of(api))))


def _stream(source: AsyncIterator[T]) -> WatchStream[T]:
    # Imported here: kube_runtime.streams imports this package (backoff, events), so a module-level
    # import would fail whenever kube_runtime.streams is the first of the two imported.
    from kube_runtime.streams import WatchStream

    return WatchStream(source)


async def _single_object(
    events: AsyncGenerator[WatcherItem, None],
) -> AsyncIterator[KubeObject | WatcherError | None]:
    seen = False
    try:
        async for item in events:
            if isinstance(item, Init):
                seen = False
            elif isinstance(item, InitApply | Apply):
                seen = True
                yield item.object
            elif isinstance(item, Delete):
                seen = False
                yield None
            elif isinstance(item, InitDone):
                if not seen:
                    yield None
            else:
                yield item
    finally:
        await events.aclose()


def _list_fn(api: object, raw_name: str, decoding: ListFn) -> ListFn:
    """``api``'s method ``raw_name`` (``list_raw``, ``list_metadata_raw``) when it has one (items
    stay bytes until read), else ``decoding`` (``api.list``, ``api.list_metadata``)."""
    list_raw = getattr(api, raw_name, None)
    return list_raw if callable(list_raw) else decoding


def _resource_of(api: object) -> ApiResource | None:
    """The kind an ``Api`` addresses (for log messages); ``None`` for other watchable objects."""
    resource = getattr(api, "resource", None)
    return resource if isinstance(resource, ApiResource) else None


async def _drive(
    list_fn: ListFn,
    watch_fn: WatchFn,
    config: WatcherConfig,
    progress: WatchProgress | None = None,
    resource: ApiResource | None = None,
) -> AsyncGenerator[WatcherItem, None]:
    state: State = Empty()
    # Whether the "kind not served" warning was logged since the last successful list.
    warned_unserved = False
    streaming = config.is_streaming
    budget = config.idle_budget()
    learn = budget.learn
    clock = anyio.current_time
    watch_cm: AbstractAsyncContextManager[Any] | None = None
    events: IdleTimedStream[Any] | None = None
    try:
        while True:
            outcome: Outcome
            if type(state) is Watching:
                # The steady state: state.py's watching_received per event, the next Watching built
                # only when the stream leaves it (see that function); anything else goes to step().
                assert events is not None
                resource_version = state.resource_version
                left = False
                read = events.__anext__
                while True:
                    try:
                        item = await read()
                    except StopAsyncIteration:
                        outcome = _ended(events, budget)
                        break
                    except Exception as exc:
                        outcome = StreamBroken(exc)
                        break
                    if type(item) is WatchEvent:
                        if progress is not None:
                            progress.mark()
                        try:
                            moved = watching_received(item.type, item.lazy)
                        except ObjectDecodeError as exc:
                            outcome = StreamDecodeFailed(exc)
                            break
                        if moved is not None:
                            if moved[0] != resource_version:
                                resource_version, left = moved[0], True
                            applied = moved[1]
                            if applied is not None:
                                yield applied
                            elif learn and budget.bookmark(clock()):
                                events.set_idle_timeout(budget.timeout)
                            continue
                    elif progress is not None and not isinstance(item, Exception):
                        progress.mark()  # an event of another watch source (not an ERROR line)
                    outcome = _outcome(item)
                    break
                if left:  # the version moved (even if back to where it was): a new Watching
                    state = Watching(resource_version)
            else:
                call = next_call(state, streaming=streaming)
                if isinstance(call, ListPage):
                    try:
                        params = config.list_params(call.continue_token, full=call.full)
                        outcome = Listed(await list_fn(**params))
                        if config.shard_selector:
                            page = outcome.page
                            listing = page if isinstance(page, dict) else {"metadata": page.metadata}
                            check_shard_info(listing, config.shard_selector)
                    except Exception as exc:
                        outcome = ListFailed(exc)
                    else:
                        if progress is not None:
                            progress.mark()
                elif isinstance(call, StartWatch):
                    params = config.watch_params(call.resource_version, initial=call.initial)
                    params["idle_timeout"] = budget.timeout
                    cm = watch_fn(**params)
                    try:
                        opened = await cm.__aenter__()
                    except Exception as exc:
                        if isinstance(exc, WatchTimeout) and exc.seconds >= budget.timeout:
                            # The budget's own bound expired (not a shorter connect timeout,
                            # which says nothing about the bookmark cadence): widen it.
                            budget.timed_out()
                        outcome = WatchRejected(exc)
                    else:
                        watch_cm = cm
                        events = _idle_timed(opened)
                        budget.opened(clock())
                        outcome = WatchOpened()
                else:
                    assert events is not None
                    outcome = await _read(events, budget, progress)

            stepped = step(state, outcome)
            if stepped.streaming_unsupported and streaming:
                streaming = False
                _log_streaming_unsupported(outcome, resource)
            if watch_cm is not None and not has_open_watch(stepped.state):
                cm, watch_cm, events = watch_cm, None, None
                await _close_quietly(cm)
            state = stepped.state
            if type(state) is InitFullList:
                assert isinstance(outcome, ListFailed)
                _log_full_list(outcome.error, resource, config)
            for item in stepped.items:
                if isinstance(item, WatcherError):
                    warned_unserved = _log_error(item, resource, warned_unserved)
                elif warned_unserved and isinstance(item, InitDone):
                    warned_unserved = False
                yield item
    finally:
        if watch_cm is not None:
            with anyio.CancelScope(shield=True):
                await _close_quietly(watch_cm)


def _idle_timed(events: object) -> IdleTimedStream[Any]:
    """The stream a watch function opened, which must enforce the idle timeout it was given."""
    if not isinstance(events, IdleTimedStream):
        raise TypeError(
            f"a watch function must yield an IdleTimedStream (got {type(events).__name__}): wrap "
            "other async iterators with kube_runtime.client.idle.idle_timed(items, idle_timeout)"
        )
    return events


async def _read(events: IdleTimedStream[Any], budget: IdleBudget, progress: WatchProgress | None) -> Outcome:
    """One item of the open watch, as an outcome, before the watch reached its steady state. Every
    event that arrives (bookmarks too) stamps ``progress``; an ``ERROR`` line, or one that does not
    decode as a watch event, does not."""
    try:
        item = await events.__anext__()
    except StopAsyncIteration:
        return _ended(events, budget)
    except Exception as exc:
        return StreamBroken(exc)
    if progress is not None and not isinstance(item, Exception):
        progress.mark()
    return _outcome(item)


def _ended(events: IdleTimedStream[Any], budget: IdleBudget) -> Outcome:
    """The stream's iteration ended: a normal end, or its idle timeout. A timed-out watch is a broken
    stream (``WatchFailed``, resumed from the last resourceVersion) caused by a ``WatchTimeout``,
    and the budget widens the bound for the next watch."""
    if not events.idle_timed_out:
        return StreamEnded()
    seconds = events.idle_timeout or budget.timeout
    error = WatchTimeout(
        f"watch sent nothing for {seconds:g}s (no event or bookmark)",
        phase="idle",
        seconds=seconds,
        verb="watch",
        url=events.url,
    )
    budget.timed_out()
    return StreamBroken(error)


def _outcome(item: Any) -> Outcome:
    """What one item read from an open watch means to the state machine."""
    if isinstance(item, ApiError):
        return StreamErrorEvent(item)
    if isinstance(item, WatchDecodeError):
        return StreamDecodeFailed(item)
    if isinstance(item, Exception):
        return StreamDecodeFailed(item)
    if type(item) is WatchEvent:
        return Received(item.type, item.lazy)
    obj = item.object
    if not isinstance(obj, dict):
        return StreamDecodeFailed(WatchDecodeError("watch event object is not a JSON object", b""))
    return Received(str(item.type), obj)


async def _close_quietly(cm: AbstractAsyncContextManager[Any]) -> None:
    try:
        await cm.__aexit__(None, None, None)
    except Exception as exc:  # a failing close must not end the watcher
        _log.debug("closing a watch failed: %s", exc)


def _log_error(error: WatcherError, resource: ApiResource | None, warned_unserved: bool) -> bool:
    """Log one watcher error; returns whether the "kind not served" warning has been given.

    A 404 on the list or watch of a whole collection means the server does not serve the kind
    (controller-runtime: "no matches for kind"): logged once at WARNING, naming the
    group/version/resource, until a list succeeds again; further retries go to DEBUG."""
    cause = error.__cause__
    if isinstance(cause, ApiError) and cause.code == 403:
        _log.warning("watcher error: %s", error)
    elif (
        isinstance(cause, ApiError)
        and cause.code == 404
        and isinstance(error, InitialListFailed | WatchStartFailed)
        and not warned_unserved
    ):
        what = "an unknown resource" if resource is None else _gvr(resource)
        _log.warning(
            "the API server does not serve %s (404 on list/watch): is its CustomResourceDefinition "
            "installed (kubectl get crd), and do group, version and plural match it? Retrying.",
            what,
            extra=None
            if resource is None
            else {"group": resource.group, "version": resource.version, "resource": resource.plural},
        )
        return True
    else:
        _log.debug("watcher error: %s", error)
    return warned_unserved


def _log_full_list(error: BaseException, resource: ApiResource | None, config: WatcherConfig) -> None:
    """Log the fallback from a paged list whose ``continue`` token expired to one full list, naming
    the list's selectors (two watches of one kind tell apart) and the error's status, not its text."""
    what = "objects" if resource is None else _gvr(resource)
    selectors = (("label_selector", config.label_selector), ("field_selector", config.field_selector))
    selection = {key: value for key, value in selectors if value}
    why = f"{error.code} {error.reason}" if isinstance(error, ApiError) else str(error)
    extra: dict[str, str] = dict(selection)
    if resource is not None:
        extra.update(group=resource.group, version=resource.version, resource=resource.plural)
    _log.info(
        "a continue token expired part-way through a paged list of %s%s (%s): listing them again in "
        "one request without limit",
        what,
        "".join(f", {key} {value!r}" for key, value in selection.items()),
        why,
        extra=extra or None,
    )


def _log_streaming_unsupported(outcome: Outcome, resource: ApiResource | None) -> None:
    """Log, once per watcher, that the server does not serve streaming lists and why."""
    if isinstance(outcome, WatchRejected | StreamErrorEvent):
        why = f"the sendInitialEvents watch was refused: {outcome.error}"
    elif isinstance(outcome, Received):
        why = "its watch sent a bookmark without the k8s.io/initial-events-end annotation"
    elif isinstance(outcome, StreamBroken):
        why = f"its watch went silent before the initial-events-end bookmark ({outcome.error})"
    else:
        why = "its watch ended before the initial-events-end bookmark"
    what = "objects" if resource is None else _gvr(resource)
    _log.warning(
        "the API server does not serve streaming lists of %s (%s): listing them with paged LIST and "
        "WATCH from now on",
        what,
        why,
        extra=None
        if resource is None
        else {"group": resource.group, "version": resource.version, "resource": resource.plural},
    )


def _gvr(resource: ApiResource) -> str:
    group = resource.group or "core"
    return f"{group}/{resource.version} {resource.plural} (kind {resource.kind})"
