"""Watch timeouts end to end: a watcher over TLS against the embedded API server, on the
virtual clock, recovers from a watch whose response headers never come and from a watch that
stops sending bookmarks while its connection stays open; each timeout is yielded as an error,
retried after the backoff, logged (structured, with the watch and the request path) and counted
in ``kube_runtime_watch_idle_timeouts_total``."""

from __future__ import annotations

import io
import json
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.errors import WatchTimeout
from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.watch_metrics import observe_watch
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import (
    Apply,
    InitDone,
    WatcherConfig,
    WatcherError,
    WatchFailed,
    WatchProgress,
    WatchStartFailed,
    watcher,
)

pytestmark = pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])

CM = ApiResource.builtin("ConfigMap")
PATH = "/api/v1/namespaces/default/configmaps"


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


class Marks(WatchProgress):
    """A WatchProgress that can be awaited: ``await marks.reach(n)`` returns once the watcher has
    stamped it ``n`` times (list pages and watch lines, bookmarks included)."""

    def __init__(self) -> None:
        super().__init__()
        self._target = 0
        self._reached = anyio.Event()

    def mark(self) -> None:
        super().mark()
        if self.received >= self._target:
            self._reached.set()

    async def reach(self, count: int) -> None:
        self._target, self._reached = count, anyio.Event()
        if self.received >= count:
            return
        await self._reached.wait()


class WatchItems:
    """Records a watch stream's items with the (virtual) time each arrived; ``failed`` is set by
    the first error value, ``applied`` by the first ``Apply``. Make one inside the test."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Any]] = []
        self.failed = anyio.Event()
        self.applied = anyio.Event()

    async def consume(self, stream: Any) -> None:
        async with stream:
            async for item in stream:
                self.items.append((anyio.current_time(), item))
                if isinstance(item, WatcherError):
                    self.failed.set()
                elif isinstance(item, Apply):
                    self.applied.set()

    def assert_one_idle_timeout(self, silent_from: float, seconds: float) -> None:
        """The stream failed once, with an idle ``WatchTimeout`` of ``seconds`` on the watch's
        path, ``seconds`` after it went silent at ``silent_from``."""
        [(failed_at, failure)] = [(t, i) for t, i in self.items if isinstance(i, WatcherError)]
        assert isinstance(failure, WatchFailed)
        cause = failure.__cause__
        assert isinstance(cause, WatchTimeout)
        assert (cause.phase, cause.seconds, cause.url) == ("idle", seconds, PATH)
        assert failed_at - silent_from == pytest.approx(seconds, abs=0.1)


def timeout_logs(out: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "watch timed out, reconnecting"]


async def test_a_watch_whose_headers_never_arrive_is_retried_after_the_bound(anyio_backend: Any) -> None:
    registry = CollectorRegistry()
    out = io.StringIO()
    configure_logging("info", stream=out)
    config = WatcherConfig().with_timeout(10)  # nothing learned yet: the bound is 10 + 5 s
    async with ApiServer(bookmark_interval=3600) as server:
        assert server.tls
        api = Api(server.client, CM, "default")
        stream = observe_watch(watcher(api, config), "configmaps", registry=registry).default_backoff()
        hung_at = failed_at = 0.0
        failure: WatcherError | None = None
        with anyio.fail_after(300):
            async with stream:
                async for item in stream:
                    if isinstance(item, InitDone):
                        # The next call opens the watch; the server accepts it and never answers.
                        server.faults.set_latency(3600)
                        hung_at = anyio.current_time()
                    elif isinstance(item, WatcherError):
                        assert failure is None, f"one timeout expected, got {item!r} too"
                        failure, failed_at = item, anyio.current_time()
                        server.faults.set_latency(0)
                        await api.create(cm("after"))
                    elif isinstance(item, Apply):
                        assert item.object["metadata"]["name"] == "after"
                        break
        recovered_at = anyio.current_time()
    assert isinstance(failure, WatchStartFailed)
    cause = failure.__cause__
    assert isinstance(cause, WatchTimeout)
    assert (cause.phase, cause.seconds, cause.url) == ("headers", 15, PATH)
    assert failed_at - hung_at == pytest.approx(15, abs=0.1)
    assert recovered_at - failed_at < 30  # the retry came after the backoff, not another bound

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"watch": "configmaps", **labels})

    assert sample("kube_runtime_watch_idle_timeouts_total", phase="headers") == 1
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="idle") == 0
    assert sample("kube_runtime_watch_errors_total", code="timeout") == 1
    assert sample("kube_runtime_watch_restarts_total") == 1
    assert sample("kube_runtime_watch_relists_total") == 0  # resumed, not relisted
    [logged] = timeout_logs(out)
    assert logged["level"] == "warning"
    assert (logged["watch"], logged["phase"], logged["timeout_seconds"], logged["path"]) == (
        "configmaps",
        "headers",
        15,
        PATH,
    )


async def test_a_watch_that_stops_sending_bookmarks_is_given_up_after_three_missed(
    anyio_backend: Any,
) -> None:
    """The server sends a bookmark every 2 s; the watcher learns it, so when the bookmarks stop
    (the connection stays open) the watch is given up 6 s after the last one, not 295 s."""
    registry = CollectorRegistry()
    out = io.StringIO()
    configure_logging("info", stream=out)
    marks = Marks()
    async with ApiServer(bookmark_interval=2) as server:
        api = Api(server.client, CM, "default")
        stream = observe_watch(
            watcher(api, progress=marks), "configmaps", registry=registry, progress=marks
        ).default_backoff()
        recorded = WatchItems()
        items, failed, applied = recorded.items, recorded.failed, recorded.applied

        with anyio.fail_after(300):
            async with anyio.create_task_group() as tg:
                tg.start_soon(recorded.consume, stream)
                await marks.reach(1 + 3)  # the list page, then three bookmarks: two gaps of 2 s
                server.faults.pause_bookmarks()
                silent_from = anyio.current_time()
                assert server.stats()["watchers"] == 1
                await failed.wait()
                server.faults.resume_bookmarks()
                await api.create(cm("after"))
                await applied.wait()
                tg.cancel_scope.cancel()

    recorded.assert_one_idle_timeout(silent_from, 6)
    assert isinstance(items[-1][1], Apply)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"watch": "configmaps", **labels})

    assert sample("kube_runtime_watch_idle_timeouts_total", phase="idle") == 1
    assert sample("kube_runtime_watch_idle_timeouts_total", phase="headers") == 0
    assert sample("kube_runtime_watch_errors_total", code="timeout") == 1
    assert sample("kube_runtime_watch_relists_total") == 0
    [logged] = timeout_logs(out)
    assert logged["level"] == "warning"
    assert (logged["watch"], logged["phase"], logged["timeout_seconds"], logged["path"]) == (
        "configmaps",
        "idle",
        6,
        PATH,
    )
