"""Run a real :class:`~kube_runtime.controller.Controller` under a fault schedule and check it.

::

    spec = ControllerSpec(resource=GENERATORS, build=build, make_object=..., content_patch=...,
                          child_resource=CONFIG_MAPS, invariants=[every_parent_has_its_child])

    @given(schedules())
    @settings(max_examples=50, deadline=None)
    def test_controller(schedule):
        run_on_embedded_server(spec, schedule)   # raises ScheduleFailed (an AssertionError)

:func:`check_controller` (async; :func:`run_on_embedded_server` wraps it with a fresh embedded
server on a virtual-clock loop) creates the schedule's initial objects, starts the controller built
by ``spec.build`` with the schedule's :class:`~kube_runtime.watcher.WatcherConfig`, runs the steps,
stops every fault, waits for quiescence and checks (with ``schedule.settle_first`` it also waits
for quiescence, and checks 1, before the first step):

1. Built in, the latest version of every object was reconciled after the last write that
   concerned it: the object's current ``resourceVersion`` is the one the reconciler was last handed
   (and finished with successfully), and that reconcile started after the schedule's last change to
   the object or its child. An object that was deleted is done once it is gone (its finalizer
   released); while it still exists its deletion is a version like any other.
2. Built in, no object was reconciled twice at once (the wrapper around ``reconcile`` tracks the
   objects in flight).
3. ``spec.invariants``: callables over the final :class:`ClusterState`; each returns ``None`` or a
   truthy value to pass, and ``False`` or raises ``AssertionError`` to fail.

Quiescence is a condition, not a sleep: no reconcile in flight and check 1 holds, re-evaluated
after every finished reconcile. It must hold within ``settle_timeout`` seconds of loop time after
the faults stop. Pitfall: keep ``settle_timeout`` shorter than the reconciler's periodic requeue
(configmapgen: 300 s), or the periodic requeue repairs a lost trigger before the bound and hides it.

Failures raise :class:`ScheduleFailed`, whose text starts with the schedule (one line per step),
so hypothesis's shrunk counterexample reads as a reproduction recipe.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from kube_runtime.client import ApiResource, Client
from kube_runtime.controller import Action, Controller, ControllerError, ErrorPolicy, Reconciled, Reconciler
from kube_runtime.predicates import Predicate
from kube_runtime.resources.model import to_dict
from kube_runtime.testing.clock import VirtualClockLoop
from kube_runtime.testing.clusters import Cluster, EmbeddedCluster
from kube_runtime.testing.schedules import (
    Create,
    DeleteChild,
    DeleteObject,
    EditChild,
    Pause,
    Schedule,
    Step,
    Update,
    object_name,
)
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import WatcherConfig

__all__ = [
    "Cluster",
    "ClusterState",
    "ControllerSpec",
    "ControllerUnderTest",
    "EmbeddedCluster",
    "Invariant",
    "ReconcileTracker",
    "RunReport",
    "ScheduleFailed",
    "check_controller",
    "run_on_embedded_server",
]

#: Default bound on quiescence after the faults stop, in loop seconds.
DEFAULT_SETTLE_TIMEOUT = 120.0
_MAX_LISTED = 10


@dataclass(slots=True)
class ControllerUnderTest:
    """What ``spec.build`` returns: the controller and the arguments of its ``run``."""

    controller: Controller
    reconcile: Reconciler[Any]
    error_policy: ErrorPolicy[Any] | None
    context: Any


@dataclass(frozen=True, slots=True)
class ClusterState:
    """The final state the invariants see: main objects and children (by name) of the namespace."""

    objects: dict[str, dict[str, Any]]
    children: dict[str, dict[str, Any]]


#: ``invariant(state)``: ``None``/truthy passes; ``False`` or ``AssertionError`` fails.
Invariant = Callable[[ClusterState], object]


@dataclass(slots=True)
class ControllerSpec:
    """A controller to test and how the schedule's steps map onto its objects.

    ``build(client, watcher_config)`` builds a fresh controller (called once per run; use
    ``watcher_config`` for the main watch, it carries the schedule's list mode).
    ``make_object(name, content)`` is a new main object; ``content_patch(content)`` a merge patch
    that sets the content of an existing one. ``child_resource`` is the kind of the object each
    parent owns, named like its parent (``DeleteChild``/``EditChild`` act on it);
    ``child_patch(content)`` is the merge patch of ``EditChild``. ``setup(client)`` runs once
    before anything (install a CRD). ``concurrency`` is set on the controller when not None.

    ``predicate``: the predicate the controller's main watch filters with (``Controller(...,
    predicates=[...])``; several combined with :func:`~kube_runtime.predicates.combine`). Check 1
    then asks that the last successful reconcile saw the object's current *fingerprint* rather
    than its current resourceVersion (a change the predicate drops, such as the controller's own
    status write, is not meant to trigger), and that it started after the schedule's last change
    to the object's child. Typed controllers work too: a model handed to the reconciler is read
    in its wire form.
    """

    resource: ApiResource
    build: Callable[[Client, WatcherConfig], ControllerUnderTest]
    make_object: Callable[[str, str], dict[str, Any]]
    content_patch: Callable[[str], dict[str, Any]]
    child_resource: ApiResource | None = None
    child_patch: Callable[[str], dict[str, Any]] | None = None
    invariants: Sequence[Invariant] = ()
    setup: Callable[[Client], Awaitable[None]] | None = None
    concurrency: int | None = None
    predicate: Predicate | None = None


class ScheduleFailed(AssertionError):
    """A schedule broke a guarantee; the message shows the schedule and what went wrong."""

    def __init__(self, schedule: Schedule, problems: Sequence[str], report: RunReport | None = None) -> None:
        self.schedule = schedule
        self.problems = list(problems)
        self.report = report
        text = [schedule.describe(), "Problems:"] + [f"  - {p}" for p in problems]
        if report is not None:
            text.append(f"Run: {report.summary()}")
        super().__init__("\n".join(text))


@dataclass(slots=True)
class RunReport:
    """What one run did: reconciles (successful), controller errors, writes and timings."""

    schedule: Schedule
    reconciles: int = 0
    errors: int = 0
    writes: int = 0
    skipped_steps: int = 0
    settle_seconds: float = 0.0
    wall_seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.reconciles} reconciles, {self.errors} controller errors, {self.writes} writes, "
            f"{self.skipped_steps} unsupported steps skipped, settled in {self.settle_seconds:.2f} loop s, "
            f"{self.wall_seconds:.2f} wall s"
        )


class ReconcileTracker:
    """Wraps a reconciler: records what each reconcile was handed and when, and overlaps.

    ``last_ok[name]`` is (resourceVersion handed to the reconcile, its start sequence number,
    ``predicate`` fingerprint) of the last reconcile that returned an Action; ``wrote(name)``
    stamps a change the schedule made (``child=True``: to the object's child). Sequence numbers
    come from one counter, so "started after the write" is exact.
    """

    def __init__(self, predicate: Predicate | None = None) -> None:
        self._seq = itertools.count(1)
        self._predicate = predicate
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []
        self.last_ok: dict[str, tuple[str, int, Hashable | None]] = {}
        self.last_write: dict[str, int] = {}
        self.last_child_write: dict[str, int] = {}
        self.finished: set[str] = set()
        self.calls = 0
        self._changed = anyio.Event()

    def writing(self) -> int:
        """The sequence number of a write about to be sent (pass it to :meth:`wrote`)."""
        return next(self._seq)

    def wrote(self, name: str, seq: int, *, child: bool = False) -> None:
        """The write numbered ``seq`` (from :meth:`writing`) changed ``name``. A reconcile that
        started after it was sent counts as having seen it: the reconcile and the write's response
        race on one event loop, so a reconcile triggered by the change itself can start before the
        response arrives. One that started before the server applied it and read the old state
        is caught by the spec's invariants on the settled state."""
        self.last_write[name] = max(seq, self.last_write.get(name, 0))
        if child:
            self.last_child_write[name] = max(seq, self.last_child_write.get(name, 0))

    def wrap(self, reconcile: Reconciler[Any]) -> Reconciler[Any]:
        async def tracked(handed: Any, ctx: Any) -> Action:
            obj: dict[str, Any] = handed if isinstance(handed, dict) else to_dict(handed)
            meta = obj.get("metadata") or {}
            name = str(meta.get("name"))
            rv = str(meta.get("resourceVersion"))
            running = self.in_flight.get(name, 0)
            if running:
                self.overlaps.append(f"{name} reconciled at resourceVersion {rv} while {running} ran")
            self.in_flight[name] = running + 1
            started = next(self._seq)
            self.calls += 1
            try:
                action = await reconcile(handed, ctx)
                fingerprint = None if self._predicate is None else self._predicate(obj)
                self.last_ok[name] = (rv, started, fingerprint)
                return action
            finally:
                left = self.in_flight[name] - 1
                if left:
                    self.in_flight[name] = left
                else:
                    del self.in_flight[name]
                self.finished.add(name)
                self._notify()

        return tracked

    def _notify(self) -> None:
        event, self._changed = self._changed, anyio.Event()
        event.set()

    async def wait_changed(self) -> None:
        """Wait until the next reconcile finishes."""
        await self._changed.wait()

    def lag(self, name: str, rv: str, obj: dict[str, Any] | None = None) -> str | None:
        """Why ``name`` at ``rv`` (``obj``: needed with a predicate) is not settled yet (None: it is)."""
        ok = self.last_ok.get(name)
        if ok is None:
            return f"{name}: resourceVersion {rv} was never reconciled"
        fingerprint = None if self._predicate is None or obj is None else self._predicate(obj)
        if fingerprint is not None:
            if ok[2] != fingerprint:
                return f"{name}: its latest fingerprint {fingerprint!r} was not reconciled (last: {ok[2]!r})"
            if ok[1] < self.last_child_write.get(name, 0):
                return f"{name}: not reconciled since its child was changed"
            return None
        if ok[0] != rv:
            return f"{name}: latest resourceVersion {rv} not reconciled (last reconciled: {ok[0]})"
        if ok[1] < self.last_write.get(name, 0):
            return f"{name}: not reconciled since its child was changed"
        return None


async def check_controller(
    cluster: Cluster,
    spec: ControllerSpec,
    schedule: Schedule,
    *,
    settle_timeout: float = DEFAULT_SETTLE_TIMEOUT,
) -> RunReport:
    """Run ``schedule`` against ``spec``'s controller on ``cluster``; raise :class:`ScheduleFailed`
    if a built-in or user invariant fails. Returns the run's :class:`RunReport`."""
    report = RunReport(schedule)
    wall = time.perf_counter()
    if spec.setup is not None:
        await spec.setup(cluster.client)
    for index in range(schedule.initial_objects):
        await cluster.create(spec.resource, spec.make_object(object_name(index), "init"))
    under_test = spec.build(cluster.client, schedule.watcher_config())
    if spec.concurrency is not None:
        under_test.controller.with_config(concurrency=spec.concurrency)
    tracker = ReconcileTracker(spec.predicate)
    reconcile = tracker.wrap(under_test.reconcile)
    problems: list[str] = []
    async with (
        under_test.controller.run(reconcile, under_test.error_policy, under_test.context) as results,
        anyio.create_task_group() as tg,
    ):

        async def consume() -> None:
            async for item in results:
                if isinstance(item, Reconciled):
                    report.reconciles += 1
                elif isinstance(item, ControllerError):
                    report.errors += 1

        tg.start_soon(consume)
        if schedule.settle_first:
            initial = await _settle(cluster, spec, tracker, settle_timeout)
            problems += [f"initial objects: {p}" for p in initial]
        for step in schedule.steps if not problems else ():
            await _run_step(cluster, spec, step, tracker, report)
        await cluster.heal()
        settle_start = anyio.current_time()
        if not problems:
            problems += await _settle(cluster, spec, tracker, settle_timeout)
        report.settle_seconds = anyio.current_time() - settle_start
        if tracker.overlaps:
            problems += [f"reconciled twice at once: {o}" for o in tracker.overlaps[:_MAX_LISTED]]
        if not problems:
            problems += await _check_invariants(cluster, spec)
        tg.cancel_scope.cancel()
    report.wall_seconds = time.perf_counter() - wall
    if problems:
        raise ScheduleFailed(schedule, problems, report)
    return report


async def _run_step(
    cluster: Cluster, spec: ControllerSpec, step: Step, tracker: ReconcileTracker, report: RunReport
) -> None:
    if isinstance(step, Pause):
        await anyio.sleep(step.seconds)
        return
    if isinstance(step, Create | Update | DeleteObject | DeleteChild | EditChild):
        name = object_name(step.index)
        seq = tracker.writing()
        if isinstance(step, Create):
            changed = await cluster.create(spec.resource, spec.make_object(name, step.content))
        elif isinstance(step, Update):
            changed = await cluster.patch(spec.resource, name, spec.content_patch(step.content))
        elif isinstance(step, DeleteObject):
            changed = await cluster.delete(spec.resource, name)
        elif spec.child_resource is None:
            changed = False
        elif isinstance(step, DeleteChild):
            changed = await cluster.delete(spec.child_resource, name)
        else:
            patch = spec.child_patch(step.content) if spec.child_patch is not None else None
            changed = patch is not None and await cluster.patch(spec.child_resource, name, patch)
        if changed:
            tracker.wrote(name, seq, child=isinstance(step, DeleteChild | EditChild))
            report.writes += 1
        return
    if cluster.supports(step):
        await cluster.fault(step)
    else:
        report.skipped_steps += 1


async def _settle(
    cluster: Cluster, spec: ControllerSpec, tracker: ReconcileTracker, bound: float
) -> list[str]:
    """Wait until nothing runs and every object's latest version is reconciled; the lagging objects
    if that did not happen within ``bound``."""

    async def scan() -> dict[str, str]:
        lagging: dict[str, str] = {}
        current: dict[str, tuple[str, dict[str, Any] | None]]
        if spec.predicate is None:
            current = {name: (rv, None) for name, rv in (await cluster.versions(spec.resource)).items()}
        else:
            objects = await cluster.objects(spec.resource)
            current = {name: (str(o["metadata"]["resourceVersion"]), o) for name, o in objects.items()}
        for name, (rv, obj) in current.items():
            why = tracker.lag(name, rv, obj)
            if why is not None:
                lagging[name] = why
        return lagging

    pending = await scan()
    with anyio.move_on_after(bound):
        while True:
            if not tracker.in_flight and not pending:
                pending = await scan()
                if not pending:
                    return []
            if not tracker.finished:
                await tracker.wait_changed()
            done, tracker.finished = tracker.finished, set()  # later finishes wait for the next pass
            for name in done:
                if name in pending:
                    obj = None if spec.predicate is None else (await cluster.objects(spec.resource)).get(name)
                    rv = await cluster.version(spec.resource, name)
                    why = None if rv is None else tracker.lag(name, rv, obj)
                    if why is None:
                        del pending[name]
                    else:
                        pending[name] = why
            if not tracker.in_flight:
                pending = await scan()
    pending = await scan()
    if not pending and not tracker.in_flight:
        return []
    lines = [f"not quiescent {bound:g} s after the faults stopped ({len(pending)} objects lagging)"]
    if tracker.in_flight:
        lines.append(f"still reconciling: {sorted(tracker.in_flight)}")
    lines += [pending[name] for name in sorted(pending)[:_MAX_LISTED]]
    return lines


async def _check_invariants(cluster: Cluster, spec: ControllerSpec) -> list[str]:
    if not spec.invariants:
        return []
    objects = await cluster.objects(spec.resource)
    children = await cluster.objects(spec.child_resource) if spec.child_resource is not None else {}
    state = ClusterState(objects, children)
    problems: list[str] = []
    for invariant in spec.invariants:
        label = getattr(invariant, "__name__", repr(invariant))
        try:
            ok = invariant(state)
        except AssertionError as err:
            problems.append(f"invariant {label} failed: {err}")
            continue
        if ok is False:
            problems.append(f"invariant {label} failed")
    return problems


def run_on_embedded_server(
    spec: ControllerSpec,
    schedule: Schedule,
    *,
    settle_timeout: float = DEFAULT_SETTLE_TIMEOUT,
    virtual_clock: bool = True,
    server_options: dict[str, Any] | None = None,
) -> RunReport:
    """Synchronous :func:`check_controller` on a fresh embedded server (plain HTTP on loopback) in a
    new event loop: one call per hypothesis example. With ``virtual_clock`` (default) the loop is a
    :class:`~kube_runtime.testing.clock.VirtualClockLoop`, so backoffs, ``Retry-After``, latency and
    pauses cost no wall time. Must not be called from inside a running event loop."""

    async def main() -> RunReport | ScheduleFailed:
        async with ApiServer(tls=False, **(server_options or {})) as server:
            cluster = EmbeddedCluster(server)
            try:
                return await check_controller(cluster, spec, schedule, settle_timeout=settle_timeout)
            except ScheduleFailed as failed:  # raised outside the server's task group: no group
                return failed

    options: dict[str, Any] = {"loop_factory": VirtualClockLoop} if virtual_clock else {}
    outcome = anyio.run(main, backend="asyncio", backend_options=options)
    if isinstance(outcome, ScheduleFailed):
        raise outcome
    return outcome
