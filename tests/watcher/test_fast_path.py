"""The watcher's inlined steady-state loop yields exactly what the pure state machine would.

``_drive`` reads a stream that enforces its own idle timeout (``Api.watch``'s streams) through an
inlined loop for object events and bookmarks; any other stream goes through ``step()`` item by
item. The same watch histories are replayed through both and must give the same items and the
same resume points.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client.errors import ApiError, TransportError, WatchDecodeError
from kube_runtime.client.lines import WatchEvent
from kube_runtime.watcher import WatcherConfig, WatchProgress, watcher


class _Exhausted(BaseException):
    """Raised by the fake API when the history is replayed: ends the watcher (not an Exception)."""


class _Stream:
    """One open watch replaying ``items``, then ending as ``end`` says."""

    def __init__(self, items: list[Any], end: str, self_timed: bool, idle_timeout: float) -> None:
        self._items = iter(items)
        self._end = end
        self.idle_timed_out = False
        if self_timed:
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
    def __init__(self, segments: list[tuple[list[Any], str]], self_timed: bool) -> None:
        self._segments = iter(segments)
        self._self_timed = self_timed
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
            yield _Stream(items, end, self._self_timed, idle_timeout)
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
        return type(item).__name__, str(item)
    return type(item).__name__, id(getattr(item, "object", None))


async def _replay(segments: list[tuple[list[Any], str]], self_timed: bool) -> tuple[Any, ...]:
    api = _FakeApi(segments, self_timed)
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


@settings(max_examples=300, deadline=None)
@given(_segments)
def test_inlined_loop_matches_the_state_machine(segments: list[tuple[list[Any], str]]) -> None:
    fast = anyio.run(_replay, segments, True)
    reference = anyio.run(_replay, segments, False)
    assert fast == reference


def test_steady_events_resume_from_the_last_version_after_a_normal_end() -> None:
    segments = [
        ([_event("MODIFIED", "5", "dict", True), _event("BOOKMARK", "9", "dict", True)], "end"),
        ([], "idle"),
    ]
    out, watched_from, lists, received = anyio.run(_replay, segments, True)
    # The idle end is a WatchFailed caused by a WatchTimeout (issue 13: counted and logged), and
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
    out, watched_from, _, _ = anyio.run(_replay, segments, True)
    assert [kind for kind, _ in out] == ["Init", "InitDone", "Apply", "Delete", "WatchFailed"]
    assert watched_from == ["1", "6", "6"]
