"""WatchProgress: the watcher stamps it on every list page and event line, bookmarks included,
while bookmarks still yield nothing (kube-rs semantics); an ``ERROR`` line stamps nothing, so
``kube_runtime_watch_last_event_timestamp_seconds`` (which reads it) keeps showing the silence of
a watch that only gets errors. On the virtual clock, against the embedded API server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.errors import ApiError
from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.watch_metrics import observe_watch
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.event import Apply, Init, InitApply, InitDone, WatcherError
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.watcher import metadata_watcher, watcher

CM = ApiResource.builtin("ConfigMap")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


@pytest.mark.parametrize("metadata", [False, True], ids=["watcher", "metadata_watcher"])
async def test_bookmarks_stamp_progress_but_yield_nothing(metadata: bool) -> None:
    async with ApiServer(bookmark_interval=30) as server:
        api = Api(server.client, CM, "quiet")
        progress = WatchProgress(clock=anyio.current_time)
        start = metadata_watcher if metadata else watcher
        items: list[object] = []
        listed_at: float | None = None
        async with start(api, WatcherConfig(), progress=progress) as stream:
            with anyio.move_on_after(100):  # virtual seconds: about three bookmark intervals
                async for item in stream:
                    items.append(item)
                    if isinstance(item, InitDone):
                        listed_at = progress.last_seen
        assert [type(i) for i in items] == [Init, InitDone]
        assert listed_at is not None
        assert progress.received >= 3  # the list page and at least two bookmarks
        assert progress.last_seen is not None
        assert progress.last_seen >= listed_at + 30


async def test_every_page_and_event_line_stamps_once() -> None:
    async with ApiServer() as server:
        api = Api(server.client, CM, "default")
        for name in ("a", "b", "c"):
            await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        progress = WatchProgress(clock=anyio.current_time)
        assert progress.last_seen is None
        assert progress.age() is None
        seen: list[tuple[type, int]] = []
        async with watcher(api, WatcherConfig().with_page_size(2), progress=progress) as stream:
            async for item in stream:
                seen.append((type(item), progress.received))
                if isinstance(item, InitDone):
                    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}})
                elif isinstance(item, Apply):
                    break
    # Two list pages (2 + 1 objects), then one watch line for the create.
    assert seen == [(Init, 1), (InitApply, 1), (InitApply, 1), (InitApply, 2), (InitDone, 2), (Apply, 3)]
    age = progress.age()
    assert age is not None
    assert age >= 0


@pytest.mark.parametrize("with_progress", [True, False], ids=["progress", "events"])
async def test_an_error_line_stamps_neither_progress_nor_the_last_event_timestamp(
    with_progress: bool,
) -> None:
    """A watch resumed from a compacted resourceVersion gets a 410 ``ERROR`` line: the server
    answered, but with neither an event nor a bookmark, so the timestamp keeps the list's time
    (the relist that follows stamps it, with its events)."""
    registry = CollectorRegistry()
    progress = WatchProgress(clock=anyio.current_time) if with_progress else None

    def stamp() -> float | None:
        return registry.get_sample_value(
            "kube_runtime_watch_last_event_timestamp_seconds", {"watch": "configmaps"}
        )

    async with ApiServer(bookmark_interval=3600) as server:
        api = Api(server.client, CM, "default")
        stream = observe_watch(
            watcher(api, progress=progress), "configmaps", registry=registry, progress=progress
        ).default_backoff()
        listed = anyio.Event()
        stamps: list[tuple[object, float | None, int]] = []

        async def consume() -> None:
            async with stream:
                async for item in stream:
                    stamps.append((item, stamp(), progress.received if progress is not None else 0))
                    if isinstance(item, InitDone):
                        if listed.is_set():
                            return  # relisted
                        listed.set()

        with anyio.fail_after(600):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await listed.wait()
                await server.wait_for_watches(1)
                await anyio.sleep(100)
                # A write the watch does not see moves the revision; compacting at it expires the
                # watch's resume point; closed, the watch is reopened from it and gets a 410 line.
                other = Api(server.client, CM, "kube-system")
                await other.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
                server.faults.compact()
                assert server.faults.close_watches() == 1
    [(_, listed_at, listed_count)] = [(i, t, n) for i, t, n in stamps if isinstance(i, InitDone)][:1]
    [(error, errored_at, errored_count)] = [(i, t, n) for i, t, n in stamps if isinstance(i, WatcherError)]
    assert isinstance(error, WatcherError)
    assert isinstance(error.__cause__, ApiError)
    assert error.__cause__.code == 410
    assert listed_at is not None
    assert errored_at == listed_at
    assert errored_count == listed_count  # the ERROR line was not counted as a delivery either
    relisted_at = stamps[-1][1]
    assert isinstance(stamps[-1][0], InitDone)
    assert relisted_at is not None
    assert relisted_at > listed_at
    assert (
        registry.get_sample_value("kube_runtime_watch_errors_total", {"watch": "configmaps", "code": "410"})
        == 1
    )
