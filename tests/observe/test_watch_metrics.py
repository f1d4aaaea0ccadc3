"""Watch stream metrics (events, errors by code, relists, recoveries, last event time) and the
store gauges read at scrape time."""

from __future__ import annotations

import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import anyio
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.errors import ApiError, TransportError, WatchDecodeError
from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.watch_metrics import observe_watch, track_store
from kube_runtime.store.store import store
from kube_runtime.streams import WatchStream
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.event import (
    Apply,
    Delete,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    NoResourceVersion,
    WatchError,
    WatchFailed,
    WatchStartFailed,
)
from kube_runtime.watcher.watcher import watcher

from .results import stream

CM = ApiResource.builtin("ConfigMap")
T = TypeVar("T")


def cm(name: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": "default"}}


def gone() -> ApiError:
    return ApiError({"code": 410, "reason": "Expired", "message": "too old resource version"})


async def test_events_errors_relists_and_recoveries_are_counted(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    events: list[object] = [
        InitialListFailed(ApiError({"code": 403, "reason": "Forbidden"})),
        Init(),
        InitApply(cm("a")),
        InitDone(),
        Apply(cm("b")),
        WatchError(gone()),
        Init(),
        InitApply(cm("a")),
        InitDone(),
        Delete(cm("a")),
        WatchFailed(TransportError("connection reset")),
        WatchStartFailed(TransportError("refused")),
        WatchFailed(WatchDecodeError("bad line", b"{")),
        NoResourceVersion(),
        Apply(cm("c")),
    ]
    before = time.time()
    seen = [e async for e in observe_watch(stream(events), "configmaps", registry=registry)]
    assert seen == events

    def get(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"watch": "configmaps", **labels})

    assert get("kube_runtime_watch_events_total", type="init") == 2
    assert get("kube_runtime_watch_events_total", type="init_apply") == 2
    assert get("kube_runtime_watch_events_total", type="init_done") == 2
    assert get("kube_runtime_watch_events_total", type="apply") == 2
    assert get("kube_runtime_watch_events_total", type="delete") == 1
    assert get("kube_runtime_watch_errors_total", code="403") == 1
    assert get("kube_runtime_watch_errors_total", code="410") == 1
    assert get("kube_runtime_watch_errors_total", code="transport") == 2
    assert get("kube_runtime_watch_errors_total", code="decode") == 1
    assert get("kube_runtime_watch_errors_total", code="no_resource_version") == 1
    assert get("kube_runtime_watch_relists_total") == 1
    assert get("kube_runtime_watch_restarts_total") == 3
    last = get("kube_runtime_watch_last_event_timestamp_seconds")
    assert last is not None
    assert last >= before

    logged = [json.loads(line) for line in out.getvalue().splitlines()]
    forbidden = [e for e in logged if e.get("code") == "403"]
    assert [e["level"] for e in forbidden] == ["warning"]
    assert any(e["event"] == "watch relisting" and e["level"] == "info" for e in logged)
    assert not any(e.get("code") == "410" for e in logged)  # routine errors stay at debug
    configure_logging("warning", stream=io.StringIO())


async def test_zero_410_series_exists_before_any_error(registry: CollectorRegistry) -> None:
    async for _ in observe_watch(stream([Init()]), "w", registry=registry):
        pass
    assert registry.get_sample_value("kube_runtime_watch_errors_total", {"watch": "w", "code": "410"}) == 0
    assert registry.get_sample_value("kube_runtime_watch_relists_total", {"watch": "w"}) == 0


def test_store_gauges_follow_the_store_at_scrape_time(registry: CollectorRegistry) -> None:
    reader, writer = store(gc_policy=None)
    track_store("configmaps", reader, registry=registry)

    def get(name: str) -> float | None:
        return registry.get_sample_value(name, {"store": "configmaps"})

    assert (get("kube_runtime_store_objects"), get("kube_runtime_store_ready")) == (0, 0)
    for event in (Init(), InitApply(cm("a")), InitApply(cm("b"))):
        writer.apply_watcher_event(event)
    assert (get("kube_runtime_store_objects"), get("kube_runtime_store_ready")) == (0, 0)
    writer.apply_watcher_event(InitDone())
    assert (get("kube_runtime_store_objects"), get("kube_runtime_store_ready")) == (2, 1)
    writer.apply_watcher_event(Delete(cm("a")))
    assert get("kube_runtime_store_objects") == 1


async def test_real_watch_errors_relist_and_recovery(api_server: ApiServer) -> None:
    """Against the embedded API server: two injected 500s (not retried by the client, unlike
    503), then history compaction answering the re-watch with 410 and a relist; one recovery."""
    registry = CollectorRegistry()
    async with Client.from_kubeconfig(str(api_server.kubeconfig_path), metrics_registry=registry) as client:
        api = Api(client, CM, "default")
        await api.create(cm("a"))
        events = observe_watch(watcher(api, WatcherConfig()), "cms", registry=registry)

        def get(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, {"watch": "cms", **labels})

        inits_done = 0
        with anyio.fail_after(30):
            async with events.default_backoff() as stream:
                async for event in stream:
                    if isinstance(event, InitDone):
                        inits_done += 1
                        if inits_done == 2:
                            break
                        await api.create(cm("b"))
                        api_server.faults.compact()
                        api_server.faults.fail_next(2, 500)
                        api_server.faults.close_watches()
    assert get("kube_runtime_watch_relists_total") == 1
    assert get("kube_runtime_watch_errors_total", code="500") == 2
    assert get("kube_runtime_watch_errors_total", code="410") == 1
    assert get("kube_runtime_watch_restarts_total") == 1
    assert get("kube_runtime_watch_events_total", type="init_apply") == 1 + 2


async def test_observe_watch_chains_like_any_watch_stream(registry: CollectorRegistry) -> None:
    """``observe_watch`` returns a WatchStream: no ``WatchStream(observe_watch(...))`` wrapping."""
    reader, writer = store(gc_policy=None)
    closed: list[bool] = []

    async def events() -> AsyncIterator[object]:
        try:
            for event in (Init(), InitApply(cm("a")), InitDone(), Apply(cm("b")), Delete(cm("a"))):
                yield event
            await anyio.sleep_forever()
        finally:
            closed.append(True)

    observed = observe_watch(events(), "w", registry=registry)
    assert isinstance(observed, WatchStream)
    chain = observed.default_backoff().reflect(writer).touched_objects()
    async with chain:
        names = [obj["metadata"]["name"] async for obj in _take(chain, 3)]  # type: ignore[index]
    assert names == ["a", "b", "a"]
    assert closed == [True]  # leaving the chain closed the source through the metrics wrapper
    assert sorted(reader.keys()) == ["default/b"]
    assert registry.get_sample_value("kube_runtime_watch_events_total", {"watch": "w", "type": "delete"}) == 1


async def _take(stream: AsyncIterator[T], count: int) -> AsyncIterator[T]:
    for _ in range(count):
        yield await anext(stream)
