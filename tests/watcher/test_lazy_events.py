"""Watcher events carry objects as bytes and heads: bad input is a typed error value and the stream
goes on, the store keeps the bytes, predicates read heads and never drop a delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
import pytest

from kube_runtime import predicates
from kube_runtime.client.errors import ObjectDecodeError, WatchDecodeError
from kube_runtime.client.head import LazyObject, RawList
from kube_runtime.client.idle import IdleTimedIterator, idle_timed
from kube_runtime.client.lines import WatchItem, decode_event
from kube_runtime.client.resource import ApiResource
from kube_runtime.store import ObjectRef, store
from kube_runtime.streams import predicate_filter, reflect
from kube_runtime.watcher import (
    Apply,
    Delete,
    InitApply,
    InitDone,
    InitialListFailed,
    WatcherConfig,
    WatchFailed,
    metadata_watcher,
    watcher,
)

CM = ApiResource.builtin("ConfigMap")


@pytest.fixture
def anyio_backend() -> Any:
    return "asyncio"


def line(kind: str, name: str, rv: str, *, generation: int = 1, extra: bytes = b"") -> bytes:
    meta = {"name": name, "namespace": "ns", "resourceVersion": rv, "generation": generation}
    body = orjson.dumps({"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta})
    if extra:
        body = body[:-1] + b"," + extra + b"}"
    return b'{"type":"' + kind.encode() + b'","object":' + body + b"}"


class _LineApi:
    """Lists one ConfigMap (items without kind, as servers send them), then one watch of ``lines``;
    a later watch serves the next list of ``later`` (none left: a silent watch). Records the
    resourceVersion each watch starts from."""

    def __init__(self, lines: list[bytes], later: list[list[bytes]] | None = None) -> None:
        self._served = [lines, *(later or [])]
        self.watches = 0
        self.watch_versions: list[str | None] = []

    async def list_raw(self, **_: Any) -> RawList:
        item = {"metadata": {"name": "listed", "namespace": "ns", "resourceVersion": "1"}, "data": {"a": "b"}}
        body = {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"},
            "items": [item],
        }
        return RawList.decode(orjson.dumps(body))

    async def list(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("the watcher lists through list_raw")

    def watch(self, *, idle_timeout: float = 295.0, resource_version: str | None = None, **_: Any) -> Any:
        self.watches += 1
        self.watch_versions.append(resource_version)
        return self._open(idle_timeout)

    @asynccontextmanager
    async def _open(self, idle_timeout: float) -> AsyncIterator[IdleTimedIterator[WatchItem]]:
        lines = self._served[self.watches - 1] if self.watches <= len(self._served) else []

        async def items() -> AsyncIterator[WatchItem]:
            for raw in lines:
                yield decode_event(raw)
            await anyio.sleep_forever()

        yield idle_timed(items(), idle_timeout)


async def _take(stream: Any, n: int) -> list[Any]:
    out: list[Any] = []
    async with stream:
        async for item in stream:
            out.append(item)
            if len(out) == n:
                break
    return out


async def test_a_line_that_fails_to_decode_is_reported_and_its_event_read_again() -> None:
    """A decode failure reopens the watch from the last good version, as client-go's reflector does
    (kube-rs reads on: ``b`` would be lost for good once ``c`` moved the version past it)."""
    truncated = line("ADDED", "b", "3")[:40]
    api = _LineApi(
        [line("ADDED", "a", "2"), truncated, line("ADDED", "c", "4")],
        later=[[line("ADDED", "b", "3"), line("ADDED", "c", "4"), line("ADDED", "d", "5")]],
    )
    reader, writer = store(CM)
    items = await _take(reflect(watcher(api, WatcherConfig()), writer), 8)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Init", "InitApply", "InitDone", "Apply", "WatchFailed", "Apply", "Apply", "Apply"]
    assert isinstance(items[4].__cause__, WatchDecodeError)
    assert api.watch_versions == ["1", "2"]  # reopened from a's version, before the lost line
    assert [i.object["metadata"]["name"] for i in items[5:]] == ["b", "c", "d"]
    assert sorted(reader.keys()) == ["ns/a", "ns/b", "ns/c", "ns/d", "ns/listed"]


async def test_a_streaming_list_with_a_line_that_fails_to_decode_starts_over() -> None:
    """The failed line's object would be missing from the list, and from the store it is swapped
    into. The list starts over (a fresh Init) and the store gets every object."""
    end_meta = {"resourceVersion": "5", "annotations": {"k8s.io/initial-events-end": "true"}}
    end = orjson.dumps(
        {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": end_meta}}
    )
    api = _LineApi(
        [line("ADDED", "a", "2"), line("ADDED", "b", "3")[:40], line("ADDED", "c", "4"), end],
        later=[[line("ADDED", "a", "2"), line("ADDED", "b", "3"), line("ADDED", "c", "4"), end]],
    )
    reader, writer = store(CM)
    items = await _take(reflect(watcher(api, WatcherConfig().streaming_lists()), writer), 8)
    kinds = [type(i).__name__ for i in items]
    assert kinds == [
        "Init",
        "InitApply",
        "WatchFailed",
        "Init",
        "InitApply",
        "InitApply",
        "InitApply",
        "InitDone",
    ]
    assert api.watches == 2
    assert sorted(reader.keys()) == ["ns/a", "ns/b", "ns/c"]


async def test_a_line_that_fails_again_when_read_again_is_skipped_and_the_next_event_arrives() -> None:
    bad = [
        b'{"type":"MODIFIED","object":{"metadata":{"name":"b"',  # truncated
        line("MODIFIED", "c", "3", extra=b'"metadata":{"generation":"x"}'),  # metadata of the wrong type
        line("MODIFIED", "d", "4"),
    ]
    api = _LineApi([line("ADDED", "a", "2"), *bad], later=[bad])
    reader, writer = store(CM)
    items = await _take(reflect(watcher(api, WatcherConfig()), writer), 8)
    kinds = [type(i).__name__ for i in items]
    assert kinds == [
        "Init",
        "InitApply",
        "InitDone",
        "Apply",
        "WatchFailed",
        "WatchFailed",
        "WatchFailed",
        "Apply",
    ]
    assert all(isinstance(i.__cause__, WatchDecodeError) for i in items[4:7])
    assert api.watch_versions == ["1", "2"]  # read again once, then skipped: no third watch, no stall
    listed, first, last = items[1], items[3], items[7]
    assert isinstance(listed, InitApply)
    assert isinstance(listed.lazy, LazyObject)
    assert not listed.lazy.decoded  # the store took its bytes; nothing decoded it
    assert listed.object["kind"] == "ConfigMap"  # injected into the list item's bytes
    assert listed.object["apiVersion"] == "v1"
    assert first.object["metadata"]["name"] == "a"
    assert last.object["metadata"]["name"] == "d"
    assert sorted(reader.keys()) == ["ns/a", "ns/d", "ns/listed"]
    stored = reader.get(ObjectRef.for_resource(CM, "listed", "ns"))
    assert stored == {**listed.object}
    assert stored is not listed.object


class _BadListApi:
    """Both raw list verbs: the first list has an item that is not an object, the next is good; the
    decoding verbs must not be called. The watch stays open and silent."""

    def __init__(self) -> None:
        self.lists = 0

    def _page(self, list_kind: str, api_version: str) -> RawList:
        self.lists += 1
        items: list[Any] = [{"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"}}]
        if self.lists == 1:
            items.append(7)
        body = {"kind": list_kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}}
        return RawList.decode(orjson.dumps({**body, "items": items}))

    async def list_raw(self, **_: Any) -> RawList:
        return self._page("ConfigMapList", "v1")

    async def list_metadata_raw(self, **_: Any) -> RawList:
        return self._page("ConfigMapList", "v1").partial_metadata()  # as from a server sending full objects

    async def list(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("the watcher lists through list_raw")

    async def list_metadata(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("the metadata watcher lists through list_metadata_raw")

    def watch(self, *, idle_timeout: float = 295.0, **_: Any) -> Any:
        return self._open(idle_timeout)

    watch_metadata = watch

    @asynccontextmanager
    async def _open(self, idle_timeout: float) -> AsyncIterator[IdleTimedIterator[WatchItem]]:
        async def items() -> AsyncIterator[WatchItem]:
            await anyio.sleep_forever()
            yield  # pragma: no cover

        yield idle_timed(items(), idle_timeout)


@pytest.mark.parametrize("start", [watcher, metadata_watcher], ids=["list_raw", "list_metadata_raw"])
async def test_a_malformed_list_item_is_a_typed_list_error_and_the_relist_goes_on(start: Any) -> None:
    api = _BadListApi()
    with anyio.fail_after(10):
        items = await _take(start(api, WatcherConfig()), 4)
    assert [type(i).__name__ for i in items] == ["InitialListFailed", "Init", "InitApply", "InitDone"]
    assert isinstance(items[0], InitialListFailed)
    assert isinstance(items[0].__cause__, ObjectDecodeError)
    assert items[0].__cause__.raw == b"7"
    kind = "PartialObjectMetadata" if start is metadata_watcher else "ConfigMap"
    assert items[2].object["kind"] == kind


async def test_an_object_orjson_rejects_fails_on_read_not_in_the_stream() -> None:
    lines = [line("ADDED", "big", "2", extra=b'"spec":{"n":1e400}'), line("ADDED", "ok", "3")]
    reader, writer = store(CM)
    items = await _take(reflect(watcher(_LineApi(lines), WatcherConfig()), writer), 5)
    assert [type(i).__name__ for i in items] == ["Init", "InitApply", "InitDone", "Apply", "Apply"]
    with pytest.raises(ObjectDecodeError):
        _ = items[3].object
    with pytest.raises(ObjectDecodeError):
        reader.get(ObjectRef.for_resource(CM, "big", "ns"))
    assert reader.get(ObjectRef.for_resource(CM, "ok", "ns")) is not None


async def test_a_generation_predicate_never_drops_a_delete_of_lazy_events() -> None:
    lines = [
        line("MODIFIED", "a", "2", generation=1),
        line("MODIFIED", "a", "3", generation=1),  # status-only change: filtered
        line("DELETED", "a", "4", generation=1),  # same generation: still passes
        line("ADDED", "a", "5", generation=1),  # re-created after the delete: passes
    ]
    stream = predicate_filter(watcher(_LineApi(lines), WatcherConfig()), predicates.generation)
    items = await _take(stream, 6)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["Init", "InitApply", "InitDone", "Apply", "Delete", "Apply"]
    assert all(i.lazy is None or not i.lazy.decoded for i in items if isinstance(i, Apply | Delete))
    assert [i.object["metadata"]["resourceVersion"] for i in items if isinstance(i, Apply | Delete)] == [
        "2",
        "4",
        "5",
    ]
    assert not isinstance(items[-1], WatchFailed | InitDone)
