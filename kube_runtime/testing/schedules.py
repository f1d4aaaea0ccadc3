"""Fault schedules as plain data: what a property test does to the cluster while a controller runs.

A :class:`Schedule` is how the controller lists (paged with a page size, streaming, unpaged), how
many objects exist before it starts, and a list of steps run in order. Steps are frozen dataclasses
of two families:

* churn (the objects change): :class:`Create`, :class:`Update`, :class:`DeleteObject` of the
  controller's main objects, and :class:`DeleteChild` / :class:`EditChild` of the object a parent
  owns (named like its parent), as a user or another controller would change it behind the
  controller's back;
* faults (the server misbehaves): :class:`DropWatches`, :class:`Compact` (history dropped, so a
  resumed watch or an old continue token gets 410), :class:`FailRequests` (429 or 5xx, with
  ``Retry-After``), :class:`Latency`, :class:`SilenceWatches` (connections open but silent),
  :class:`StopServing` / :class:`StartServing` (a restart, possibly with steps in between), and
  :class:`Pause` (time passes: the controller runs).

Steps between two awaiting steps run back to back, without the controller getting a turn: that is
how ``[DropWatches, Update, Compact]`` makes the controller miss an update and relist. Only
``Pause``, ``StartServing`` and the end of the schedule let the controller act.

Being plain data, schedules print readably (:meth:`Schedule.describe`) and hypothesis shrinks them
(fewer steps, smaller counts, earlier list modes). The strategies that draw them are in
:mod:`kube_runtime.testing.strategies`; the harness that runs them in
:mod:`kube_runtime.testing.controller_harness`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from kube_runtime.watcher import WatcherConfig

__all__ = [
    "CHURN_STEPS",
    "FAULT_STEPS",
    "LIST_SHAPES",
    "Compact",
    "Create",
    "DeleteChild",
    "DeleteObject",
    "DropWatches",
    "EditChild",
    "FailRequests",
    "Latency",
    "ListMode",
    "Pause",
    "Schedule",
    "SilenceWatches",
    "StartServing",
    "Step",
    "StopServing",
    "Update",
    "object_name",
    "random_schedule",
]

ListMode = Literal["paged", "streaming", "unpaged"]


def object_name(index: int) -> str:
    """The name of the ``index``-th object of a schedule (initial objects are ``obj-0`` ... too)."""
    return f"obj-{index}"


# -- churn -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Create:
    """Create ``obj-<index>`` with ``content`` (a no-op if it exists or is still terminating)."""

    index: int
    content: str


@dataclass(frozen=True, slots=True)
class Update:
    """Set the content of ``obj-<index>`` (a no-op if it does not exist or the content is unchanged)."""

    index: int
    content: str


@dataclass(frozen=True, slots=True)
class DeleteObject:
    """Delete ``obj-<index>`` (finalizers are honoured: it may stay, terminating, until they go)."""

    index: int


@dataclass(frozen=True, slots=True)
class DeleteChild:
    """Delete the child object named like ``obj-<index>`` (a no-op if there is none)."""

    index: int


@dataclass(frozen=True, slots=True)
class EditChild:
    """Overwrite the child's content with ``content`` (a no-op if there is no child)."""

    index: int
    content: str


# -- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DropWatches:
    """End every open watch cleanly (the watcher resumes from its last resourceVersion)."""


@dataclass(frozen=True, slots=True)
class Compact:
    """Drop the watch history: resumes and continue tokens from before now get 410 (relist)."""


@dataclass(frozen=True, slots=True)
class FailRequests:
    """Answer the next ``count`` API requests of the controller with ``code`` (and ``Retry-After``)."""

    count: int
    code: int
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Latency:
    """Delay every API request by ``seconds`` from now on (0 turns it off)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class SilenceWatches:
    """Every open watch stays open but delivers nothing more (a half-open connection)."""


@dataclass(frozen=True, slots=True)
class StopServing:
    """Close the listener and every connection (a server restart begins; objects are kept)."""


@dataclass(frozen=True, slots=True)
class StartServing:
    """Listen again on the same port (a no-op while serving)."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Let ``seconds`` of (loop) time pass while the controller runs."""

    seconds: float


Step = (
    Create
    | Update
    | DeleteObject
    | DeleteChild
    | EditChild
    | DropWatches
    | Compact
    | FailRequests
    | Latency
    | SilenceWatches
    | StopServing
    | StartServing
    | Pause
)

CHURN_STEPS: tuple[type, ...] = (Create, Update, DeleteObject, DeleteChild, EditChild)
FAULT_STEPS: tuple[type, ...] = (
    DropWatches,
    Compact,
    FailRequests,
    Latency,
    SilenceWatches,
    StopServing,
    StartServing,
    Pause,
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One run: list mode, page size (paged only), initial objects and the steps.

    ``initial_objects`` objects ``obj-0`` ... exist (content ``"init"``) before the controller
    starts; with ``settle_first`` the steps start once it has reconciled them (otherwise they
    race its initial list). Pitfall: with ``list_mode="paged"`` a ``page_size`` of ``None`` means
    the default (500).
    """

    list_mode: ListMode = "paged"
    page_size: int | None = None
    initial_objects: int = 0
    steps: tuple[Step, ...] = field(default_factory=tuple)
    #: Wait until the controller has reconciled the initial objects before the first step.
    settle_first: bool = False

    def watcher_config(self) -> WatcherConfig:
        """The :class:`~kube_runtime.watcher.WatcherConfig` the controller under test uses."""
        config = WatcherConfig()
        if self.list_mode == "streaming":
            return config.streaming_lists()
        if self.list_mode == "unpaged":
            return config.with_page_size(None)
        return config if self.page_size is None else config.with_page_size(self.page_size)

    def describe(self) -> str:
        """One line for the shape, then one line per step: what a failure message shows."""
        mode: str = self.list_mode
        if mode == "paged":
            mode += f" (page size {self.page_size or 500})"
        settle = ", settled first" if self.settle_first else ""
        lines = [
            f"Schedule: {mode} lists, {self.initial_objects} initial objects{settle}, {len(self.steps)} steps"
        ]
        lines.extend(f"  {i:3d}. {step!r}" for i, step in enumerate(self.steps))
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.steps)


#: The list shapes :func:`random_schedule` picks from: (mode, page size).
LIST_SHAPES: tuple[tuple[ListMode, int | None], ...] = (
    ("paged", None),
    ("paged", 50),
    ("streaming", None),
    ("unpaged", None),
)


def random_schedule(
    seed: int,
    *,
    large_every: int = 5,
    large_objects: int = 2000,
    max_steps: int = 30,
) -> Schedule:
    """A schedule drawn from ``random.Random(seed)``: the same seed always gives the same schedule.

    For a fixed seed set (CI) and for reporting "seed N fails" without hypothesis. Every
    ``large_every``-th seed starts with ``large_objects`` objects (the others with 0 to 100). The list
    shape cycles through :data:`LIST_SHAPES` by seed (paged 500 and 50, streaming, unpaged). Besides
    single steps it draws outages: watches dropped or the server stopped, objects changed meanwhile,
    history compacted, serving again (the controller must relist to see those changes).
    """
    rng = random.Random(seed)
    mode, page_size = LIST_SHAPES[seed % len(LIST_SHAPES)]
    initial = large_objects if large_every and seed % large_every == 0 else rng.choice([0, 3, 20, 100])
    names = max(initial, 8)
    contents = ["a", "b", "c", "d"]

    def index() -> int:
        return rng.randrange(names + 4)

    def churn() -> Step:
        kind = rng.random()
        if kind < 0.2:
            return Create(index(), rng.choice(contents))
        if kind < 0.65:
            return Update(index(), rng.choice(contents))
        if kind < 0.8:
            return DeleteObject(index())
        if kind < 0.9:
            return DeleteChild(index())
        return EditChild(index(), "tampered")

    def fault() -> list[Step]:
        kind = rng.random()
        if kind < 0.25:  # an outage the controller must relist after
            starts: list[Step] = [DropWatches(), StopServing(), SilenceWatches()]
            cut: list[Step] = [rng.choice(starts)]
            cut += [Update(index(), rng.choice(contents)) for _ in range(rng.randint(1, 5))]
            cut += [Compact(), Pause(rng.choice([0.0, 0.5])), StartServing()]
            return cut
        if kind < 0.4:
            return [DropWatches()]
        if kind < 0.5:
            return [Compact()]
        if kind < 0.65:
            code = rng.choice([429, 500, 503, 504])
            retry = rng.choice([1, 2]) if code == 429 else rng.choice([None, 1])
            return [FailRequests(rng.randint(1, 5), code, retry)]
        if kind < 0.75:
            return [Latency(rng.choice([0.0, 0.005, 0.05]))]
        if kind < 0.82:
            return [SilenceWatches()]
        if kind < 0.88:
            return [StopServing(), Pause(rng.choice([0.1, 1.0, 5.0])), StartServing()]
        return [Pause(rng.choice([0.01, 0.2, 2.0]))]

    steps: list[Step] = []
    for _ in range(rng.randint(3, max_steps)):
        if rng.random() < 0.5:
            steps.append(churn())
        else:
            steps.extend(fault())
        if rng.random() < 0.3:
            steps.append(Pause(rng.choice([0.0, 0.05, 0.5])))
    return Schedule(mode, page_size, initial, tuple(steps), settle_first=rng.random() < 0.5)
