"""The watcher's steady-state loop yields exactly what the pure state machine would.

In the watching state ``_drive`` applies ``state.watching_received`` per event and builds the next
``Watching`` only when the stream leaves the steady state. The same watch histories are replayed
through the driver and through a reference loop that folds every outcome through ``step()`` one
by one; both must give the same items, the same resume points and the same progress stamps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client.errors import ApiError, TransportError, WatchDecodeError, WatchTimeout
from kube_runtime.client.lines import WatchEvent
from kube_runtime.watcher import WatcherConfig, WatchProgress, watcher
from kube_runtime.watcher.state import (
    Empty,
    Listed,
    ListPage,
    Outcome,
    Received,
    StartWatch,
    State,
    StreamBroken,
    StreamDecodeFailed,
    StreamEnded,
    StreamErrorEvent,
    WatchOpened,
    next_call,
    step,
)


class _Exhausted(BaseException):
    """Raised by the fake API when the history is replayed: ends the watcher (not an Exception)."""


class _Stream:
    """One open watch replaying ``items``, then ending as ``end`` says."""

    url = "/api/v1/configmaps"

    def __init__(self, items: list[Any], end: str, idle_timeout: float) -> None:
        self._items = iter(items)
        self._end = end
        self.idle_timed_out = False
        self.idle_timeout = idle_timeout

    def set_idle_timeout(self, seconds: float) -> None:  # as Api.watch's streams offer
        self.idle_timeout = seconds

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> Any:
        for item in self._items:
            return item
        if self._end == "broken":
            raise TransportError("connection reset")
        self.idle_timed_out = self._end == "idle"
        raise StopAsyncIteration


class _FakeApi:
    def __init__(self, segments: list[tuple[list[Any], str]]) -> None:
        self._segments = iter(segments)
        self.watched_from: list[str | None] = []
        self.lists = 0

    async def list(self, **_: Any) -> dict[str, Any]:
        self.lists += 1
        return {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"},
            "items": [],
        }

    def watch(self, *, resource_version: str | None = None, idle_timeout: float = 295.0, **_: Any) -> Any:
        self.watched_from.append(resource_version)
        return self._open(idle_timeout)

    @asynccontextmanager
    async def _open(self, idle_timeout: float) -> AsyncIterator[_Stream]:
        for items, end in self._segments:
            yield _Stream(items, end, idle_timeout)
            return
        raise _Exhausted


def _event(kind: str, version: object, metadata: str, interned: bool) -> WatchEvent:
    meta: Any = {"name": "cm", "resourceVersion": version}
    if version is None:
        del meta["resourceVersion"]
    if metadata == "absent":
        obj: dict[str, Any] = {"data": {}}
    elif metadata == "not a dict":
        obj = {"metadata": [meta]}
    else:
        obj = {"metadata": meta}
    if not interned:
        kind = "".join(list(kind))  # an equal string that is not the module constant
    return WatchEvent(kind, obj)


_steady_event = st.builds(
    _event,
    st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]),
    st.sampled_from(["5", "6", "7", "8"]),
    st.just("dict"),
    st.just(True),
)
_items = st.one_of(
    _steady_event,
    _steady_event,
    _steady_event,
    st.builds(
        _event,
        st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "SURPRISE"]),
        st.sampled_from([None, "", "5", "6", "7", 8]),
        st.sampled_from(["dict", "dict", "dict", "absent", "not a dict"]),
        st.booleans(),
    ),
    st.builds(
        lambda code: ApiError({"kind": "Status", "code": code, "message": "m"}), st.sampled_from([410, 500])
    ),
    st.just(WatchDecodeError("bad line", b"{")),
    st.builds(lambda: WatchEvent("MODIFIED", "not an object")),  # type: ignore[arg-type]
)
_segments = st.lists(
    st.tuples(st.lists(_items, max_size=8), st.sampled_from(["end", "idle", "broken"])), max_size=5
)


def _describe(item: Any) -> tuple[str, Any]:
    if isinstance(item, Exception):
        return type(item).__name__, type(item.__cause__).__name__
    return type(item).__name__, id(getattr(item, "object", None))


async def _replay(segments: list[tuple[list[Any], str]]) -> tuple[Any, ...]:
    api = _FakeApi(segments)
    progress = WatchProgress(clock=lambda: 0.0)
    out: list[tuple[str, Any]] = []
    stream = watcher(api, WatcherConfig(), progress=progress)  # type: ignore[arg-type]
    try:
        async with stream:
            async for item in stream:
                out.append(_describe(item))
    except _Exhausted:
        pass
    return out, api.watched_from, api.lists, progress.received


def _outcome(item: Any) -> Outcome:
    if isinstance(item, ApiError):
        return StreamErrorEvent(item)
    if isinstance(item, Exception):
        return StreamDecodeFailed(item)
    return Received(item.type, item.lazy)


def _reference(segments: list[tuple[list[Any], str]]) -> tuple[Any, ...]:
    """The same history folded through ``step()`` one outcome at a time."""
    pending = iter(segments)
    state: State = Empty()
    out: list[tuple[str, Any]] = []
    watched_from: list[str | None] = []
    lists = received = 0
    items: Any = iter(())
    end = "end"
    while True:
        call = next_call(state, streaming=False)
        outcome: Outcome
        if isinstance(call, ListPage):
            lists += 1
            received += 1
            outcome = Listed({"metadata": {"resourceVersion": "1"}, "items": []})
        elif isinstance(call, StartWatch):
            watched_from.append(call.resource_version)
            segment = next(pending, None)
            if segment is None:
                return out, watched_from, lists, received
            items, end = iter(segment[0]), segment[1]
            outcome = WatchOpened()
        else:
            item = next(items, _END)
            if item is not _END:
                if not isinstance(item, Exception):  # ERROR and undecodable lines stamp nothing
                    received += 1
                outcome = _outcome(item)
            elif end == "broken":
                outcome = StreamBroken(TransportError("connection reset"))
            elif end == "idle":
                outcome = StreamBroken(WatchTimeout("idle", phase="idle", seconds=1.0, verb="watch", url=""))
            else:
                outcome = StreamEnded()
        stepped = step(state, outcome)
        state = stepped.state
        out.extend(_describe(item) for item in stepped.items)


_END = object()


@settings(max_examples=300, deadline=None)
@given(_segments)
def test_the_steady_loop_matches_the_state_machine(segments: list[tuple[list[Any], str]]) -> None:
    assert anyio.run(_replay, segments) == _reference(segments)


def test_steady_events_resume_from_the_last_version_after_a_normal_end() -> None:
    segments = [
        ([_event("MODIFIED", "5", "dict", True), _event("BOOKMARK", "9", "dict", True)], "end"),
        ([], "idle"),
    ]
    out, watched_from, lists, received = anyio.run(_replay, segments)
    # The idle end is a WatchFailed caused by a WatchTimeout (counted and logged), and
    # resumes from the same version as a normal end.
    assert [kind for kind, _ in out] == ["Init", "InitDone", "Apply", "WatchFailed"]
    assert watched_from == ["1", "9", "9"]
    assert lists == 1
    assert received == 3  # the list page, the event and the bookmark


def test_a_delete_moves_the_resume_point_too() -> None:
    segments = [
        ([_event("MODIFIED", "5", "dict", True), _event("DELETED", "6", "dict", True)], "broken"),
        ([], "end"),
    ]
    out, watched_from, _, _ = anyio.run(_replay, segments)
    assert [kind for kind, _ in out] == ["Init", "InitDone", "Apply", "Delete", "WatchFailed"]
    assert watched_from == ["1", "6", "6"]
