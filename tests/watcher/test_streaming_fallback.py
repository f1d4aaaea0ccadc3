"""Streaming lists against a server that does not serve them: the fallback to paged lists.

kube-rs retries a refused ``sendInitialEvents`` watch forever (its store never ready) and waits
forever for the end marker of a server that ignored the parameter. client-go's reflector falls back
to "standard LIST semantics"; so does this watcher, for the rest of its life. The state machine's
transitions first, then a watcher over real HTTP against the embedded server in both of its
"no streaming lists" modes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import pytest

from kube_runtime.client.api import Api
from kube_runtime.client.errors import ApiError, TransportError, WatchTimeout
from kube_runtime.client.idle import IdleTimedStream
from kube_runtime.client.resource import ApiResource
from kube_runtime.store import Store, store
from kube_runtime.testing import ApiServer
from kube_runtime.testing.apiserver.settings import WatchListMode
from kube_runtime.watcher import Init, InitApply, InitDone, WatcherConfig, WatcherError, watcher
from kube_runtime.watcher.event import WatchError, WatchFailed, WatchStartFailed
from kube_runtime.watcher.state import (
    Empty,
    InitialWatch,
    InitListed,
    Listed,
    ListPage,
    Received,
    StartWatch,
    StreamBroken,
    StreamEnded,
    StreamErrorEvent,
    Watching,
    WatchOpened,
    WatchRejected,
    next_call,
    step,
    streaming_refused,
)
from tests.watcher.test_state import bookmark, cm, gone, page, refused, server_error

CM = ApiResource.builtin("ConfigMap")
OBJECTS = 3000


def status(code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> ApiError:
    details = {"causes": causes} if causes is not None else {}
    return ApiError(
        {"kind": "Status", "code": code, "reason": reason, "message": message, "details": details}
    )


#: kube-apiserver 1.19 to 1.26: resourceVersionMatch is not allowed on a watch at all.
BEFORE_1_27 = status(
    422,
    "Invalid",
    'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is '
    "forbidden for watch",
    [{"reason": "FieldValueForbidden", "message": "Forbidden: ...", "field": "resourceVersionMatch"}],
)
#: What test servers and proxies in the wild answer.
NOT_SUPPORTED = status(400, "BadRequest", "sendInitialEvents is not supported")


# -- the transition ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [refused(), BEFORE_1_27, NOT_SUPPORTED], ids=["gate-off", "pre-1.27", "400"]
)
def test_a_refused_streaming_watch_switches_to_paged_lists_without_an_error(error: ApiError) -> None:
    """The old transition yielded WatchStartFailed and stayed streaming: the same request again,
    after a backoff, forever."""
    assert next_call(Empty(), streaming=True) == StartWatch(None, initial=True)
    s = step(Empty(), WatchRejected(error))
    assert s.streaming_unsupported
    assert s.state == Empty()
    assert s.items == ()  # no error value: a backoff stage has nothing to wait for
    assert next_call(s.state, streaming=False) == ListPage(None)
    s = step(s.state, page(["a", "b"], "10"))
    assert [type(i) for i in s.items] == [Init, InitApply, InitApply, InitDone]
    assert s.state == InitListed("10")


@pytest.mark.parametrize(
    "error",
    [
        server_error(),
        gone(),
        status(403, "Forbidden", 'configmaps is forbidden: User "x" cannot watch resource "configmaps"'),
        status(400, "BadRequest", "unable to parse requirement: found '=', expected: identifier"),
        TransportError("connection refused"),
        WatchTimeout("no headers", phase="headers", seconds=5.0),
    ],
    ids=["500", "410", "rbac-403", "bad-selector", "transport", "headers-timeout"],
)
def test_other_start_failures_keep_streaming(error: BaseException) -> None:
    assert not streaming_refused(error)
    s = step(Empty(), WatchRejected(error))
    assert not s.streaming_unsupported
    assert s.state == Empty()
    assert [type(i) for i in s.items] == [WatchStartFailed]


def test_a_server_that_ignored_send_initial_events_is_found_out_by_its_first_bookmark() -> None:
    """The request was served as a plain watch from version 0: every object ADDED, then ordinary
    bookmarks, never the end marker. The old transition ignored the bookmark and waited forever,
    the store never ready."""
    s = step(Empty(), WatchOpened())
    assert [type(i) for i in s.items] == [Init]
    s = step(s.state, Received("ADDED", cm("a", "3")))
    s = step(s.state, Received("ADDED", cm("b", "4")))
    assert s.state == InitialWatch()
    s = step(s.state, bookmark("9"))
    assert s.streaming_unsupported
    assert s.state == Empty()  # the watch closes; the paged list starts with a fresh Init
    assert s.items == ()
    s = step(s.state, page(["a"], "10"))
    assert [type(i) for i in s.items] == [Init, InitApply, InitDone]


@pytest.mark.parametrize(
    "outcome",
    [
        StreamEnded(),
        StreamBroken(WatchTimeout("silent", phase="idle", seconds=295.0)),
        StreamErrorEvent(refused()),
    ],
    ids=["ended", "idle-timeout", "error-event"],
)
def test_a_streaming_watch_ending_before_its_marker_switches_to_paged_lists(outcome: Any) -> None:
    """A server that ignores the parameter and sends no bookmark still ends the watch (its
    timeoutSeconds) or goes silent; the old transition streamed everything again, forever."""
    s = step(InitialWatch(refetch=True), outcome)
    assert s.streaming_unsupported
    assert s.state == Empty()
    assert s.items == ()


def test_other_stream_troubles_start_the_streaming_list_over() -> None:
    for outcome, item in (
        (StreamBroken(TransportError("reset")), WatchFailed),
        (StreamErrorEvent(gone()), WatchError),
    ):
        s = step(InitialWatch(), outcome)
        assert not s.streaming_unsupported
        assert s.state == Empty()
        assert [type(i) for i in s.items] == [item]
    s = step(InitialWatch(), StreamErrorEvent(server_error()))
    assert (s.state, s.streaming_unsupported) == (InitialWatch(), False)
    s = step(InitialWatch(), bookmark("9", initial_end=True))
    assert not s.streaming_unsupported
    assert [type(i) for i in s.items] == [InitDone]


def test_the_switch_is_never_asked_for_outside_a_streaming_start() -> None:
    """A refusal of a resumed watch or a list is an ordinary error (only the initial watch sends the
    parameters), and a bookmark of a resumed watch is an ordinary bookmark."""
    assert not step(InitListed("5"), WatchRejected(refused())).streaming_unsupported
    assert not step(Watching("5"), bookmark("9")).streaming_unsupported
    assert not step(Watching("5"), StreamEnded()).streaming_unsupported
    assert not step(
        Empty(), Listed({"metadata": {"resourceVersion": "3"}, "items": []})
    ).streaming_unsupported


# -- over HTTP against the embedded server -------------------------------------------------------


class CountingApi:
    """An ``Api`` that counts the streaming-list watches it is asked to open."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.resource = api.resource
        self.list = api.list
        self.list_raw = api.list_raw
        self.streaming_watches = 0

    def watch(self, **params: Any) -> AbstractAsyncContextManager[IdleTimedStream[Any]]:
        if params.get("send_initial_events"):
            self.streaming_watches += 1
        return self.api.watch(**params)


def versions(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in objects}


async def until_synced(
    items: AsyncIterator[Any], reader: Store, server: ApiServer, *, gone: bool = False, within: float = 60
) -> None:
    """Reads the reflected stream until the store is ready and equal to the server's objects.
    Compared after each item that can complete it (not per InitApply: that would be quadratic).
    Any error value fails at once (the fallback must not yield one), except, with ``gone``, the 410
    of a resumed watch, which must then have come."""
    seen_gone = False
    with anyio.fail_after(within):
        async for item in items:
            if gone and isinstance(item, WatchError) and item.code == 410:
                seen_gone = True
                continue
            assert not isinstance(item, WatcherError), repr(item)
            if isinstance(item, InitApply | Init):
                continue
            if reader.is_ready() and versions(reader.state()) == versions(server.objects(CM, "default")):
                assert seen_gone or not gone, "no relist"
                return
    raise AssertionError("the watcher ended")


@pytest.mark.parametrize("mode", ["off", "ignored"])
async def test_a_streaming_watcher_syncs_and_follows_a_server_without_streaming_lists(
    mode: WatchListMode, caplog: pytest.LogCaptureFixture
) -> None:
    """``off``: the 422 of kube-apiserver with the WatchList gate off; ``ignored``: a server that
    serves the request as a plain watch and sends ordinary bookmarks (here every 50 ms). Either way
    the store equals the server's objects, then follows live changes, and after a 410 relists with
    pages, never trying the streaming watch again. On the old code ``off`` yields WatchStartFailed
    forever and ``ignored`` never completes the initial list."""
    caplog.set_level(logging.WARNING, logger="kube_runtime.watcher")
    async with ApiServer(watch_list=mode, bookmark_interval=0.05) as server:
        rtype = server.resource_type(CM)
        for i in range(OBJECTS):
            server.ops.create(rtype, "default", {"metadata": {"name": f"cm-{i:05d}"}, "data": {"i": str(i)}})
        api = CountingApi(Api(server.client, CM, "default"))
        reader, writer = store(CM)
        async with watcher(api, WatcherConfig().streaming_lists()).reflect(writer) as items:
            await until_synced(items, reader, server)
            assert len(reader.state()) == OBJECTS

            # Live changes, made while the watcher's watch is open.
            server.ops.create(rtype, "default", {"metadata": {"name": "live"}, "data": {"v": "1"}})
            changed = server.ops.get(rtype, "default", "cm-00007").copy_obj()
            changed["data"] = {"v": "2"}
            server.ops.update(rtype, "default", "cm-00007", changed, require_rv=False)
            server.ops.delete(rtype, "default", "cm-00011")
            await until_synced(items, reader, server)
            assert reader.get_by_key("live", "default") is not None
            assert reader.get_by_key("cm-00011", "default") is None

            # The watch drops and history is compacted behind its back: the resumed watch gets 410,
            # and the relist is a paged list again, not another streaming attempt.
            server.faults.close_watches()
            server.ops.delete(rtype, "default", "cm-00012")
            server.faults.compact()
            await until_synced(items, reader, server, gone=True)
            assert reader.get_by_key("cm-00012", "default") is None

    assert api.streaming_watches == 1
    warnings = [r.getMessage() for r in caplog.records if "streaming lists" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "configmaps" in warnings[0]
    assert ("refused" if mode == "off" else "bookmark without") in warnings[0]
