"""The idle bound learned from bookmarks: IdleBudget alone, then the watcher on the virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio
import pytest

from kube_runtime.client.errors import WatchTimeout
from kube_runtime.client.idle import IdleTimedIterator
from kube_runtime.client.lines import WatchEvent
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.watcher import Init, InitDone, WatcherConfig, WatchFailed, WatchStartFailed, watcher
from kube_runtime.watcher.cadence import MIN_IDLE_TIMEOUT, IdleBudget

# -- IdleBudget ---------------------------------------------------------------------------------


def learned(*times: float, ceiling: float = 295.0, **kwargs: Any) -> IdleBudget:
    budget = IdleBudget(ceiling, **kwargs)
    budget.opened()
    for now in times:
        budget.bookmark(now)
    return budget


def test_the_ceiling_holds_until_two_bookmarks_give_a_gap() -> None:
    assert IdleBudget(295.0).timeout == 295
    assert learned(10.0).timeout == 295
    assert learned(10.0, 12.0).timeout == 6  # three missed 2 s bookmarks
    assert learned(0.0, 60.0).timeout == 180  # the real API server's cadence: under Azure's 240 s


def test_the_bound_is_clamped_between_the_floor_and_the_ceiling() -> None:
    assert learned(0.0, 0.5).timeout == MIN_IDLE_TIMEOUT == 5
    assert learned(0.0, 0.0).timeout == 5  # two bookmarks at once (initial-events-end and a tick)
    assert learned(0.0, 200.0).timeout == 295
    assert learned(0.0, 1.0, ceiling=3.0).timeout == 3  # a floor above the ceiling gives way


def test_the_cadence_is_the_longest_recent_gap() -> None:
    budget = learned(0.0, 2.0, 3.0, 6.0)  # gaps 2, 1, 3: jittered timers
    assert budget.cadence == 3
    assert budget.timeout == 9
    for now in (7.0, 8.0, 9.0, 10.0):  # four 1 s gaps push the 3 s one out of the window
        budget.bookmark(now)
    assert budget.cadence == 1
    assert budget.timeout == 5


def test_bookmark_reports_whether_the_bound_changed() -> None:
    budget = learned()
    assert budget.bookmark(0.0) is False
    assert budget.bookmark(2.0) is True
    assert budget.bookmark(4.0) is False


def test_gaps_never_span_a_reconnect() -> None:
    budget = learned(0.0)
    budget.opened()
    budget.bookmark(100.0)  # first bookmark of the new connection: no 100 s gap
    assert budget.timeout == 295
    budget.bookmark(102.0)
    assert budget.timeout == 6


def test_each_timeout_widens_the_bound_threefold_until_real_gaps_age_it_out() -> None:
    budget = learned(0.0, 2.0)
    assert budget.timeout == 6
    budget.timed_out()
    assert budget.timeout == 18
    budget.timed_out()
    assert budget.timeout == 54
    for _ in range(5):
        budget.timed_out()
    assert budget.timeout == 295
    budget.opened()
    for now in (0.0, 2.0, 4.0, 6.0, 8.0):
        budget.bookmark(now)
    assert budget.timeout == 6


def test_the_farewell_bookmark_measures_no_gap() -> None:
    """kube-apiserver sends a bookmark 2 s before ``timeoutSeconds`` run out; with a 60 s timeout
    it follows the periodic one by about a second, and that gap is no cadence."""
    budget = IdleBudget(65.0, lifetime=60.0)
    for opened in (0.0, 60.0, 120.0):
        budget.opened(opened)
        budget.bookmark(opened + 56.8)  # the periodic bookmark, late in the connection
        budget.bookmark(opened + 58.0)  # the farewell
    assert budget.cadence is None
    assert budget.timeout == 65
    budget = IdleBudget(295.0, lifetime=290.0)
    budget.opened(0.0)
    for now in (60.0, 120.0, 180.0, 240.0, 288.0):  # four periodic bookmarks, then the farewell
        budget.bookmark(now)
    assert budget.cadence == 60
    assert budget.timeout == 180
    short = IdleBudget(13.0, lifetime=8.0)  # a short watch: the last quarter is the farewell's
    short.opened(0.0)
    for now in (1.0, 2.0, 3.0, 6.5):
        short.bookmark(now)
    assert short.cadence == 1


def test_a_configured_interval_is_the_first_estimate() -> None:
    budget = IdleBudget(295.0, interval=60.0)
    assert budget.timeout == 180
    budget = IdleBudget(295.0, interval=10.0, missed=5)
    assert budget.timeout == 50


def test_without_learning_bookmarks_change_nothing() -> None:
    budget = learned(0.0, 2.0, 4.0, learn=False)
    assert budget.timeout == 295
    assert budget.cadence is None


def test_watcher_config_builds_the_budget_and_validates() -> None:
    assert WatcherConfig().idle_budget().timeout == 295
    assert WatcherConfig().with_timeout(10).idle_budget().timeout == 15
    assert WatcherConfig().with_bookmark_interval(2).idle_budget().timeout == 6
    assert WatcherConfig().with_bookmark_interval(2, missed=4).idle_budget().timeout == 8
    assert WatcherConfig().disable_bookmarks().idle_budget().learn is False
    with pytest.raises(ValueError, match="bookmark_interval"):
        WatcherConfig(bookmark_interval=0)
    with pytest.raises(ValueError, match="missed_bookmarks"):
        WatcherConfig(missed_bookmarks=0)


# -- the watcher learns the cadence (virtual clock, in-memory API) --------------------------------


def bookmark(rv: int) -> WatchEvent:
    return WatchEvent("BOOKMARK", {"kind": "ConfigMap", "metadata": {"resourceVersion": str(rv)}})


class BookmarkingApi:
    """Lists nothing at version 5. The first watch sends a bookmark every 2 s, ``count`` times,
    then falls silent with the connection open; later watches only fall silent. Its streams enforce
    the idle timeout with the client's own watchdog (``idle_timed``), as ``Api.watch``'s do."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.watch_calls: list[dict[str, Any]] = []
        self.retimed: list[float] = []

    async def list(self, **params: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "5"}, "items": []}

    def watch(self, **params: Any) -> Any:
        self.watch_calls.append(params)
        return self._watch(self.count if len(self.watch_calls) == 1 else 0, params["idle_timeout"])

    @asynccontextmanager
    async def _watch(self, count: int, idle_timeout: float) -> AsyncIterator[Any]:
        async def bookmarks() -> AsyncIterator[WatchEvent]:
            for rv in range(6, 6 + count):
                await anyio.sleep(2)
                yield bookmark(rv)
            await anyio.sleep_forever()

        async with aclosing(_Recorded(bookmarks(), idle_timeout, "/api/v1/configmaps")) as stream:
            stream.retimed = self.retimed
            yield stream


class _Recorded(IdleTimedIterator[WatchEvent]):
    """Records every change of its idle timeout."""

    retimed: list[float]

    def set_idle_timeout(self, seconds: float) -> None:
        self.retimed.append(seconds)
        super().set_idle_timeout(seconds)


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_the_watcher_learns_the_cadence_and_gives_a_silent_watch_up(anyio_backend: Any) -> None:
    api = BookmarkingApi(4)
    failures: list[tuple[float, Any]] = []
    async with watcher(api) as stream:
        with anyio.fail_after(10):
            async for item in stream:
                if isinstance(item, InitDone):
                    opened = anyio.current_time()
                    break
        with anyio.move_on_after(100):
            async for item in stream:
                failures.append((anyio.current_time() - opened, item))
    # Bookmarks at 2, 4, 6, 8 s: learned 6 s after the second; silent from 8 s, given up at 14 s.
    # Each timeout widens the next bound threefold (18 s, then 54 s) since nothing is learned.
    assert [round(t, 6) for t, _ in failures] == [14, 14 + 18, 14 + 18 + 54]
    assert all(isinstance(f, WatchFailed) for _, f in failures)
    causes = [f.__cause__ for _, f in failures]
    assert all(isinstance(c, WatchTimeout) and c.phase == "idle" for c in causes)
    assert [c.seconds for c in causes if isinstance(c, WatchTimeout)] == [6, 18, 54]
    assert [c["idle_timeout"] for c in api.watch_calls] == [295, 18, 54, 162]
    assert [c["resource_version"] for c in api.watch_calls] == ["5", "9", "9", "9"]
    assert api.retimed == [6]


class FarewellApi:
    """Lists nothing at version 5; every watch stays open for its ``timeoutSeconds`` (60 s) and
    sends, as kube-apiserver does with that timeout, a periodic bookmark 3.2 s before its end and
    the farewell bookmark 2 s before it, then ends normally."""

    def __init__(self) -> None:
        self.watch_calls = 0

    async def list(self, **params: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "5"}, "items": []}

    def watch(self, **params: Any) -> Any:
        self.watch_calls += 1
        return self._watch(params["timeout_seconds"], params["idle_timeout"])

    @asynccontextmanager
    async def _watch(self, lifetime: float, idle_timeout: float) -> AsyncIterator[Any]:
        async def bookmarks() -> AsyncIterator[WatchEvent]:
            await anyio.sleep(lifetime - 3.2)
            yield bookmark(6)
            await anyio.sleep(1.2)
            yield bookmark(6)
            await anyio.sleep(2)

        async with aclosing(IdleTimedIterator(bookmarks(), idle_timeout, "/api/v1/configmaps")) as stream:
            yield stream


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_a_healthy_watch_with_a_short_timeout_is_never_given_up(anyio_backend: Any) -> None:
    """The periodic and the farewell bookmark 1.2 s apart on each connection taught a 1.2 s cadence
    (5 s bound), and every following connection was given up after 5 s of normal silence."""
    api = FarewellApi()
    items: list[Any] = []
    async with watcher(api, WatcherConfig().with_timeout(60)) as stream:
        with anyio.move_on_after(600):
            async for item in stream:
                items.append(item)
    assert [type(item) for item in items] == [Init, InitDone], items
    assert api.watch_calls == 10  # one connection per minute, each ended by the server


class UnreachableOnceApi:
    """Lists nothing at version 5. The first watch sends bookmarks 60 s apart (a learned bound of
    180 s), then ends normally; the second cannot be opened (``WatchTimeout`` with ``phase="headers"``
    after ``stalled_for`` seconds); later ones record their bound and stay open."""

    def __init__(self, stalled_for: float) -> None:
        self.stalled_for = stalled_for
        self.watch_calls: list[dict[str, Any]] = []

    async def list(self, **params: Any) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": "5"}, "items": []}

    def watch(self, **params: Any) -> Any:
        self.watch_calls.append(params)
        return self._watch(len(self.watch_calls), params["idle_timeout"])

    @asynccontextmanager
    async def _watch(self, call: int, idle_timeout: float) -> AsyncIterator[Any]:
        if call == 2:
            await anyio.sleep(self.stalled_for)
            raise WatchTimeout(
                "no answer", phase="headers", seconds=self.stalled_for, url="/api/v1/configmaps"
            )

        async def bookmarks() -> AsyncIterator[WatchEvent]:
            if call == 1:
                for rv in (6, 7):
                    await anyio.sleep(60)
                    yield bookmark(rv)
                await anyio.sleep(10)
                return
            await anyio.sleep_forever()

        async with aclosing(IdleTimedIterator(bookmarks(), idle_timeout, "/api/v1/configmaps")) as stream:
            yield stream


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
@pytest.mark.parametrize(
    ("stalled_for", "next_bound"),
    [
        pytest.param(180, 295, id="the-budget's-bound-widens"),
        pytest.param(30, 180, id="a-shorter-connect-timeout-does-not"),
    ],
)
async def test_only_a_headers_timeout_at_the_budget_s_bound_widens_it(
    anyio_backend: Any, stalled_for: float, next_bound: float
) -> None:
    api = UnreachableOnceApi(stalled_for)
    async with watcher(api) as stream:
        with anyio.fail_after(1000):
            async for item in stream:
                if isinstance(item, WatchStartFailed):
                    break
        with anyio.move_on_after(10):  # opens the third watch, then waits on it
            await stream.__anext__()
    assert [c["idle_timeout"] for c in api.watch_calls] == [295, 180, next_bound]
