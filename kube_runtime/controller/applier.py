"""The applier: runs a frozen spec (triggers -> scheduler -> runner -> result stream).

kube-rs's ``applier``. A :class:`ControllerRun` owns one run of an :class:`ApplierSpec` (the
:class:`~kube_runtime.controller.controller.Controller` builder freezes its settings into one per
run; the spec is also usable on its own)::

    spec = ApplierSpec("configmaps", reader, (Trigger("main", lambda: trigger_self(objects, resource)),))
    async with applier(spec, reconcile, error_policy, ctx) as results:
        async for item in results:
            ...  # Reconciled(ref, action) or a ControllerError value

Guarantees (the controller's module docs state them with kube-rs's differences):

* Each trigger stream is opened when the run starts and driven by a task of the run: its
  requests go straight into the runner's scheduler, its error items (and a mapper's exceptions)
  become ``QueueError`` results; a trigger that raises stops with a warning and a ``QueueError``.
  The runner starts nothing before the store is ready and runs each request as one
  :mod:`~kube_runtime.controller.reconcile` attempt.
* The result stream holds at most as many results the consumer has not taken yet as the
  concurrency limit (:data:`DEFAULT_CONCURRENCY` when unbounded); while it is full, the runner
  starts nothing new. So nothing runs far ahead of the consumer: with a limit, an unconsumed run
  stops starting work after at most twice the limit of reconciles. Nothing but shutdown ends it.
* Shutdown: :meth:`ControllerRun.shutdown` (graceful: start nothing new, drop what is queued, let
  running reconciles finish within ``graceful_shutdown_timeout``, then end) and
  :meth:`ControllerRun.force_shutdown` (cancel running reconciles now). Leaving the ``async with``
  block early is a forceful stop.
* Tasks are owned as :mod:`kube_runtime._tasks` says: an exception raised in the ``async with``
  body comes out as itself; a failure of the run (a bug, a second run of an exclusive spec) as
  itself.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Generator, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Generic, Protocol, TypeVar

import anyio
from anyio.abc import TaskGroup
from prometheus_client import CollectorRegistry

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.client.json import KubeObject
from kube_runtime.controller.action import ReconcileRequest
from kube_runtime.controller.backoff import ReconcileBackoff
from kube_runtime.controller.channel import ResultSender, ResultStream, result_channel
from kube_runtime.controller.errors import ControllerError, QueueError
from kube_runtime.controller.leadership import LeaderElection
from kube_runtime.controller.metrics import QueueMetrics
from kube_runtime.controller.reconcile import ErrorPolicy, ReconcileAttempts, Reconciler
from kube_runtime.controller.result import ControllerResult
from kube_runtime.controller.runner import Runner, loop_clock
from kube_runtime.controller.scheduler import DEFAULT_MAX_WAIT
from kube_runtime.controller.shutdown import (
    DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
    ShutdownDeadline,
    check_graceful_shutdown_timeout,
)
from kube_runtime.controller.signals import shutdown_on_signals
from kube_runtime.controller.triggers import RequestItem
from kube_runtime.store.store import Store

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ApplierSpec",
    "ControllerConfig",
    "ControllerRun",
    "ShutdownSignal",
    "Trigger",
    "applier",
]

_log = logging.getLogger("kube_runtime.controller")

C = TypeVar("C")

#: See :mod:`~kube_runtime.controller.controller` for why 16.
DEFAULT_CONCURRENCY: Final = 16


class _Waitable(Protocol):
    def wait(self) -> Awaitable[Any]: ...


#: An awaitable (awaited once) or anything with an async ``wait()`` (an ``anyio.Event``).
ShutdownSignal = Awaitable[Any] | _Waitable


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """``concurrency``: most reconciles at once (0 = unbounded). ``debounce``: trailing delay in
    seconds before a triggered reconcile starts (pitfall: an object changing more often than that
    is never reconciled). ``graceful_shutdown_timeout``: seconds a graceful shutdown waits for
    running reconciles before cancelling them (``None``: forever; see
    :mod:`~kube_runtime.controller.shutdown`). ``priority_queue``: live changes run before what a
    (re)list produced (controller-runtime's ``UsePriorityQueue``, on by default as there);
    ``priority_max_wait``: seconds after which a waiting due reconcile gets every other start
    whatever its priority (the starvation bound of :mod:`~kube_runtime.controller.scheduler`).
    ``reconcile_timeout``: seconds after which a reconcile is cancelled and reported as
    ``ReconcileTimedOut`` (``None``, the default as in controller-runtime: no limit; see
    :mod:`~kube_runtime.controller.reconcile`)."""

    concurrency: int = DEFAULT_CONCURRENCY
    debounce: float = 0.0
    graceful_shutdown_timeout: float | None = DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
    priority_queue: bool = True
    priority_max_wait: float = DEFAULT_MAX_WAIT
    reconcile_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 0:
            raise ValueError(f"concurrency must be >= 0 (0 = unbounded), got {self.concurrency}")
        if self.debounce < 0:
            raise ValueError(f"debounce must be >= 0, got {self.debounce}")
        if not self.priority_max_wait > 0:
            raise ValueError(f"priority_max_wait must be > 0, got {self.priority_max_wait}")
        if self.reconcile_timeout is not None and not self.reconcile_timeout > 0:
            raise ValueError(f"reconcile_timeout must be > 0 or None, got {self.reconcile_timeout}")
        check_graceful_shutdown_timeout(self.graceful_shutdown_timeout)


@dataclass(frozen=True, slots=True)
class Trigger:
    """One source of reconcile requests: ``open()`` builds its stream (see
    :mod:`~kube_runtime.controller.triggers`) when a run starts, once per run."""

    name: str
    open: Callable[[], AsyncIterable[RequestItem]]


@dataclass(frozen=True, slots=True)
class ApplierSpec:
    """Everything one run reads. ``store``: the main store (readiness gate, the objects reconciled).
    ``exclusive``: runs of specs with the same key never overlap (a controller's store has one
    writer); ``None``: no such rule. ``decode``: turns the stored dict into what the reconciler
    gets. ``registry``: where the work-queue metrics go (``None``: prometheus_client's global).
    ``leader_election``: reconcile only while leading, with or without warm-up (see
    :mod:`~kube_runtime.controller.leadership`)."""

    name: str
    store: Store
    triggers: tuple[Trigger, ...]
    config: ControllerConfig = ControllerConfig()
    graceful_shutdown_on: tuple[ShutdownSignal, ...] = ()
    shutdown_on_signal: bool = False
    error_backoff: ReconcileBackoff = field(default_factory=ReconcileBackoff)
    decode: Callable[[KubeObject], Any] | None = None
    registry: CollectorRegistry | None = None
    exclusive: Hashable | None = None
    leader_election: LeaderElection | None = None


def applier(
    spec: ApplierSpec, reconcile: Reconciler[C], error_policy: ErrorPolicy[C] | None, context: C
) -> ControllerRun[C]:
    """One run of ``spec`` (kube-rs ``applier``): ``async with applier(...) as results``, or
    ``await applier(...)`` to consume the results until shutdown."""
    return ControllerRun(spec, reconcile, error_policy, context)


#: The exclusive keys of the runs in progress.
_running: set[Hashable] = set()


class ControllerRun(Generic[C]):
    """One run: an async context manager owning its tasks (trigger drivers, reconciles), whose
    value is the result stream.

    Leaving the block stops the run: if the stream has not ended yet, that is a forceful stop
    (running reconciles are cancelled). Iterating it without ``async with`` is refused: the run's
    tasks need an owner, and an iterator that a ``break`` abandons would leave them running
    outside any task group (the reason anyio forbids task groups in async generators). Use
    ``await run`` to consume everything until shutdown instead.
    """

    def __init__(
        self, spec: ApplierSpec, reconcile: Reconciler[C], error_policy: ErrorPolicy[C] | None, context: C
    ) -> None:
        self._spec = spec
        self._reconcile = reconcile
        self._error_policy = error_policy
        self._context = context
        self._tasks: BackgroundTasks | None = None
        self._entered = False
        self._force = anyio.CancelScope()
        self._runner: Runner[ReconcileRequest, ControllerResult] | None = None
        self._requested_graceful = False
        self._deadline: ShutdownDeadline | None = None
        self._receive: ResultStream[ControllerResult] | None = None
        self._forced = False
        #: Why the run cancelled its running reconciles (their spans' status names it).
        self._cancelled_by: str | None = None

    # -- public control ------------------------------------------------------------------------------

    @property
    def forced_shutdown(self) -> bool:
        """Whether a forceful shutdown cut running reconciles short: :meth:`force_shutdown` (a
        second signal), or the graceful shutdown's deadline passing with reconciles still running.
        A run left by its ``async with`` block before the stream ended does not count."""
        return self._forced

    def shutdown(self) -> None:
        """Graceful shutdown: start nothing new, let running reconciles finish (cancelled after the
        ``graceful_shutdown_timeout``), end the stream."""
        self._requested_graceful = True
        if self._runner is not None:
            self._runner.close()
        if self._deadline is not None:
            self._deadline.start()

    def force_shutdown(self) -> None:
        """Forceful shutdown: cancel running reconciles and end the stream now."""
        self._stop("forceful shutdown")

    def _leadership_lost(self) -> None:
        self._stop("leadership lost")

    def _deadline_passed(self) -> None:
        """The graceful shutdown's deadline: a forceful shutdown if anything is still running."""
        if self._runner is not None and self._runner.running:
            self._stop("graceful shutdown timed out")
        self._force.cancel()

    def _stop(self, why: str) -> None:
        """A forceful shutdown, for ``why`` (the first reason given is kept)."""
        if self._cancelled_by is None:
            self._cancelled_by = why
        self._forced = True
        self._force.cancel()

    def _cancel_reason(self) -> str | None:
        return self._cancelled_by

    # -- context manager / await ---------------------------------------------------------------------

    async def __aenter__(self) -> ResultStream[ControllerResult]:
        if self._entered:
            raise RuntimeError("a ControllerRun can be entered once; call controller.run() again")
        self._entered = True
        spec = self._spec
        if spec.exclusive is not None:
            if spec.exclusive in _running:
                raise RuntimeError(f"controller {spec.name!r} is already running (its store has one writer)")
            _running.add(spec.exclusive)
        send: ResultSender[ControllerResult]
        receive: ResultStream[ControllerResult]
        # Room for a result per worker: with a rendezvous, a reconcile finishing while the consumer
        # was already woken for another result (two watch events in one read) parked its worker
        # until the consumer ran, a second wake-up of that worker's task.
        send, receive = result_channel(spec.config.concurrency or DEFAULT_CONCURRENCY)
        tasks = BackgroundTasks()
        try:
            await tasks.__aenter__()
        except BaseException:
            self._release()
            raise
        tasks.start_soon(self._run, send, name=f"kube_runtime.controller[{spec.name}]")
        self._tasks = tasks
        self._receive = receive
        return receive

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        if self._cancelled_by is None:
            self._cancelled_by = "run stopped"
        self._force.cancel()
        try:
            return await tasks.__aexit__(exc_type, exc, tb)
        finally:
            self._release()
            if self._receive is not None:
                self._receive.close()

    def _release(self) -> None:
        if self._spec.exclusive is not None:
            _running.discard(self._spec.exclusive)

    def __aiter__(self) -> AsyncIterator[ControllerResult]:
        raise TypeError(
            "iterate the results inside `async with controller.run(...) as results:` "
            "(or `await controller.run(...)` to consume them until shutdown)"
        )

    def __await__(self) -> Generator[Any, None, None]:
        return self._consume().__await__()

    async def _consume(self) -> None:
        async with self as results:
            async for item in results:
                if isinstance(item, ControllerError):
                    _log.debug("controller %s: %s", self._spec.name, item)

    # -- the run ---------------------------------------------------------------------------------------

    async def _run(self, send: ResultSender[ControllerResult]) -> None:
        spec = self._spec
        config = spec.config
        metrics = QueueMetrics(spec.name, spec.registry, prioritized=config.priority_queue)
        metrics.set_max_concurrency(config.concurrency)
        clock = loop_clock()

        def requeue(request: ReconcileRequest, run_at: float, priority: int) -> None:
            runner.schedule(request, run_at, priority)

        attempts: ReconcileAttempts[C] = ReconcileAttempts(
            name=spec.name,
            store=spec.store,
            reconcile=self._reconcile,
            error_policy=self._error_policy,
            context=self._context,
            error_backoff=spec.error_backoff,
            decode=spec.decode,
            metrics=metrics,
            clock=clock,
            requeue=requeue,
            timeout=config.reconcile_timeout,
            leading=None if spec.leader_election is None else _is_leader(spec.leader_election),
            term_over=self._leadership_lost,
            cancelled_by=self._cancel_reason,
        )
        election = spec.leader_election
        ready = spec.store.wait_until_ready
        if election is not None:
            elector = election.elector

            async def ready() -> None:
                await elector.wait_until_leading()
                await spec.store.wait_until_ready()

        runner: Runner[ReconcileRequest, ControllerResult] = Runner(
            attempts,
            concurrency=config.concurrency,
            debounce=config.debounce,
            ready=ready,
            hooks=metrics,
            prioritized=config.priority_queue,
            max_wait=config.priority_max_wait,
        )
        self._runner = runner
        deadline = ShutdownDeadline(
            spec.name, config.graceful_shutdown_timeout, runner.running.keys, self._deadline_passed
        )
        self._deadline = deadline
        if self._requested_graceful:
            runner.close()
            deadline.start()
        metrics.attach_inflight(runner.running, clock)  # type: ignore[arg-type]
        signals = (
            shutdown_on_signals(self.shutdown, self.force_shutdown, name=f"controller {spec.name}")
            if spec.shutdown_on_signal
            else contextlib.nullcontext()
        )
        try:
            with self._force, signals:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._start_triggers, tg, runner, send, name="start triggers")
                    if election is not None:
                        tg.start_soon(self._stop_on_loss, election, name="leader election")
                    for waitable in spec.graceful_shutdown_on:
                        tg.start_soon(self._shutdown_after, waitable)
                    tg.start_soon(deadline.run, name="graceful shutdown deadline")
                    _log.debug("applier runner held until store is ready")
                    await runner.run(send)
                    _log.debug("applier runner terminated")
                    tg.cancel_scope.cancel()
        finally:
            metrics.detach_inflight()
            metrics.active_workers.set(0)
            metrics.clear_depth()
            send.close()
            _log.debug("applier terminated")

    async def _start_triggers(
        self,
        tg: TaskGroup,
        runner: Runner[ReconcileRequest, ControllerResult],
        send: ResultSender[Any],
    ) -> None:
        """Open the triggers: at once, or (cold leader election) once leading."""
        election = self._spec.leader_election
        if election is not None and not election.warmup:
            try:
                await election.elector.wait_until_leading()
            except Exception:  # the term ended first: _stop_on_loss ends the run
                return
        for trigger in self._spec.triggers:
            tg.start_soon(self._drive, trigger, runner, send, name=f"trigger {trigger.name}")

    async def _stop_on_loss(self, election: LeaderElection) -> None:
        await election.elector.lost.wait()
        _log.info("controller %s: leadership lost, stopping", self._spec.name)
        self._leadership_lost()

    async def _drive(
        self,
        trigger: Trigger,
        runner: Runner[ReconcileRequest, ControllerResult],
        send: ResultSender[Any],
    ) -> None:
        stream = trigger.open()
        schedule = runner.schedule
        try:
            async for item in stream:
                if isinstance(item, Exception):
                    await send.send(QueueError(item))
                else:
                    schedule(item, None, item.priority)
            _log.debug("trigger %s ended", trigger.name)
        except Exception as exc:  # a custom stream that raised instead of yielding its error
            _log.warning("trigger %s failed and stopped: %r", trigger.name, exc)
            await send.send(QueueError(exc))
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with anyio.move_on_after(5, shield=True):
                    await close()

    async def _shutdown_after(self, waitable: ShutdownSignal) -> None:
        if inspect.isawaitable(waitable):
            await waitable
        else:
            await waitable.wait()
        _log.debug("applier queue terminated, starting graceful shutdown")
        self.shutdown()


def _is_leader(election: LeaderElection) -> Callable[[], bool]:
    """Whether ``election``'s elector leads now (asked before each reconcile starts)."""
    elector = election.elector
    return lambda: elector.is_leader
