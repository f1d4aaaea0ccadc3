"""The lock-free Counter/Histogram expose exactly what prometheus_client's own classes expose."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.observe.metrics import RECONCILE_TIME_BUCKETS
from kube_runtime.observe.single_writer import SingleWriterCounter, SingleWriterHistogram

_CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)


def normalised(text: bytes) -> str:
    """The exposition with ``_created`` timestamps blanked (they differ by construction time)."""
    return _CREATED.sub(r"\1 T", text.decode())


def pair(
    counter_cls: type[Counter], histogram_cls: type[Histogram]
) -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    counter = counter_cls("demo_reconcile_total", "Reconciles", ["controller", "result"], registry=registry)
    histogram = histogram_cls(
        "demo_reconcile_time_seconds",
        "Time per reconcile",
        ["controller"],
        buckets=RECONCILE_TIME_BUCKETS,
        registry=registry,
    )
    return registry, counter, histogram


amounts = st.one_of(
    st.floats(min_value=-1, max_value=100, allow_nan=False),
    st.sampled_from([0.0, 0.005, 0.01, 1.0, 60.0, 60.0000001, math.inf, -0.0, 1e-9]),
)
steps = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["success", "error"]), amounts),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_exposition_is_identical_to_prometheus_client(run: list[tuple[str, str, float]]) -> None:
    stock_registry, stock_counter, stock_histogram = pair(Counter, Histogram)
    lean_registry, lean_counter, lean_histogram = pair(SingleWriterCounter, SingleWriterHistogram)
    for registry_counter, registry_histogram in (
        (stock_counter, stock_histogram),
        (lean_counter, lean_histogram),
    ):
        registry_counter.labels("z", "success")  # a series at zero
        for controller, result, amount in run:
            registry_counter.labels(controller, result).inc(abs(amount) if amount == amount else 1)
            registry_histogram.labels(controller).observe(amount)
    assert normalised(generate_latest(lean_registry)) == normalised(generate_latest(stock_registry))
    assert normalised(generate_openmetrics(lean_registry)) == normalised(generate_openmetrics(stock_registry))
    parsed = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(generate_latest(lean_registry).decode())
        for s in family.samples
    }
    assert ("demo_reconcile_total", (("controller", "z"), ("result", "success"))) in parsed


def test_bucket_edges_and_specials_land_where_prometheus_client_puts_them() -> None:
    for value in (0.005, 0.0050000001, 60.0, 61.0, math.inf, -5.0, math.nan):
        stock_registry, _, stock = pair(Counter, Histogram)
        lean_registry, _, lean = pair(SingleWriterCounter, SingleWriterHistogram)
        stock.labels("c").observe(value)
        lean.labels("c").observe(value)
        assert normalised(generate_latest(lean_registry)) == normalised(generate_latest(stock_registry)), (
            value
        )


def test_count_always_equals_the_inf_bucket() -> None:
    registry, _, histogram = pair(SingleWriterCounter, SingleWriterHistogram)
    child = histogram.labels("c")
    for value in (0.1, 3.0, 100.0, math.nan):
        child.observe(value)
    values = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert (
        values[("demo_reconcile_time_seconds_count", None)]
        == values[("demo_reconcile_time_seconds_bucket", "+Inf")]
    )
    assert values[("demo_reconcile_time_seconds_count", None)] == 3
    assert math.isnan(values[("demo_reconcile_time_seconds_sum", None)])


def test_misuse_fails_like_prometheus_client() -> None:
    _, counter, histogram = pair(SingleWriterCounter, SingleWriterHistogram)
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("c", "success").inc(-1)
    with pytest.raises(ValueError, match="missing label values"):
        counter.inc()  # a labelled parent
    with pytest.raises(ValueError, match="missing label values"):
        histogram.observe(1.0)


def test_remove_clear_and_reset() -> None:
    registry, counter, histogram = pair(SingleWriterCounter, SingleWriterHistogram)
    counter.labels("a", "success").inc(3)
    counter.labels("b", "success").inc()
    histogram.labels("a").observe(1.0)
    counter.remove("a", "success")
    histogram.clear()
    assert registry.get_sample_value("demo_reconcile_total", {"controller": "a", "result": "success"}) is None
    assert registry.get_sample_value("demo_reconcile_time_seconds_count", {"controller": "a"}) is None
    child = counter.labels("b", "success")
    child.reset()
    assert registry.get_sample_value("demo_reconcile_total", {"controller": "b", "result": "success"}) == 0
