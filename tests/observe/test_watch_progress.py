"""WatchProgress: the watcher stamps it on every list page and watch line, bookmarks included,
while bookmarks still yield nothing (kube-rs semantics). On the virtual clock, against the
embedded API server."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.client.api import Api
from kube_runtime.client.resource import ApiResource
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.event import Apply, Init, InitApply, InitDone
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
