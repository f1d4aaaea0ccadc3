"""The result-stream metrics consumer: controller-runtime's names, labels, buckets and result
mapping, checked on the text exposition parsed by prometheus_client's parser."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.client.errors import ApiError
from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.controller.errors import (
    QueueError,
    ReconcilerFailed,
    ReconcileTimedOut,
    RunnerError,
)
from kube_runtime.controller.result import ObjectNotFound
from kube_runtime.observe.metrics import (
    RECONCILE_TIME_BUCKETS,
    ResultRecorder,
    controller_metrics,
    observe_results,
    reconcile_result_label,
)
from kube_runtime.observe.progress import ReconcileProgress
from kube_runtime.watcher.event import WatchStartFailed

from .results import reconciled, ref, stream


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return samples(registry).get((name, frozenset(labels.items())))


def test_all_four_results_exist_at_zero_when_registered(registry: CollectorRegistry) -> None:
    ResultRecorder("markdownview", registry=registry)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            value(registry, "controller_runtime_reconcile_total", controller="markdownview", result=result)
            == 0
        )
    assert value(registry, "controller_runtime_reconcile_errors_total", controller="markdownview") == 0
    assert value(registry, "controller_runtime_reconcile_timeouts_total", controller="markdownview") == 0
    assert value(registry, "controller_runtime_reconcile_time_seconds_count", controller="markdownview") == 0
    assert value(registry, "kube_runtime_hot_loop_detections_total", controller="markdownview") == 0


async def test_a_timeout_is_an_error_and_a_timeout(registry: CollectorRegistry) -> None:
    recorder = ResultRecorder("c", registry=registry, log_errors=False)
    recorder.record(ReconcileTimedOut(ref("a"), 10, duration=10))
    recorder.record(ReconcilerFailed(RuntimeError("x"), ref("a")))
    assert value(registry, "controller_runtime_reconcile_timeouts_total", controller="c") == 1
    assert value(registry, "controller_runtime_reconcile_errors_total", controller="c") == 2
    assert value(registry, "controller_runtime_reconcile_total", controller="c", result="error") == 2


def test_histogram_uses_controller_runtime_buckets(registry: CollectorRegistry) -> None:
    ResultRecorder("c", registry=registry)
    bounds = [
        float(labels["le"])
        for (name, label_set), _ in samples(registry).items()
        if name == "controller_runtime_reconcile_time_seconds_bucket"
        for labels in [dict(label_set)]
        if labels["le"] != "+Inf"
    ]
    assert sorted(bounds) == [float(b) for b in RECONCILE_TIME_BUCKETS]
    assert len(RECONCILE_TIME_BUCKETS) == 40


@pytest.mark.parametrize(
    ("action", "label"),
    [
        (Action.await_change(), "success"),
        (Action.requeue(300), "requeue_after"),
        (Action.requeue(0), "requeue"),
        (Action.requeue_with_backoff(), "requeue"),
    ],
)
def test_result_label_mapping(action: Action, label: str) -> None:
    assert reconcile_result_label(action) == label


async def test_stream_items_pass_through_and_are_counted(registry: CollectorRegistry) -> None:
    boom = RuntimeError("boom")
    items: list[object] = [
        reconciled(ref("a"), Action.await_change(), duration=0.02),
        reconciled(ref("b"), Action.requeue(60), duration=0.3),
        ReconcilerFailed(boom, ref("c"), reason=ReconcileReason.OBJECT_UPDATED, duration=1.5),
        reconciled(ref("d"), Action.requeue(0), duration=0.001),
        ObjectNotFound(ref("gone")),
        QueueError(WatchStartFailed(ApiError({"code": 403, "reason": "Forbidden"}))),
        RunnerError(RuntimeError("store writer dropped")),
        "not a result at all",
    ]
    seen = [item async for item in observe_results(stream(items), "cm", registry=registry)]
    assert seen == items
    got = samples(registry)

    def count(result: str) -> float:
        return got[
            ("controller_runtime_reconcile_total", frozenset({"controller": "cm", "result": result}.items()))
        ]

    assert (count("success"), count("requeue_after"), count("error"), count("requeue")) == (1, 1, 1, 1)
    assert value(registry, "controller_runtime_reconcile_errors_total", controller="cm") == 1
    assert value(registry, "controller_runtime_reconcile_time_seconds_count", controller="cm") == 4
    assert value(registry, "controller_runtime_reconcile_time_seconds_sum", controller="cm") == pytest.approx(
        1.821
    )
    assert (
        value(registry, "controller_runtime_reconcile_time_seconds_bucket", controller="cm", le="0.025") == 2
    )
    for kind in ("QueueError", "RunnerError"):
        assert (
            value(registry, "kube_runtime_controller_stream_errors_total", controller="cm", error=kind) == 1
        )
    # A deleted object is a notice, not an error.
    assert value(
        registry, "kube_runtime_controller_stream_errors_total", controller="cm", error="ObjectNotFound"
    ) in (
        None,
        0,
    )


async def test_two_controllers_share_families_but_not_series(registry: CollectorRegistry) -> None:
    async for _ in observe_results(
        stream([reconciled(ref("a"), Action.await_change())]), "one", registry=registry
    ):
        pass
    async for _ in observe_results(stream([]), "two", registry=registry):
        pass
    assert controller_metrics(registry) is controller_metrics(registry)
    assert value(registry, "controller_runtime_reconcile_total", controller="one", result="success") == 1
    assert value(registry, "controller_runtime_reconcile_total", controller="two", result="success") == 0


async def test_breaking_out_closes_the_wrapped_stream(registry: CollectorRegistry) -> None:
    closed = []

    async def source():  # type: ignore[no-untyped-def]
        try:
            while True:
                yield reconciled(ref("a"), Action.await_change())
        finally:
            closed.append(True)

    async with contextlib.aclosing(observe_results(source(), "c", registry=registry)) as results:
        async for _ in results:
            break
    assert closed == [True]


async def test_progress_is_marked_per_item(registry: CollectorRegistry) -> None:
    progress = ReconcileProgress(threshold=10)
    assert progress.last_progress is None
    async for _ in observe_results(
        stream([ObjectNotFound(ref("x"))]), "c", registry=registry, progress=progress
    ):
        pass
    assert progress.last_progress is not None


outcomes = st.lists(
    st.one_of(
        st.tuples(st.just("ok"), st.sampled_from([None, 0.0, 5.0]), st.floats(0, 100)),
        st.tuples(st.just("fail"), st.none(), st.floats(0, 100)),
    ),
    max_size=30,
)


@settings(max_examples=50, deadline=None)
@given(outcomes)
def test_counts_match_outcomes_property(run: list[tuple[str, float | None, float]]) -> None:
    registry = CollectorRegistry()
    recorder = ResultRecorder("p", registry=registry, hot_loops=False, log_errors=False)
    expected = {"success": 0, "error": 0, "requeue": 0, "requeue_after": 0}
    import anyio

    async def drive() -> None:
        for kind, delay, duration in run:
            if kind == "fail":
                recorder.record(ReconcilerFailed(ValueError(), ref("x"), duration=duration))
                expected["error"] += 1
            else:
                action = Action.await_change() if delay is None else Action.requeue(delay)
                recorder.record(reconciled(ref("x"), action, duration=duration))
                expected[reconcile_result_label(action)] += 1

    anyio.run(drive)
    for result, n in expected.items():
        assert value(registry, "controller_runtime_reconcile_total", controller="p", result=result) == n
    assert value(registry, "controller_runtime_reconcile_errors_total", controller="p") == expected["error"]
    assert value(registry, "controller_runtime_reconcile_time_seconds_count", controller="p") == len(run)
