"""The watcher over HTTP against the embedded API server, plus idle-timeout on the virtual clock."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from kube_runtime.client.api import Api
from kube_runtime.client.errors import WatchTimeout
from kube_runtime.client.idle import idle_timed
from kube_runtime.client.resource import ApiResource
from kube_runtime.store import store
from kube_runtime.streams import WatchStream
from kube_runtime.testing import ApiServer
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.watcher import (
    Apply,
    Delete,
    ExponentialBackoff,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    WatcherConfig,
    WatchError,
    WatchFailed,
    WatchStartFailed,
    metadata_watcher,
    watch_object,
    watcher,
)

pytestmark = pytest.mark.anyio

CM = ApiResource.builtin("ConfigMap")


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def fast_backoff() -> ExponentialBackoff:
    return ExponentialBackoff(0.01, 0.05, jitter=False)


class Pump:
    """Iterates a stream in a task of its own (as a controller would), so the watch stays open
    while the test acts; the test reads what came out."""

    def __init__(self, stream: WatchStream[Any]) -> None:
        self.stream = stream
        self.send, self.receive = anyio.create_memory_object_stream[Any](1000)

    async def run(self) -> None:
        async with self.stream, self.send:
            async for item in self.stream:
                await self.send.send(item)

    def __aiter__(self) -> Pump:
        return self

    async def __anext__(self) -> Any:
        return await self.receive.receive()


@asynccontextmanager
async def pumped(stream: WatchStream[Any]) -> AsyncIterator[Pump]:
    pump = Pump(stream)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pump.run)
        yield pump
        tg.cancel_scope.cancel()


async def watches_open(server: ApiServer, count: int = 1) -> None:
    with anyio.fail_after(10):
        while server.stats()["watchers"] != count:  # noqa: ASYNC110 (server state has no event)
            await anyio.sleep(0.005)


async def next_items(stream: Any, count: int, within: float = 10) -> list[Any]:
    with anyio.fail_after(within):
        return [await anext(stream) for _ in range(count)]


async def until(stream: Any, pred: Any, within: float = 10) -> list[Any]:
    """Items up to and including the first one ``pred`` accepts."""
    out: list[Any] = []
    with anyio.fail_after(within):
        async for item in stream:
            out.append(item)
            if pred(item):
                return out
    raise AssertionError("stream ended")


def kinds(items: list[Any]) -> list[str]:
    return [type(i).__name__ for i in items]


async def test_list_then_watch_with_pages(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    for i in range(5):
        await api.create(configmap(f"c{i}"))
    async with watcher(api, WatcherConfig().with_page_size(2)) as stream:
        items = await until(stream, lambda i: isinstance(i, InitDone))
        assert kinds(items) == ["Init"] + ["InitApply"] * 5 + ["InitDone"]
        assert items[1].object["kind"] == "ConfigMap"
        await api.create(configmap("new"))
        await api.patch("c0", {"data": {"x": "y"}})
        await api.delete("c1")
        items = await next_items(stream, 3)
        assert kinds(items) == ["Apply", "Apply", "Delete"]
        assert [i.object["metadata"]["name"] for i in items] == ["new", "c0", "c1"]


async def test_streaming_list_emits_init_kube_rs_streaming_list_init(api_server: ApiServer) -> None:
    """kube-rs bug: no Init in streaming-list mode. Here Init, InitApply*, InitDone as for list+watch."""
    api = Api(api_server.client, CM, "default")
    for i in range(3):
        await api.create(configmap(f"s{i}"))
    async with watcher(api, WatcherConfig().streaming_lists()) as stream:
        items = await until(stream, lambda i: isinstance(i, InitDone))
        assert kinds(items) == ["Init", "InitApply", "InitApply", "InitApply", "InitDone"]
        await api.create(configmap("later"))
        (item,) = await next_items(stream, 1)
        assert isinstance(item, Apply)
        assert item.object["metadata"]["name"] == "later"


async def test_closed_watch_resumes_without_relisting(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    await api.create(configmap("a"))
    async with pumped(watcher(api)) as stream:
        await until(stream, lambda i: isinstance(i, InitDone))
        await watches_open(api_server)
        assert api_server.faults.close_watches() == 1
        await api.create(configmap("b"))  # happens while no watch is open
        (item,) = await next_items(stream, 1)
        assert isinstance(item, Apply)
        assert item.object["metadata"]["name"] == "b"


async def test_expired_version_in_stream_relists(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    await api.create(configmap("a"))
    async with pumped(watcher(api)) as stream:
        await until(stream, lambda i: isinstance(i, InitDone))
        await api.create(configmap("b"))
        await next_items(stream, 1)
        await watches_open(api_server)
        # Without yielding to the watcher: end its watch, change and compact behind its back.
        api_server.faults.close_watches()
        api_server.ops.delete(api_server.resource_type(CM), "default", "a")
        api_server.faults.compact()
        items = await until(stream, lambda i: isinstance(i, InitDone))
        assert isinstance(items[0], WatchError)
        assert items[0].code == 410
        assert kinds(items[1:]) == ["Init", "InitApply", "InitDone"]
        assert items[2].object["metadata"]["name"] == "b"


async def test_watch_start_410_relists_kube_rs_stale_version_retry(api_server: ApiServer) -> None:
    """kube-rs bug: an HTTP 410 when restarting the watch kept retrying the same stale version
    forever. We relist instead."""
    api = Api(api_server.client, CM, "default")
    await api.create(configmap("a"))
    async with pumped(watcher(api).backoff(fast_backoff())) as stream:
        await until(stream, lambda i: isinstance(i, InitDone))
        await watches_open(api_server)
        api_server.faults.fail_next(1, 410)
        api_server.faults.close_watches()
        items = await until(stream, lambda i: isinstance(i, InitDone))
        assert isinstance(items[0], WatchStartFailed)
        assert kinds(items[1:]) == ["Init", "InitApply", "InitDone"]


async def test_failing_list_recovers_and_brackets(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    for i in range(3):
        await api.create(configmap(f"c{i}"))
    api_server.faults.fail_next(3, 500)  # 503 would be retried by the client itself
    async with watcher(api, WatcherConfig().with_page_size(1)).backoff(fast_backoff()) as stream:
        items = await until(stream, lambda i: isinstance(i, InitDone))
    errors = [i for i in items if isinstance(i, InitialListFailed)]
    assert len(errors) == 3
    tail = items[items.index(errors[-1]) + 1 :]
    assert kinds(tail) == ["Init", "InitApply", "InitApply", "InitApply", "InitDone"]


async def test_reflector_store_follows_the_server(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    reader, writer = store(CM)
    await api.create(configmap("a"))
    async with pumped(watcher(api).reflect(writer)) as stream:
        await until(stream, lambda i: isinstance(i, InitDone))
        assert reader.is_ready()
        assert len(reader) == 1
        await api.create(configmap("b"))
        await api.delete("a")
        await next_items(stream, 2)
        assert [o["metadata"]["name"] for o in reader.state()] == ["b"]


async def test_metadata_watcher_yields_partial_objects(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    await api.create(configmap("m", big="x" * 1000))
    async with metadata_watcher(api) as stream:
        items = await until(stream, lambda i: isinstance(i, InitDone))
        obj = items[1].object
        assert obj["metadata"]["name"] == "m"
        assert "data" not in obj


class DecodingMetadataApi:
    """An ``Api``'s metadata verbs without ``list_metadata_raw``: the watcher lists through
    ``list_metadata``, decoding every item (what ``metadata_watcher`` did before it listed raw)."""

    def __init__(self, api: Api) -> None:
        self.list_metadata = api.list_metadata
        self.watch_metadata = api.watch_metadata


async def test_metadata_watcher_lists_raw_and_yields_what_the_decoding_list_yields(
    api_server: ApiServer,
) -> None:
    rtype = api_server.resource_type(CM)
    for i in range(120):
        obj = configmap(f"m-{i:03d}", payload="x" * i)
        obj["metadata"]["labels"] = {"i": str(i)}
        if i % 5 == 0:
            obj["metadata"]["annotations"] = {"a": "b"}
        api_server.ops.create(rtype, "default", obj)
    api = Api(api_server.client, CM, "default")
    config = WatcherConfig().with_page_size(25)
    listed: list[list[Any]] = []
    stores = []
    for watched in (api, DecodingMetadataApi(api)):
        reader, writer = store(CM)
        async with metadata_watcher(watched, config).reflect(writer) as stream:
            items = await until(stream, lambda i: isinstance(i, InitDone))
        applied = [i for i in items if isinstance(i, InitApply)]
        listed.append(applied)
        stores.append(sorted(reader.state(), key=lambda o: o["metadata"]["name"]))
    raw, decoded = listed
    assert all(i.lazy is not None and not i.lazy.decoded for i in raw)  # the store kept the bytes
    assert all(i.lazy is None or i.lazy.decoded for i in decoded)
    assert [i.object for i in raw] == [i.object for i in decoded]
    assert len(raw) == 120
    assert raw[5].object["metadata"]["annotations"] == {"a": "b"}
    assert all(i.object["kind"] == "PartialObjectMetadata" and "data" not in i.object for i in raw)
    assert stores[0] == stores[1]


async def test_watch_object_reports_presence_and_absence(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    await api.create(configmap("other"))
    async with pumped(watch_object(api, "target")) as stream:
        assert await next_items(stream, 1) == [None]  # not there after the initial list
        await api.create(configmap("target"))
        (obj,) = await next_items(stream, 1)
        assert obj["metadata"]["name"] == "target"
        await api.delete("target")
        assert await next_items(stream, 1) == [None]


async def test_closing_the_watcher_closes_the_watch(api_server: ApiServer) -> None:
    api = Api(api_server.client, CM, "default")
    stream = watcher(api)
    async with pumped(stream) as pump:
        await until(pump, lambda i: isinstance(i, InitDone))
        await watches_open(api_server)
    await watches_open(api_server, 0)


# -- idle timeout on the virtual clock, with an in-memory API ---------------------------------------


class HangingApi:
    """Lists one object; every watch opens and then never sends a byte."""

    def __init__(self) -> None:
        self.watch_calls: list[dict[str, Any]] = []

    async def list(self, **params: Any) -> dict[str, Any]:
        return {
            "metadata": {"resourceVersion": "5"},
            "items": [{"metadata": {"name": "a", "resourceVersion": "5"}}],
        }

    @asynccontextmanager
    async def _watch(self, params: dict[str, Any]) -> AsyncIterator[AsyncIterator[Any]]:
        self.watch_calls.append(params)

        async def events() -> AsyncGenerator[Any, None]:
            await anyio.sleep_forever()
            yield None

        stream = idle_timed(events(), params["idle_timeout"])
        try:
            yield stream
        finally:
            await stream.aclose()

    def watch(self, **params: Any) -> Any:
        return self._watch(params)


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_idle_watch_is_resumed_after_timeout_plus_5s(anyio_backend: Any) -> None:
    api = HangingApi()
    start = anyio.current_time()
    failures: list[Any] = []
    async with watcher(api) as stream:
        await until(stream, lambda i: isinstance(i, InitDone))
        with anyio.move_on_after(1000):
            async for item in stream:
                failures.append(item)
    assert [c["resource_version"] for c in api.watch_calls][:3] == ["5", "5", "5"]
    assert all(c["timeout_seconds"] == 290 for c in api.watch_calls)
    # Reopened every 295 s: at t=0, 295, 590, 885; each silence is a WatchFailed(WatchTimeout).
    assert len(api.watch_calls) == 4
    assert all(c["idle_timeout"] == 295 for c in api.watch_calls)  # no bookmark, nothing learned
    assert [type(f) for f in failures] == [WatchFailed] * 3
    assert all(isinstance(f.__cause__, WatchTimeout) and f.__cause__.phase == "idle" for f in failures)
    assert anyio.current_time() - start == pytest.approx(1000)
    assert not isinstance(api, Delete | Init | InitApply)
