"""Hypothesis strategies for controller property tests: object churn and fault schedules.

Everything drawn is plain data from :mod:`kube_runtime.testing.schedules`, so hypothesis shrinks a
failing schedule to a short one (fewer steps, the first list mode, the smallest counts) and prints
it readably. Needs ``hypothesis`` (the ``test`` extra).

::

    from hypothesis import given, settings
    from kube_runtime.testing.strategies import schedules

    @given(schedules(max_objects=5))
    @settings(max_examples=50, deadline=None)
    def test_my_controller(schedule): ...

Pitfall: object indexes are drawn below ``names`` (default 6); keep it small, so that steps hit the
same objects often (an update of an object that was never created is a no-op).
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from kube_runtime.testing.schedules import (
    Compact,
    Create,
    DeleteChild,
    DeleteObject,
    DropWatches,
    EditChild,
    FailRequests,
    Latency,
    ListMode,
    Pause,
    Schedule,
    SilenceWatches,
    StartServing,
    Step,
    StopServing,
    Update,
)

__all__ = [
    "ALL_FAULTS",
    "ENVTEST_FAULTS",
    "churn_steps",
    "fault_steps",
    "list_shapes",
    "schedules",
    "steps",
]

#: Every fault kind the embedded server can inject.
ALL_FAULTS: frozenset[type] = frozenset(
    {DropWatches, Compact, FailRequests, Latency, SilenceWatches, StopServing, StartServing, Pause}
)
#: The faults a real kube-apiserver run supports (see ``EnvtestCluster``): restarts and compaction.
ENVTEST_FAULTS: frozenset[type] = frozenset({Compact, StopServing, StartServing, Pause})

_CONTENTS = st.sampled_from(["a", "b", "c", "d"])


def churn_steps(names: int = 6, *, children: bool = True) -> st.SearchStrategy[Step]:
    """Creates, updates, deletes of the main objects, and (``children``) deletes and edits of the
    object each one owns."""
    index = st.integers(0, names - 1)
    options: list[st.SearchStrategy[Step]] = [
        st.builds(Create, index, _CONTENTS),
        st.builds(Update, index, _CONTENTS),
        st.builds(DeleteObject, index),
    ]
    if children:
        options += [st.builds(DeleteChild, index), st.builds(EditChild, index, st.just("tampered"))]
    return st.one_of(options)


def fault_steps(kinds: frozenset[type] = ALL_FAULTS) -> st.SearchStrategy[Step]:
    """Faults of the given kinds (default: all), with Retry-After on 429s and some 5xx."""
    options: list[st.SearchStrategy[Step]] = []
    if Pause in kinds:
        options.append(st.builds(Pause, st.sampled_from([0.0, 0.01, 0.2, 2.0])))
    if DropWatches in kinds:
        options.append(st.just(DropWatches()))
    if Compact in kinds:
        options.append(st.just(Compact()))
    if FailRequests in kinds:
        options.append(
            st.one_of(
                st.builds(FailRequests, st.integers(1, 5), st.just(429), st.sampled_from([1, 2])),
                st.builds(
                    FailRequests,
                    st.integers(1, 5),
                    st.sampled_from([500, 503, 504]),
                    st.sampled_from([None, 1]),
                ),
            )
        )
    if Latency in kinds:
        options.append(st.builds(Latency, st.sampled_from([0.0, 0.005, 0.05])))
    if SilenceWatches in kinds:
        options.append(st.just(SilenceWatches()))
    if StopServing in kinds:
        options.append(st.just(StopServing()))
    if StartServing in kinds:
        options.append(st.just(StartServing()))
    return st.one_of(options)


def steps(
    names: int = 6, *, faults: frozenset[type] = ALL_FAULTS, children: bool = True
) -> st.SearchStrategy[Step]:
    """One step: churn (listed first, so hypothesis shrinks faults towards churn) or a fault."""
    return st.one_of(churn_steps(names, children=children), fault_steps(faults))


def list_shapes(
    modes: Sequence[ListMode] = ("paged", "streaming", "unpaged"),
    page_sizes: Sequence[int | None] = (2, 50, None),
) -> st.SearchStrategy[tuple[ListMode, int | None]]:
    """(list mode, page size): the page size only varies for paged lists (None: the default 500)."""

    def with_size(mode: ListMode) -> st.SearchStrategy[tuple[ListMode, int | None]]:
        if mode == "paged":
            return st.tuples(st.just(mode), st.sampled_from(list(page_sizes)))
        return st.just((mode, None))

    return st.sampled_from(list(modes)).flatmap(with_size)


@st.composite
def schedules(
    draw: st.DrawFn,
    *,
    names: int = 6,
    max_objects: int = 6,
    max_steps: int = 25,
    faults: frozenset[type] = ALL_FAULTS,
    children: bool = True,
    modes: Sequence[ListMode] = ("paged", "streaming", "unpaged"),
    page_sizes: Sequence[int | None] = (2, 50, None),
) -> Schedule:
    """A whole :class:`~kube_runtime.testing.schedules.Schedule`: a list shape, up to
    ``max_objects`` initial objects, and up to ``max_steps`` steps over ``names`` object names."""
    mode, page_size = draw(list_shapes(modes, page_sizes))
    initial = draw(st.integers(0, max_objects))
    settle_first = draw(st.booleans())
    drawn = draw(st.lists(steps(max(names, 1), faults=faults, children=children), max_size=max_steps))
    return Schedule(mode, page_size, initial, tuple(drawn), settle_first=settle_first)
