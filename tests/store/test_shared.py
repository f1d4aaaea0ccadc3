"""SharedReflector: fan-out to bounded subscriber buffers with backpressure and no deadlock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.client.head import LazyObject
from kube_runtime.store import SharedReflector, store
from kube_runtime.streams import DeletedObject
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.watcher.event import INIT, INIT_DONE, Apply, Delete, InitApply

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def cm(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)}}


def key(o: dict[str, Any]) -> str:
    return str(o["metadata"]["name"])


async def events(n: int, *, names: int = 1000, hold: anyio.Event | None = None) -> AsyncIterator[Any]:
    yield INIT
    yield InitApply(cm("seed", 0))
    yield INIT_DONE
    for i in range(1, n + 1):
        yield Apply(cm(f"o{i % names}", i))
    yield Delete(cm("seed", n + 1))
    if hold is not None:
        await hold.wait()


async def drain(sub: Any, out: dict[str, Any], delay: float = 0.0) -> None:
    async for obj in sub:
        out[key(obj)] = obj
        if delay:
            await anyio.sleep(delay)


async def test_every_subscriber_converges_with_a_slow_one() -> None:
    """A slow consumer (tiny buffer, sleeps per item) holds the root back but never deadlocks it
    or the fast consumer: everybody ends with the final state of every object."""
    reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, events(500, names=50), buffer_size=4)
    fast, slow = shared.subscribe(), shared.subscribe(buffer_size=2)
    got_fast: dict[str, Any] = {}
    got_slow: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(drain, fast, got_fast)
        tg.start_soon(drain, slow, got_slow, 1.0)
        async with shared:
            with anyio.fail_after(10_000):
                while len(reader) != 50 or any(len(s) for s in (fast, slow)) or not shared._finished:  # noqa: ASYNC110
                    await anyio.sleep(1)
    for got in (got_fast, got_slow):
        assert isinstance(got["seed"], DeletedObject)
        assert {k: v["metadata"]["resourceVersion"] for k, v in got.items() if k != "seed"} == {
            key(o): o["metadata"]["resourceVersion"] for o in reader.state()
        }


async def test_backpressure_bounds_how_far_the_root_runs_ahead() -> None:
    hold = anyio.Event()
    reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, events(100, names=100, hold=hold), buffer_size=3)
    stalled = shared.subscribe()
    async with shared:
        await anyio.sleep(5)
        # Buffer of 3 full (seed after InitDone, then two applies); the root waits on the third apply.
        assert len(stalled) == 3
        assert len(reader) <= 5
        first = [key(await anext(stalled)) for _ in range(3)]
        assert first == ["seed", "o1", "o2"]
        stalled.close()  # unsubscribing releases the root
        await anyio.sleep(5)
        assert len(reader) == 100
        hold.set()


async def test_coalescing_keeps_latest_state_per_object() -> None:
    async def updates() -> AsyncIterator[Any]:
        yield INIT_DONE
        for i in range(1, 11):
            yield Apply(cm("same", i))

    _reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, updates(), buffer_size=1)
    sub = shared.subscribe()
    async with shared:
        await anyio.sleep(1)
    seen = [obj["metadata"]["resourceVersion"] async for obj in sub]
    assert seen == ["10"]  # one slot, ten updates: only the latest is delivered


async def test_subscriptions_end_when_the_root_ends_and_late_subscribers_end_at_once() -> None:
    _reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, events(3, names=3), buffer_size=10)
    sub = shared.subscribe()
    async with shared:
        await anyio.sleep(1)
    assert len([o async for o in sub]) >= 3
    late = shared.subscribe()
    assert [o async for o in late] == []
    assert shared.store.is_ready()


async def test_root_errors_are_counted_not_dispatched() -> None:
    async def with_error() -> AsyncIterator[Any]:
        yield RuntimeError("watch broke")
        yield INIT_DONE

    _reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, with_error())
    sub = shared.subscribe()
    async with shared:
        await anyio.sleep(1)
    assert shared.errors == 1
    assert [o async for o in sub] == []


async def test_a_lazy_subscription_gets_heads_and_bytes_a_dict_one_gets_dicts() -> None:
    raw = [
        b'{"metadata":{"name":"a","namespace":"ns","resourceVersion":"1"}}',
        b'{"metadata":{"name":"b","namespace":"ns","resourceVersion":"2"},"spec":{"n":1e400}}',
    ]

    async def lazy_events() -> AsyncIterator[Any]:
        yield INIT
        yield INIT_DONE
        for b in raw:
            yield Apply(LazyObject.from_raw(b))

    _, writer = store()
    shared = SharedReflector(writer, lazy_events())
    lazy_sub, dict_sub = shared.subscribe(lazy=True), shared.subscribe()
    async with shared:
        with anyio.fail_after(100):
            while not shared._finished:  # noqa: ASYNC110
                await anyio.sleep(1)
    lazy_items = [item async for item in lazy_sub]
    assert [type(i) for i in lazy_items] == [LazyObject, LazyObject]
    assert [i.meta.metadata.name for i in lazy_items] == ["a", "b"]
    assert not any(i.decoded for i in lazy_items)
    dict_items = [item async for item in dict_sub]
    assert dict_items[0] == {"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"}}
    assert isinstance(dict_items[1], ObjectDecodeError)  # a value: the subscription went on


async def test_a_subscription_made_after_the_sync_catches_up_only_when_asked() -> None:
    """``catch_up=True`` on a ready store yields every cached object first (listed markers, a
    snapshot), then the changes after it; without it, only the changes. A controller subscribing
    after the sync relies on it (no object of the synced state goes unreconciled)."""
    from kube_runtime.streams import ListedObject

    hold, more = anyio.Event(), anyio.Event()

    async def source() -> AsyncIterator[Any]:
        yield INIT
        for i in range(1200):  # past one batch between event-loop passes
            yield InitApply(cm(f"o{i}", i))
        yield INIT_DONE
        await more.wait()
        yield Apply(cm("o1", 5000))
        yield Delete(cm("o2", 5001))
        await hold.wait()

    reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, source(), buffer_size=8)
    async with shared:
        await reader.wait_until_ready()
        await anyio.sleep(1)  # virtual time: the root has dispatched the sync and waits for more
        caught_up, plain = shared.subscribe(catch_up=True), shared.subscribe()
        lazy = shared.subscribe(catch_up=True, lazy=True)
        more.set()
        got: list[Any] = []
        with anyio.fail_after(10):
            async for obj in caught_up:
                got.append(obj)
                if isinstance(obj, DeletedObject):
                    break
        assert len(plain) == 2  # the two changes only
        first_lazy = await lazy.__anext__()
        hold.set()
    assert isinstance(first_lazy, LazyObject)
    assert not first_lazy.decoded
    listed = got[:1200]
    assert all(isinstance(o, ListedObject) for o in listed)
    assert sorted(key(o) for o in listed) == sorted(f"o{i}" for i in range(1200))
    assert [(key(o), o["metadata"]["resourceVersion"]) for o in got[1200:]] == [
        ("o1", "5000"),
        ("o2", "5001"),
    ]


async def test_a_delete_is_not_merged_away_by_a_re_creation_under_the_same_name() -> None:
    def with_uid(uid: str, rv: int) -> dict[str, Any]:
        obj = cm("x", rv)
        obj["metadata"]["uid"] = uid
        return obj

    async def source() -> AsyncIterator[Any]:
        yield INIT
        yield InitApply(with_uid("old", 1))
        yield INIT_DONE
        yield Apply(with_uid("old", 2))
        yield Delete(with_uid("old", 3))
        yield Apply(with_uid("new", 4))  # re-created while the subscriber was not reading
        yield Apply(with_uid("new", 5))  # a change of the new one: merged into its slot

    _reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, source(), buffer_size=8)
    sub = shared.subscribe()
    async with shared:
        await anyio.sleep(1)
    seen = [(type(o).__name__, o["metadata"]["uid"], o["metadata"]["resourceVersion"]) async for o in sub]
    # The listing is read from the store as the relist left it; the changes after it follow.
    assert seen == [("ListedObject", "old", "1"), ("DeletedObject", "old", "3"), ("dict", "new", "5")]


async def test_a_slow_subscriber_does_not_hold_the_watch_back_after_a_relist() -> None:
    """The root read the relist's listing into every buffer before it pulled the next watch item: a
    consumer reading 2,000 listed objects at 5 ms each kept the watch closed for 10 s, long enough for
    the list's resourceVersion to leave a short server history, so every watch began with 410 and
    relisted, for ever. The listing now waits in each subscription and the watch goes on at once."""
    listed = 2000
    pulled_after_sync = anyio.Event()

    async def source() -> AsyncIterator[Any]:
        yield INIT
        for i in range(listed):
            yield InitApply(cm(f"o{i}", i + 1))
        yield INIT_DONE
        pulled_after_sync.set()  # the watcher was asked for more: the watch would open now
        for i in range(5):
            yield Apply(cm(f"live{i}", listed + 1 + i))
        await anyio.sleep_forever()

    reader, writer = store(gc_policy=None)
    shared = SharedReflector(writer, source(), buffer_size=64)
    fast, slow = shared.subscribe(), shared.subscribe()
    fast_seen: list[str] = []
    fast_caught_up = anyio.Event()

    async def read_fast() -> None:
        async for obj in fast:
            fast_seen.append(key(obj))
            if len(fast_seen) == listed + 5:
                fast_caught_up.set()

    async def read_slow() -> None:
        async for _ in slow:
            await anyio.sleep(0.005)

    async with shared, anyio.create_task_group() as tg:
        tg.start_soon(read_fast)
        tg.start_soon(read_slow)
        with anyio.fail_after(1):  # virtual seconds; the slow reader needs 10 for the listing
            await pulled_after_sync.wait()
        with anyio.fail_after(1):
            await fast_caught_up.wait()
        assert fast_seen[listed:] == [f"live{i}" for i in range(5)]
        assert len(reader) == listed + 5
        tg.cancel_scope.cancel()
