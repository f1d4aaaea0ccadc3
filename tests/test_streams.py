"""Stream helpers over in-memory async iterators; backoff on the virtual clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import pytest

from kube_runtime import predicates
from kube_runtime.client.errors import KubeError
from kube_runtime.store import store
from kube_runtime.streams import (
    DeletedObject,
    ModifyFailed,
    WatchStream,
    applied_objects,
    backoff,
    drop_managed_fields,
    modify,
    predicate_filter,
    touched_objects,
)
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.watcher.backoff import ExponentialBackoff, ResetTimerBackoff, default_backoff_policy
from kube_runtime.watcher.event import (
    INIT,
    INIT_DONE,
    Apply,
    Delete,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    WatchFailed,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def cm(
    name: str, rv: str = "1", *, uid: str = "u1", generation: int | None = None, **extra: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv, **extra}
    if generation is not None:
        meta["generation"] = generation
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


class Source:
    """An async generator over fixed items that records whether it was closed."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = list(items)
        self.closed = False

    async def gen(self) -> AsyncIterator[Any]:
        try:
            for item in self.items:
                yield item
        finally:
            self.closed = True


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def err() -> InitialListFailed:
    return InitialListFailed(KubeError("boom"))


async def test_applied_objects_keeps_applies_and_errors() -> None:
    a, b, c = cm("a"), cm("b"), cm("c")
    e = err()
    out = await collect(
        applied_objects(Source([INIT, InitApply(a), INIT_DONE, Apply(b), Delete(c), e]).gen())
    )
    assert out == [a, b, e]


async def test_touched_objects_marks_deletes() -> None:
    a, c = cm("a"), cm("c")
    out = await collect(touched_objects(Source([Apply(a), Delete(c)]).gen()))
    assert out == [a, c]
    assert not isinstance(out[0], DeletedObject)
    assert isinstance(out[1], DeletedObject)


async def test_modify_in_place_and_by_replacement() -> None:
    a = cm("a", managedFields=[{"manager": "x"}])
    out = await collect(modify(Source([Apply(a), INIT]).gen(), drop_managed_fields))
    assert "managedFields" not in out[0].object["metadata"]
    assert out[1] is INIT

    out = await collect(modify(Source([InitApply(cm("b"))]).gen(), lambda o: {**o, "extra": 1}))
    assert isinstance(out[0], InitApply)
    assert out[0].object["extra"] == 1


async def test_a_raising_modify_function_passes_the_event_on_then_reports_and_goes_on() -> None:
    """A bug in the function (an object without the field it reads) ended the stream, watcher and
    store included. The event goes on unmodified (a relist behind it stays complete)."""

    def strip_owner(obj: dict[str, Any]) -> None:
        del obj["metadata"]["annotations"]["owner"]

    reader, writer = store()
    bare = InitApply(cm("bare"))
    events = [INIT, InitApply(cm("a", annotations={"owner": "x"})), bare, INIT_DONE, Apply(cm("c"))]
    out = await collect(modify(Source(events).gen(), strip_owner).reflect(writer))
    assert out[:3] == events[:3]
    assert out[2] is bare
    assert isinstance(out[3], ModifyFailed)
    assert isinstance(out[3].error, KeyError)
    assert out[4] is INIT_DONE
    assert isinstance(out[5], Apply)
    assert isinstance(out[6], ModifyFailed)
    assert sorted(o["metadata"]["name"] for o in reader.state()) == ["a", "bare", "c"]


async def test_reflect_applies_events_and_passes_errors() -> None:
    reader, writer = store()
    e = err()
    stream = WatchStream(Source([INIT, InitApply(cm("a")), INIT_DONE, e, Apply(cm("b"))]).gen()).reflect(
        writer
    )
    out = await collect(stream)
    assert out[3] is e
    assert sorted(o["metadata"]["name"] for o in reader.state()) == ["a", "b"]


async def test_closing_a_chain_closes_its_source() -> None:
    src = Source([Apply(cm("a")), Apply(cm("b"))])
    _reader, writer = store()
    chain = (
        WatchStream(src.gen()).default_backoff().modify(drop_managed_fields).reflect(writer).applied_objects()
    )
    async with chain:
        async for _ in chain:
            break
    assert src.closed


# -- backoff -----------------------------------------------------------------------------------


def test_exponential_backoff_sequence_without_jitter() -> None:
    b = ExponentialBackoff(0.8, 30.0, 2.0, jitter=False)
    assert [b.next() for _ in range(8)] == [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    b.reset()
    assert b.next() == 0.8


def test_exponential_backoff_jitter_bounds_and_max_times() -> None:
    b = ExponentialBackoff(0.8, 30.0, jitter=True, rng=random.Random(1), max_times=3)
    delays = [b.next() for _ in range(3)]
    assert all(d is not None for d in delays)
    for base, d in zip([0.8, 1.6, 3.2], delays, strict=True):
        assert d is not None
        assert base <= d <= base + 0.8
    assert b.next() is None


async def test_reset_timer_backoff_resets_after_quiet_period() -> None:
    b = ResetTimerBackoff(ExponentialBackoff(1.0, 100.0, jitter=False), reset_after=120.0)
    assert [b.next(), b.next(), b.next()] == [1.0, 2.0, 4.0]
    await anyio.sleep(121)
    assert b.next() == 1.0


async def test_default_backoff_is_client_go_reflector_policy() -> None:
    b = default_backoff_policy()
    inner = b.inner
    assert isinstance(inner, ExponentialBackoff)
    assert (inner.min_delay, inner.max_delay, inner.factor, inner.jitter) == (0.8, 30.0, 2.0, True)
    assert b.reset_after == 120.0


async def timed(stream: AsyncIterator[Any]) -> list[tuple[float, Any]]:
    start = anyio.current_time()
    return [(round(anyio.current_time() - start, 6), item) async for item in stream]


async def test_backoff_sleeps_after_errors_and_grows() -> None:
    e1, e2, e3 = err(), err(), err()
    out = await timed(backoff(Source([e1, e2, e3, INIT]).gen(), ExponentialBackoff(1.0, 60.0, jitter=False)))
    assert [t for t, _ in out] == [0.0, 1.0, 3.0, 7.0]


async def test_backoff_not_reset_by_init_of_a_failing_relist() -> None:
    """kube-rs bug (bitdriftlabs/pulse#52): StreamBackoff reset on every Ok item, and each failing
    relist starts with Ok(Init), so list failures were retried every ~1 s forever. Init and
    InitApply must not reset the backoff."""
    items: list[Any] = []
    for _ in range(4):
        items += [INIT, InitApply(cm("a")), err()]
    out = await timed(backoff(Source(items).gen(), ExponentialBackoff(1.0, 60.0, jitter=False)))
    error_times = [t for t, item in out if isinstance(item, Exception)]
    # Delays 1, 2, 4 accumulate between the errors: never reset to 1.
    assert error_times == [0.0, 1.0, 3.0, 7.0]


async def test_backoff_reset_by_healthy_events() -> None:
    for healthy in (INIT_DONE, Apply(cm("a")), Delete(cm("a")), cm("a")):
        out = await timed(
            backoff(
                Source([err(), err(), healthy, err(), INIT]).gen(),
                ExponentialBackoff(1.0, 60.0, jitter=False),
            )
        )
        # err @0, sleep 1, err @1, sleep 2, healthy @3 (reset), err @3, sleep 1, Init @4
        assert [t for t, _ in out] == [0.0, 1.0, 3.0, 3.0, 4.0], healthy


async def test_backoff_gives_up_when_policy_says_so() -> None:
    src = Source([err(), err(), err()])
    out = await collect(backoff(src.gen(), ExponentialBackoff(1.0, jitter=False, max_times=1)))
    assert len(out) == 2
    assert src.closed


async def test_separate_streams_back_off_independently() -> None:
    """One failing watch does not pause another (kube-rs shares one backoff across all triggers)."""
    failing = backoff(Source([err()] * 5).gen(), ExponentialBackoff(10.0, 60.0, jitter=False))
    healthy = backoff(
        Source([Apply(cm(str(i))) for i in range(5)]).gen(), ExponentialBackoff(10.0, jitter=False)
    )
    healthy_done_at: list[float] = []

    async def drain_healthy() -> None:
        await collect(healthy)
        healthy_done_at.append(anyio.current_time())

    start = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(collect, failing)
        tg.start_soon(drain_healthy)
    assert healthy_done_at[0] - start == 0.0


@pytest.mark.parametrize("order", ["reflect, then backoff", "backoff, then reflect"])
async def test_reflect_and_backoff_adjacent_in_either_order(order: str) -> None:
    """Adjacent reflect and backoff run as one stream object: the store still sees every event in
    order, errors still delay the next read, and closing still reaches the source."""
    reader, writer = store()
    e1, e2 = err(), err()
    src = Source([INIT, InitApply(cm("a")), INIT_DONE, e1, e2, Apply(cm("b")), Delete(cm("a")), e1, INIT])
    policy = ExponentialBackoff(1.0, 60.0, jitter=False)
    if order == "reflect, then backoff":
        chain = WatchStream(src.gen()).reflect(writer).backoff(policy)
    else:
        chain = WatchStream(src.gen()).backoff(policy).reflect(writer)
    seen: list[list[str]] = []
    out: list[tuple[float, Any]] = []
    start = anyio.current_time()
    async with chain:
        async for item in chain:
            out.append((round(anyio.current_time() - start, 6), item))
            seen.append(sorted(o["metadata"]["name"] for o in reader.state()))
            if len(out) == 8:
                break
    # err @0 (sleep 1), err @1 (sleep 2), Apply b @3 resets, Delete a @3, err @3 (sleep 1)
    assert [t for t, _ in out] == [0.0, 0.0, 0.0, 0.0, 1.0, 3.0, 3.0, 3.0]
    assert [item for _, item in out][3:5] == [e1, e2]
    assert seen == [[], [], ["a"], ["a"], ["a"], ["a", "b"], ["b"], ["b"]]
    assert src.closed


async def test_two_reflects_on_one_backoff_each_see_every_event() -> None:
    """A backoff stage fuses with the first reflect put on it; a second reflect is a stage of its
    own, so both writers see every event."""
    (first, w1), (second, w2) = store(), store()
    src = Source([INIT, InitApply(cm("a")), INIT_DONE, err(), Apply(cm("b")), Delete(cm("a"))])
    chain = WatchStream(src.gen()).backoff(ExponentialBackoff(1.0, jitter=False)).reflect(w1).reflect(w2)
    async with chain:
        items = [item async for item in chain]
    assert len(items) == 6
    assert [o["metadata"]["name"] for o in first.state()] == [o["metadata"]["name"] for o in second.state()]
    assert [o["metadata"]["name"] for o in second.state()] == ["b"]


# -- predicate filter ----------------------------------------------------------------------------


async def test_predicate_filter_drops_unchanged_generation() -> None:
    objs = [
        cm("a", "1", generation=1),
        cm("a", "2", generation=1),
        cm("a", "3", generation=2),
        cm("b", "4", generation=1),
    ]
    out = await collect(predicate_filter(Source(objs).gen(), predicates.generation))
    assert [o["metadata"]["resourceVersion"] for o in out] == ["1", "3", "4"]


async def test_predicate_filter_passes_deletes_kube_rs_1768() -> None:
    """kube-rs #1768: a delete carries an unchanged fingerprint, so touched_objects().predicate_filter()
    swallowed it. Deletes always pass, and the object is forgotten."""
    a = cm("a", "1", generation=1)
    events = [Apply(a), Delete(cm("a", "2", generation=1)), Apply(cm("a", "3", generation=1))]
    out = await collect(predicate_filter(touched_objects(Source(events).gen()), predicates.generation))
    assert [type(o).__name__ for o in out] == ["dict", "DeletedObject", "dict"]
    # Event-stream mode too.
    out = await collect(predicate_filter(Source(events).gen(), predicates.generation))
    assert [type(o) for o in out] == [Apply, Delete, Apply]


async def test_predicate_filter_recreated_object_passes_kube_rs_1830() -> None:
    """kube-rs #1830: the cache key ignored the uid, so a re-created object with the same
    generation was filtered out."""
    objs = [cm("a", "1", uid="u1", generation=1), cm("a", "5", uid="u2", generation=1)]
    out = await collect(predicate_filter(Source(objs).gen(), predicates.generation))
    assert len(out) == 2


async def test_predicate_filter_ttl_expires_entries_kube_rs_1837() -> None:
    """kube-rs #1837: the cache grew without bound. Entries expire after the TTL."""

    async def slow() -> AsyncIterator[Any]:
        yield cm("a", "1", generation=1)
        yield cm("a", "2", generation=1)  # filtered
        await anyio.sleep(11)
        yield cm("a", "3", generation=1)  # not seen for > ttl: passes again
        await anyio.sleep(11)
        yield cm("b", "4", generation=1)  # triggers a sweep of "a"

    out = await collect(predicate_filter(slow(), predicates.generation, ttl=10))
    assert [o["metadata"]["resourceVersion"] for o in out] == ["1", "3", "4"]


async def test_predicate_filter_passes_errors_none_and_brackets() -> None:
    e = err()
    items = [INIT, InitApply(cm("x")), INIT_DONE, e, cm("y"), cm("y")]
    out = await collect(predicate_filter(Source(items).gen(), predicates.generation))
    assert out == items


async def test_a_raising_predicate_is_reported_in_place_of_the_object_and_the_stream_goes_on() -> None:
    """A predicate bug (reading a label an object lacks) ended the filter, and with it the watch
    and the store behind it: the controller stalled for good after one QueueError."""

    def team(obj: dict[str, Any]) -> str:
        return str(obj["metadata"]["labels"]["team"])

    items = [
        INIT,
        InitApply(cm("bare")),  # a list passes whole, even when the predicate raises on it
        INIT_DONE,
        Apply(cm("a", "2", labels={"team": "x"})),
        Apply(cm("bare", "3")),
        Apply(cm("a", "4", labels={"team": "x"})),  # unchanged: dropped
        Apply(cm("a", "5", labels={"team": "y"})),
    ]
    out = await collect(predicate_filter(Source(items).gen(), team))
    assert out[:4] == items[:4]
    failed = out[4]
    assert isinstance(failed, predicates.PredicateFailed)
    assert isinstance(failed.error, KeyError)
    assert "ns/bare" in str(failed)
    assert out[5:] == [items[6]]


async def test_a_relist_passes_a_predicate_filter_whole_so_a_reflector_after_it_keeps_every_object() -> None:
    """Filtering the unchanged objects of a relist out of an event stream emptied the store of a
    reflector after the filter at its swap. The list passes whole; its fingerprints are remembered."""
    a, b = cm("a", "1", labels={"x": "1"}), cm("b", "2", labels={"x": "1"})
    events = [
        INIT,
        InitApply(a),
        InitApply(b),
        INIT_DONE,
        Apply(cm("a", "3", labels={"x": "1"})),  # labels unchanged since the list: dropped
        INIT,  # a relist (after a 410): nothing changed
        InitApply(cm("a", "3", labels={"x": "1"})),
        InitApply(b),
        INIT_DONE,
        Apply(cm("b", "4", labels={"x": "1"})),  # unchanged since the relist: dropped
        Apply(cm("b", "5", labels={"x": "2"})),  # changed: passes
    ]
    reader, writer = store()
    filtered = predicate_filter(Source(events).gen(), predicates.labels)
    out = await collect(WatchStream(filtered).reflect(writer))
    assert [type(i).__name__ for i in out] == [
        "Init",
        "InitApply",
        "InitApply",
        "InitDone",
        "Init",
        "InitApply",
        "InitApply",
        "InitDone",
        "Apply",
    ]
    assert out[-1].object["metadata"]["resourceVersion"] == "5"
    assert sorted(reader.keys()) == ["ns/a", "ns/b"]


async def test_fluent_chain_in_kube_rs_order() -> None:
    reader, writer = store()
    events = [
        INIT,
        InitApply(cm("a", generation=1, managedFields=[{}])),
        INIT_DONE,
        Apply(cm("a", "2", generation=1)),
        Apply(cm("a", "3", generation=2)),
        WatchFailed(KubeError("x")),
    ]
    chain = (
        WatchStream(Source(events).gen())
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates.generation)
    )
    out = await collect(chain)
    assert [o["metadata"]["resourceVersion"] if isinstance(o, dict) else "err" for o in out] == [
        "1",
        "3",
        "err",
    ]
    assert reader.get_by_key("a", "ns") is not None
    assert "managedFields" not in reader.state()[0]["metadata"]
    assert isinstance(out[0], dict)
    assert not isinstance(out[0], Init | InitDone)
