"""The lock-free counter and histogram families expose exactly what prometheus_client's own
classes expose, through its public collector interface."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.loop_metrics import (
    LoopCounter,
    LoopGauge,
    LoopHistogram,
    counter_family,
    gauge_family,
    histogram_family,
    in_multiprocess_mode,
)
from kube_runtime.observe.metrics import RECONCILE_TIME_BUCKETS, ControllerMetrics

_CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)
ROOT = Path(__file__).resolve().parents[1]


def normalised(text: bytes) -> str:
    """The exposition with ``_created`` timestamps blanked (they differ by construction time)."""
    return _CREATED.sub(r"\1 T", text.decode())


def pair(
    counter_cls: Callable[..., Any], histogram_cls: Callable[..., Any]
) -> tuple[CollectorRegistry, Any, Any]:
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
    st.tuples(
        st.sampled_from(["update", "update", "update", "remove", "clear"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["success", "error"]),
        amounts,
    ),
    max_size=40,
)


def assert_same_exposition(ours: CollectorRegistry, stock: CollectorRegistry) -> None:
    assert normalised(generate_latest(ours)) == normalised(generate_latest(stock))
    assert normalised(generate_openmetrics(ours)) == normalised(generate_openmetrics(stock))


@settings(max_examples=100, deadline=None)
@given(steps)
def test_exposition_is_identical_to_prometheus_client(run: list[tuple[str, str, str, float]]) -> None:
    stock_registry, stock_counter, stock_histogram = pair(Counter, Histogram)
    our_registry, our_counter, our_histogram = pair(LoopCounter, LoopHistogram)
    for counter, histogram in ((stock_counter, stock_histogram), (our_counter, our_histogram)):
        counter.labels("z", "success")  # a series at zero
        for op, controller, result, amount in run:
            if op == "remove":
                counter.remove(controller, result)
                histogram.remove(controller)
            elif op == "clear":
                histogram.clear()
            else:
                counter.labels(controller=controller, result=result).inc(abs(amount))
                histogram.labels(controller).observe(amount)
    assert_same_exposition(our_registry, stock_registry)
    parsed = {
        (s.name, tuple(sorted(s.labels.items())))
        for family in text_string_to_metric_families(generate_latest(our_registry).decode())
        for s in family.samples
    }
    assert ("demo_reconcile_total", (("controller", "z"), ("result", "success"))) in parsed


gauge_steps = st.lists(
    st.tuples(
        st.sampled_from(["set", "inc", "dec", "dec", "remove", "clear"]),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["0", "-100", "exceeded_cardinality_limit"]),
        amounts,
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(gauge_steps)
def test_gauge_exposition_is_identical_to_prometheus_client(run: list[tuple[str, str, str, float]]) -> None:
    registries = []
    for gauge_cls in (Gauge, LoopGauge):
        registry = CollectorRegistry()
        gauge = gauge_cls("demo_depth", "Depth", ["name", "priority"], registry=registry)
        gauge.labels("z", "0").set(0)  # a series at zero
        for op, name, priority, amount in run:
            if op == "remove":
                gauge.remove(name, priority)
            elif op == "clear":
                gauge.clear()
            else:
                getattr(gauge.labels(name=name, priority=priority), op)(amount)
        registries.append(registry)
    assert_same_exposition(registries[1], registries[0])


def test_gauge_family_is_ours_outside_multiprocess_mode() -> None:
    family = gauge_family("demo_gauge", "Demo", ["x"], registry=CollectorRegistry())
    assert isinstance(family, LoopGauge) != in_multiprocess_mode()


def test_bucket_edges_and_specials_land_where_prometheus_client_puts_them() -> None:
    for value in (0.005, 0.0050000001, 60.0, 61.0, math.inf, -5.0, math.nan):
        stock_registry, _, stock = pair(Counter, Histogram)
        our_registry, _, ours = pair(LoopCounter, LoopHistogram)
        stock.labels("c").observe(value)
        ours.labels("c").observe(value)
        assert_same_exposition(our_registry, stock_registry)


def test_default_buckets_and_large_bounds_are_spelled_like_prometheus_client() -> None:
    for buckets in (Histogram.DEFAULT_BUCKETS, (1.0, 1e6, 12345678.0, 1e22)):
        stock_registry, ours_registry = CollectorRegistry(), CollectorRegistry()
        Histogram("h", "H", ["x"], buckets=buckets, registry=stock_registry).labels("1").observe(2e6)
        LoopHistogram("h", "H", ["x"], buckets=buckets, registry=ours_registry).labels("1").observe(2e6)
        assert_same_exposition(ours_registry, stock_registry)


def test_count_always_equals_the_inf_bucket() -> None:
    registry, _, histogram = pair(LoopCounter, LoopHistogram)
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


def test_a_scrape_from_another_thread_sees_a_consistent_histogram() -> None:
    registry, _, histogram = pair(LoopCounter, LoopHistogram)
    child = histogram.labels("c")
    stop = threading.Event()
    mismatches: list[tuple[float, float]] = []

    def scrape() -> None:
        while not stop.is_set():
            samples = {
                (s.name, s.labels.get("le")): s.value for metric in registry.collect() for s in metric.samples
            }
            count = samples[("demo_reconcile_time_seconds_count", None)]
            inf = samples[("demo_reconcile_time_seconds_bucket", "+Inf")]
            if count != inf:
                mismatches.append((count, inf))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(200_000):
            child.observe((i % 97) / 10)
    finally:
        stop.set()
        scraper.join()
    assert mismatches == []
    assert registry.get_sample_value("demo_reconcile_time_seconds_count", {"controller": "c"}) == 200_000


def test_misuse_is_a_clear_error() -> None:
    _, counter, histogram = pair(LoopCounter, LoopHistogram)
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("c", "success").inc(-1)
    with pytest.raises(ValueError, match="expected 2 label values"):
        counter.labels("c")
    with pytest.raises(ValueError, match="expected the labels"):
        counter.labels(controller="c")
    with pytest.raises(ValueError, match="expected 1 label values"):
        histogram.remove("a", "b")
    with pytest.raises(ValueError, match="invalid label name 'le'"):
        LoopHistogram("h", "H", ["le"], registry=None)
    with pytest.raises(ValueError, match="invalid label name"):
        LoopCounter("c", "C", ["__reserved"], registry=None)
    with pytest.raises(ValueError, match="at least one label name"):
        LoopCounter("c", "C", [], registry=None)
    with pytest.raises(ValueError, match="strictly increasing"):
        LoopHistogram("h", "H", ["x"], buckets=(2.0, 1.0), registry=None)
    with pytest.raises(ValueError, match="non-negative"):
        LoopHistogram("h", "H", ["x"], buckets=(-1.0, 1.0), registry=None)
    with pytest.raises(ValueError, match="_total twice"):
        LoopCounter("c_total_total", "C", ["x"], registry=None)


def test_registering_a_taken_name_raises_naming_it() -> None:
    registry = CollectorRegistry()
    LoopCounter("demo_total", "Demo", ["x"], registry=registry)
    with pytest.raises(ValueError, match="demo_total"):
        LoopCounter("demo", "Demo again", ["x"], registry=registry)
    with pytest.raises(ValueError, match="demo_total"):
        Counter("demo", "A stock one", ["x"], registry=registry)
    LoopHistogram("lat_seconds", "Latency", ["x"], registry=registry)
    with pytest.raises(ValueError, match="lat_seconds_bucket"):
        Histogram("lat_seconds", "Latency", ["x"], registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        LoopHistogram("lat_seconds", "Latency", ["y"], registry=registry)


def test_remove_clear_and_reset() -> None:
    registry, counter, histogram = pair(LoopCounter, LoopHistogram)
    counter.labels("a", "success").inc(3)
    counter.labels("b", "success").inc()
    histogram.labels("a").observe(1.0)
    counter.remove("a", "success")
    counter.remove("never", "made")  # nothing to remove: no error
    histogram.clear()
    assert registry.get_sample_value("demo_reconcile_total", {"controller": "a", "result": "success"}) is None
    assert registry.get_sample_value("demo_reconcile_time_seconds_count", {"controller": "a"}) is None
    child = counter.labels("b", "success")
    child.reset()
    assert registry.get_sample_value("demo_reconcile_total", {"controller": "b", "result": "success"}) == 0
    assert counter.labels("b", "success") is child  # the same child until removed


def _run(script: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_created_series_follow_prometheus_clients_environment_switch() -> None:
    script = """
        import re
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
        from kube_runtime.loop_metrics import LoopCounter, LoopHistogram
        out = []
        for counter, histogram in ((Counter, Histogram), (LoopCounter, LoopHistogram)):
            registry = CollectorRegistry()
            counter("c_total", "C", ["x"], registry=registry).labels("1").inc(2)
            histogram("h", "H", ["x"], buckets=(1.0,), registry=registry).labels("1").observe(0.5)
            out.append(re.sub(r"(_created\\S*) \\S+", r"\\1 T", generate_latest(registry).decode()))
        assert out[0] == out[1], out
        print(out[1])
    """
    disabled = _run(script, PROMETHEUS_DISABLE_CREATED_SERIES="true")
    assert "c_total" in disabled
    assert "_created" not in disabled
    enabled = _run(script, PROMETHEUS_DISABLE_CREATED_SERIES="false")
    assert "c_created" in enabled
    assert "h_created" in enabled


def test_multiprocess_mode_uses_prometheus_clients_shared_files(tmp_path: Path) -> None:
    script = """
        import anyio
        from prometheus_client import CollectorRegistry, Counter, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        from kube_runtime.controller.action import Action
        from kube_runtime.controller.result import Reconciled
        from kube_runtime.observe.metrics import ResultRecorder
        from kube_runtime.store.object_ref import ObjectRef

        async def main() -> None:
            recorder = ResultRecorder("mp", registry=CollectorRegistry(), hot_loops=False)
            assert isinstance(recorder.metrics.reconcile_total, Counter)
            ref = ObjectRef("ConfigMap", "a", "ns")
            recorder.record(Reconciled(ref, Action.await_change(), duration=0.2))

        anyio.run(main)
        scrape = CollectorRegistry()
        MultiProcessCollector(scrape)
        print(generate_latest(scrape).decode())
    """
    exposed = _run(script, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    assert 'controller_runtime_reconcile_total{controller="mp",result="success"} 1.0' in exposed
    assert 'controller_runtime_reconcile_time_seconds_count{controller="mp"} 1.0' in exposed


def test_the_families_are_ours_outside_multiprocess_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    assert not in_multiprocess_mode()
    metrics = ControllerMetrics(CollectorRegistry())
    assert isinstance(metrics.reconcile_total, LoopCounter)
    assert isinstance(metrics.reconcile_time_seconds, LoopHistogram)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent")
    assert isinstance(counter_family("c", "C", ["x"], registry=CollectorRegistry()), Counter)
    assert isinstance(
        histogram_family("h", "H", ["x"], buckets=(1.0,), registry=CollectorRegistry()), Histogram
    )
