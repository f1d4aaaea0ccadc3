"""The runner's guarantees (kube-rs runner.rs) on virtual time: exclusivity, concurrency, readiness,
backpressure, graceful and forceful stops, no lost requests (#1322)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.controller.channel import ResultSender, ResultStream, result_channel
from kube_runtime.controller.errors import RunnerError
from kube_runtime.controller.runner import Runner, RunnerHooks, runner
from kube_runtime.controller.scheduler import ScheduleRequest
from kube_runtime.testing.clock import VirtualClockLoop, virtual_clock_backend

# Marked here (not only by tests/conftest.py) so anyio sees the fixture and does not also
# parametrize every test over trio.
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


class Recorder:
    """A run function that records starts, overlaps and the highest concurrency seen."""

    def __init__(self, duration: float = 1.0) -> None:
        self.duration = duration
        self.starts: list[tuple[str, float]] = []
        self.running: set[str] = set()
        self.max_running = 0
        self.overlaps: list[str] = []
        self.cancelled: list[str] = []

    async def __call__(self, message: str) -> str:
        if message in self.running:
            self.overlaps.append(message)
        self.running.add(message)
        self.max_running = max(self.max_running, len(self.running))
        self.starts.append((message, anyio.current_time()))
        try:
            await anyio.sleep(self.duration)
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(message)
            raise
        finally:
            self.running.discard(message)
        return message

    @property
    def order(self) -> str:
        return "".join(m for m, _ in self.starts)


async def timed(
    items: list[tuple[float, str]], *, then_wait: float = 0.0, sent: list[tuple[float, str]] | None = None
) -> AsyncIterator[ScheduleRequest[str]]:
    """Requests ``message`` at virtual time ``at`` (to run at once); optionally keep the input open.
    ``sent`` records the actual request times."""
    for at, message in items:
        await anyio.sleep(max(0.0, at - anyio.current_time()))
        if sent is not None:
            sent.append((anyio.current_time(), message))
        yield ScheduleRequest(message, anyio.current_time())
    await anyio.sleep(then_wait)


async def drain(outputs: AsyncIterator[Any]) -> list[Any]:
    return [out async for out in outputs]


async def test_one_running_and_one_pending_per_object() -> None:
    """``ABABAAAAA`` runs as ``ABAB``: repeats while A runs collapse into one pending run."""
    rec = Recorder(duration=1.0)
    items = [(i * 0.01, m) for i, m in enumerate("ABABAAAAA")]
    async with runner(timed(items, then_wait=10), rec) as outputs:
        results = await drain(outputs)
    assert rec.order == "ABAB"
    assert results == list("ABAB")
    assert rec.overlaps == []
    assert [t for _, t in rec.starts] == [0.0, 0.01, 1.0, 1.01]


async def test_concurrency_limit() -> None:
    rec = Recorder(duration=1.0)
    items = [(0.0, f"m{i}") for i in range(10)]
    async with runner(timed(items, then_wait=100), rec, concurrency=3) as outputs:
        results = await drain(outputs)
    assert sorted(results) == sorted(f"m{i}" for i in range(10))
    assert rec.max_running == 3
    assert max(t for _, t in rec.starts) == 3.0  # 10 runs of 1 s, three at a time


async def test_unbounded_concurrency_starts_everything_at_once() -> None:
    rec = Recorder(duration=1.0)
    items = [(0.0, f"m{i}") for i in range(50)]
    async with runner(timed(items, then_wait=5), rec, concurrency=0) as outputs:
        await drain(outputs)
    assert rec.max_running == 50


async def test_nothing_starts_before_ready() -> None:
    rec = Recorder()
    ready = anyio.Event()

    async def make_ready() -> None:
        await anyio.sleep(5)
        ready.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(make_ready)
        async with runner(timed([(0.0, "a"), (1.0, "b")], then_wait=20), rec, ready=ready.wait) as outputs:
            await drain(outputs)
    assert rec.starts == [("a", 5.0), ("b", 5.0)]


async def test_readiness_failure_is_reported_and_stops_the_runner() -> None:
    rec = Recorder()

    async def never_ready() -> None:
        await anyio.sleep(2)
        raise LookupError("writer dropped")

    async with runner(timed([(0.0, "a")], then_wait=1000), rec, ready=never_ready) as outputs:
        results = await drain(outputs)
    assert len(results) == 1
    assert isinstance(results[0], RunnerError)
    assert isinstance(results[0].cause, LookupError)
    assert rec.starts == []
    assert anyio.current_time() == 2.0


@pytest.mark.parametrize("concurrency", [0, 2])
async def test_unconsumed_outputs_stop_new_starts(concurrency: int) -> None:
    """Nothing new starts while a finished run cannot hand over its output (an unbounded pool, and
    a bounded one whose idle worker could otherwise take the next message)."""
    rec = Recorder(duration=1.0)
    items = [(0.0, "a"), (10.0, "b"), (20.0, "c")]
    async with runner(timed(items, then_wait=1000), rec, concurrency=concurrency) as outputs:
        await anyio.sleep(100)
        assert rec.order == "a"  # a finished at 1 s and is waiting to be consumed
        assert await outputs.__anext__() == "a"
        assert await outputs.__anext__() in {"b", "c"}
        await anyio.sleep(1)
    assert rec.order in {"abc", "acb"}


@pytest.mark.parametrize("concurrency", [0, 2])
async def test_graceful_close_finishes_running_and_drops_the_rest(concurrency: int) -> None:
    rec = Recorder(duration=5.0)
    loop: Runner[str, str] = Runner(lambda m, _due: rec(m), concurrency=concurrency)
    send, receive = anyio.create_memory_object_stream[Any](10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(loop.run, send)
        loop.schedule("a")
        loop.schedule("b", 100.0)
        await anyio.sleep(1)
        loop.schedule("a")  # pending behind the running one
        loop.close()
        assert not loop.schedule("c")
    send.close()
    assert [x async for x in receive] == ["a"]
    assert rec.order == "a"
    assert rec.cancelled == []
    assert anyio.current_time() == 5.0


@pytest.mark.parametrize("concurrency", [0, 1])
async def test_cancelling_run_is_the_forceful_stop(concurrency: int) -> None:
    rec = Recorder(duration=5.0)
    loop: Runner[str, str] = Runner(lambda m, _due: rec(m), concurrency=concurrency)
    send, _receive = anyio.create_memory_object_stream[Any](10)
    with anyio.move_on_after(1):
        loop.schedule("a")
        await loop.run(send)
    assert rec.cancelled == ["a"]
    assert anyio.current_time() == 1.0


@pytest.mark.parametrize("concurrency", [0, 1])
async def test_a_failing_run_function_propagates(concurrency: int) -> None:
    async def boom(message: str) -> str:
        raise RuntimeError(message)

    with pytest.raises(BaseExceptionGroup) as info:
        async with runner(timed([(0.0, "a")], then_wait=10), boom, concurrency=concurrency) as outputs:
            await drain(outputs)
    assert info.group_contains(RuntimeError)


async def test_worker_pool_keeps_exclusivity_and_the_limit() -> None:
    """With a limit, a fixed pool of workers runs the messages: ``ABABAAAAA`` still runs as ``ABAB``
    next to other objects, never more than ``concurrency`` at once, and no task per run."""
    rec = Recorder(duration=1.0)
    items = [(i * 0.01, m) for i, m in enumerate("ABABAAAAA")] + [(0.2, f"m{i}") for i in range(6)]
    tasks: set[asyncio.Task[Any]] = set()

    async def run(message: str) -> str:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        return await rec(message)

    async with runner(timed(items, then_wait=100), run, concurrency=2) as outputs:
        results = await drain(outputs)
    assert rec.overlaps == []
    assert rec.max_running == 2
    assert "".join(m for m in rec.order if m in "AB") == "ABAB"
    assert sorted(results) == sorted(["A", "B", "A", "B", *(f"m{i}" for i in range(6))])
    assert len(tasks) == 2  # ten runs on the two workers


async def test_unbounded_concurrency_uses_the_same_workers() -> None:
    """Unbounded, the pool grows to the runs at once (here 3) and a worker that finishes a run
    takes the next due message itself (here the same object, requested again while it ran): no
    task per run."""
    rec = Recorder(duration=1.0)
    items = [(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.5, "a"), (0.5, "b"), (0.5, "c")]
    tasks: set[asyncio.Task[Any]] = set()

    async def run(message: str) -> str:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        return await rec(message)

    async with runner(timed(items, then_wait=100), run, concurrency=0) as outputs:
        results = await drain(outputs)
    assert rec.max_running == 3
    assert sorted(results) == ["a", "a", "b", "b", "c", "c"]
    assert len(tasks) == 3  # six runs on three workers


_seen_by_run: ContextVar[str | None] = ContextVar("seen_by_run", default=None)


@pytest.mark.parametrize("concurrency", [0, 1])
async def test_runs_never_see_each_others_context(concurrency: int) -> None:
    """Each run gets a fresh context even when one worker runs every message: a context variable
    set by a run is gone for the next run (and for the caller), before and after it suspends."""
    seen: list[tuple[str, str | None, str | None]] = []

    async def run(message: str) -> str:
        before = _seen_by_run.get()
        _seen_by_run.set(message)
        await anyio.sleep(1)
        seen.append((message, before, _seen_by_run.get()))
        return message

    items = [(0.0, "a"), (0.0, "b"), (0.5, "c"), (5.0, "a")]
    async with runner(timed(items, then_wait=20), run, concurrency=concurrency) as outputs:
        await drain(outputs)
    assert sorted(seen, key=str) == [("a", None, "a"), ("a", None, "a"), ("b", None, "b"), ("c", None, "c")]
    assert _seen_by_run.get() is None


def test_negative_concurrency_is_rejected() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Runner(lambda m, d: anyio.sleep(1), concurrency=-1)


# ---------------------------------------------------------------------------------------------
# Property: no request is ever lost (kube-rs #1322: requests disappeared with a concurrency limit),
# no object runs twice at once, and the limit holds.

_plans = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from("abcde")),  # (request time in 0.1 s, object)
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_plans, st.integers(0, 3), st.sampled_from([0.05, 0.3, 1.0]))
def test_every_request_is_followed_by_a_run(
    plan: list[tuple[int, str]], concurrency: int, duration: float
) -> None:
    requests = sorted((t / 10, m) for t, m in plan)
    rec = Recorder(duration=duration)
    sent: list[tuple[float, str]] = []

    async def main() -> None:
        source = timed(requests, then_wait=100, sent=sent)
        async with runner(source, rec, concurrency=concurrency) as outputs:
            await drain(outputs)

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": VirtualClockLoop})
    assert rec.overlaps == []
    if concurrency:
        assert rec.max_running <= concurrency
    assert len(sent) == len(requests)
    for at, message in sent:
        assert any(m == message and t >= at for m, t in rec.starts), (at, message, rec.starts)
    # At most one run per request, and never more than one queued behind a running one.
    assert len(rec.starts) <= len(requests)


async def test_a_delayed_request_made_while_every_worker_is_busy_runs_on_time() -> None:
    """The busy pool does not wake the loop for a new request; the worker that goes idle first
    must make the loop time it (otherwise it would wait for the next unrelated wake-up)."""
    rec = Recorder(duration=2.0)
    loop: Runner[str, str] = Runner(lambda m, d: rec(m), concurrency=1)
    send, receive = anyio.create_memory_object_stream[Any](10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(loop.run, send)
        loop.schedule("busy")
        await anyio.sleep(1)  # "busy" runs until t=2, so the one worker is taken
        assert loop.schedule("later", anyio.current_time() + 4)  # due at t=5
        await anyio.sleep(10)
        loop.close()
    assert rec.starts == [("busy", 0.0), ("later", 5.0)]
    receive.close()


_delayed_plans = st.lists(
    # (request time in 0.1 s, object, delay in 0.1 s)
    st.tuples(st.integers(0, 40), st.sampled_from("abcde"), st.sampled_from([0, 3, 15])),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_delayed_plans, st.integers(0, 3), st.sampled_from([0.05, 0.3, 1.0]))
def test_every_delayed_request_is_followed_by_a_run(
    plan: list[tuple[int, str, int]], concurrency: int, duration: float
) -> None:
    """Requests for the future, some made while the pool is busy: each is followed by a run no
    later than it asked for plus the longest wait for a worker (the limit holds, no overlap)."""
    requests = sorted((t / 10, m, d / 10) for t, m, d in plan)
    rec = Recorder(duration=duration)
    sent: list[tuple[float, str, float]] = []

    async def main() -> None:
        loop: Runner[str, str] = Runner(lambda m, d: rec(m), concurrency=concurrency)
        send, receive = anyio.create_memory_object_stream[Any](1000)
        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(loop.run, send)
            for at, message, delay in requests:
                await anyio.sleep(max(0.0, at - anyio.current_time()))
                sent.append((anyio.current_time(), message, delay))
                loop.schedule(message, anyio.current_time() + delay)
            await anyio.sleep(100)
            loop.close()

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": VirtualClockLoop})
    assert rec.overlaps == []
    if concurrency:
        assert rec.max_running <= concurrency
    slack = duration * len(requests) + 1e-6  # worst case: waiting behind every other run
    assert len(sent) == len(requests)
    for at, message, delay in sent:
        assert any(m == message and at <= t <= at + delay + slack for m, t in rec.starts), (
            at,
            message,
            delay,
            rec.starts,
        )


class PassRecorder(RunnerHooks):
    """Records when the runner samples its depth: once per pass of its loop and once per start."""

    def __init__(self) -> None:
        self.depth_at: list[float] = []

    def on_depth(self, depths: Mapping[int, int]) -> None:
        self.depth_at.append(anyio.current_time())


async def test_a_later_requeue_does_not_wake_the_sleeping_loop() -> None:
    """A request due after the loop's own wake-up leaves it asleep; an earlier one wakes it, and
    every request runs when it asked to."""
    rec = Recorder(duration=0.0)
    hooks = PassRecorder()
    loop: Runner[str, str] = Runner(lambda m, d: rec(m), concurrency=2, hooks=hooks)
    send, receive = anyio.create_memory_object_stream[Any](10)
    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(loop.run, send)
        await anyio.sleep(1)
        loop.schedule("a", 100.0)  # the loop now sleeps until t=100
        await anyio.sleep(1)
        loop.schedule("b", 200.0)  # later than t=100: nothing to do before then
        await anyio.sleep(1)
        loop.schedule("c", 50.0)  # earlier: the loop must wake to time it
        await anyio.sleep(300)
        loop.close()
    assert rec.starts == [("c", 50.0), ("a", 100.0), ("b", 200.0)]
    assert 2.0 not in hooks.depth_at
    assert 1.0 in hooks.depth_at
    assert 3.0 in hooks.depth_at


async def test_an_output_taken_late_with_nothing_due_does_not_wake_the_loop() -> None:
    """Two runs finish at once on an unbuffered output: the second waits for the consumer. Once
    it is taken, with nothing else due, the loop stays asleep (its idle workers have nothing to
    take)."""
    rec = Recorder(duration=0.0)
    hooks = PassRecorder()
    loop: Runner[str, str] = Runner(lambda m, d: rec(m), concurrency=4, hooks=hooks)
    send, receive = result_channel(0)
    taken: list[tuple[str, float]] = []

    async def consume() -> None:
        await anyio.sleep(5)
        async for out in receive:
            taken.append((str(out), anyio.current_time()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(loop.run, send)
        tg.start_soon(consume)
        await anyio.sleep(1)
        loop.schedule("a")
        loop.schedule("b")
        await anyio.sleep(10)
        loop.close()
        await send.aclose()
    assert sorted(taken) == [("a", 5.0), ("b", 5.0)]
    assert [t for t in hooks.depth_at if 5.0 <= t < 11.0] == []  # 11: close() ends the loop


class QueueRecorder(RunnerHooks):
    """The depth and the adds the runner reports, as the metrics see them."""

    def __init__(self) -> None:
        self.depth = 0
        self.added = 0

    def on_depth(self, depths: Mapping[int, int]) -> None:
        self.depth = sum(depths.values())

    def on_added(self, count: int) -> None:
        self.added += count


async def test_requests_waiting_behind_busy_workers_are_counted_while_they_wait() -> None:
    """Every worker stuck: the requests made meanwhile show in the depth and the adds at once (the
    loop sleeps on, and they were counted only once a worker finished)."""
    release = anyio.Event()

    async def run(message: str, _due: Any) -> str:
        if message == "stuck":
            await release.wait()
        return message

    hooks = QueueRecorder()
    loop: Runner[str, str] = Runner(run, concurrency=1, hooks=hooks)
    send, receive = anyio.create_memory_object_stream[Any](10)
    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(loop.run, send)
        loop.schedule("stuck")
        await anyio.sleep(1)
        assert (hooks.depth, hooks.added) == (0, 1)
        for name in ("a", "b", "c"):
            loop.schedule(name)
        loop.schedule("later", anyio.current_time() + 60)  # not due: not waiting yet
        assert (hooks.depth, hooks.added) == (3, 4)
        await anyio.sleep(10)
        assert (hooks.depth, hooks.added) == (3, 4)
        release.set()
        await anyio.sleep(1)
        assert hooks.depth == 0
        loop.close()


class StepCountingLoop(VirtualClockLoop):
    """Counts the steps scheduled for each task (a wake-up or a bare yield), by task name."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: Counter[str] = Counter()

    def call_soon(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.Handle:
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            self.steps[task.get_name()] += 1
        return super().call_soon(callback, *args, context=context)


@pytest.mark.parametrize("burst", [1, 2, 3, 5])
def test_a_burst_of_requests_steps_one_idle_worker_per_request_once(burst: int) -> None:
    """Requests made in one step (two watch events in one read) wake one idle worker each, and
    each woken worker runs its request and goes idle in one step: no worker is woken for a request
    another already takes, and none yields first to let a woken one take it."""
    loop = StepCountingLoop()

    async def run_msg(message: str, _due: object) -> str:
        return message

    async def main() -> tuple[list[str | RunnerError], int]:
        runner: Runner[str, str] = Runner(run_msg, concurrency=8)
        send: ResultSender[str | RunnerError]
        receive: ResultStream[str | RunnerError]
        send, receive = result_channel(8)
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run, send)
            await anyio.sleep(1)  # every worker idle
            loop.steps.clear()
            for i in range(burst):
                runner.schedule(f"m{i}")
            got = [await receive.receive() for _ in range(burst)]
            await anyio.sleep(1)
            worker_steps = loop.steps["kube_runtime.controller.runner.Runner._worker"]
            runner.close()
        return got, worker_steps

    try:
        got, worker_steps = loop.run_until_complete(main())
    finally:
        loop.close()
    assert sorted(map(str, got)) == [f"m{i}" for i in range(burst)]
    assert worker_steps == burst


_bursts = st.lists(
    # (request time in 0.1 s, the objects requested in one step at that time)
    st.tuples(st.integers(0, 30), st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8)),
    min_size=1,
    max_size=10,
)


@settings(max_examples=80, deadline=None)
@given(
    _bursts,
    st.integers(0, 4),
    st.sampled_from([0.0, 0.05, 1.0]),
    st.integers(0, 3),
    st.sampled_from([0.0, 0.2]),
)
def test_every_request_of_a_burst_is_followed_by_a_run(
    bursts: list[tuple[int, list[str]]],
    concurrency: int,
    duration: float,
    buffer: int,
    consume_delay: float,
) -> None:
    """Requests made in one step (the events of one read), with a small output buffer and a slow
    consumer holding starts back: each is followed by a run, the limit holds, no object runs twice
    at once; and a request made once everything has settled still runs (no worker is left counted
    as on its way, which would keep the next request from waking one)."""
    plan = sorted((t / 10, names) for t, names in bursts)
    rec = Recorder(duration=duration)
    sent: list[tuple[float, str]] = []

    async def main() -> None:
        loop: Runner[str, str] = Runner(lambda m, d: rec(m), concurrency=concurrency)
        send: ResultSender[str | RunnerError]
        receive: ResultStream[str | RunnerError]
        send, receive = result_channel(buffer)

        async def consume() -> None:
            async for _ in receive:
                if consume_delay:
                    await anyio.sleep(consume_delay)

        async with anyio.create_task_group() as tg:
            tg.start_soon(loop.run, send)
            tg.start_soon(consume)
            for at, names in [*plan, (1000.0, ["late"])]:
                await anyio.sleep(max(0.0, at - anyio.current_time()))
                for name in names:  # no await in between: one step
                    loop.schedule(name)
                    sent.append((anyio.current_time(), name))
            await anyio.sleep(1000)
            tg.cancel_scope.cancel()

    anyio.run(main, backend="asyncio", backend_options={"loop_factory": VirtualClockLoop})
    assert rec.overlaps == []
    if concurrency:
        assert rec.max_running <= concurrency
    for at, message in sent:
        assert any(m == message and t >= at for m, t in rec.starts), (at, message, rec.starts)
    assert ("late", 1000.0) in rec.starts
