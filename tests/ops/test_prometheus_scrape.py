"""A real Prometheus server scrapes a kube-runtime /metrics target with the shipped rules loaded.

Targets:

* ``loopback-exporter`` (always): tests/ops/loopback_exporter.py exposes every documented metric family
  with steady synthetic values, so exact recorded values can be checked.
* ``configmapgen-demo`` (once ``python -m examples.configmapgen`` accepts ``--metrics-bind-address``):
  the example controller on the embedded API server, both as subprocesses, with generators being
  created and changed while Prometheus scrapes.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.ops.demo_target import DemoController
from tests.ops.grafana_queries import concrete, dashboard_queries
from tests.ops.loopback_exporter import EXPECTED_ERROR_RATIO, LoopbackExporter
from tests.ops.prometheus_server import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
RULES = yaml.safe_load((REPO / "monitoring" / "rules" / "kube-runtime.rules.yaml").read_text())
RECORDS = [rule["record"] for group in RULES["groups"] for rule in group["rules"] if "record" in rule]
ALERTS = [rule["alert"] for group in RULES["groups"] for rule in group["rules"] if "alert" in rule]
DASHBOARD = json.loads((REPO / "monitoring" / "dashboards" / "kube-runtime.json").read_text())
# Families a live controller exports from its first reconcile on (others appear with their first event).
LIVE_FAMILIES = (
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_time_seconds",
    "workqueue_depth",
    "kube_runtime_watch_events_total",
    "kube_runtime_store_ready",
    "process_resident_memory_bytes",
)


def _demo_has_metrics_port() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "examples.configmapgen", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--metrics-bind-address" in proc.stdout


TARGETS = ["loopback-exporter", *(["configmapgen-demo"] if _demo_has_metrics_port() else [])]


@dataclass
class Scrape:
    target: str
    prom: PrometheusServer


def _finite_recordings(prom: PrometheusServer) -> bool:
    for record in RECORDS:
        samples = prom.query(record)
        if not samples or not all(math.isfinite(_value(s)) for s in samples):
            return False
    return True


@pytest.fixture(scope="module", params=TARGETS)
def scrape(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrape]:
    workdir = tmp_path_factory.mktemp(request.param)
    with ExitStack() as stack:
        if request.param == "loopback-exporter":
            address = stack.enter_context(LoopbackExporter()).address
            churn = None
        else:
            demo = stack.enter_context(DemoController(workdir))
            address, churn = demo.metrics_address, demo.churn
        prom = stack.enter_context(PrometheusServer(workdir, address))

        def recorded() -> bool | None:
            if churn is not None:
                churn()  # keep reconciles happening so every rate has something to measure
            return _finite_recordings(prom) or None

        # Rates need two samples inside their window: wait until every recording rule has a value.
        prom.wait_for(recorded, what="every recording rule to return finite data", timeout=120)
        yield Scrape(request.param, prom)


def _value(sample: dict[str, object]) -> float:
    value = sample["value"]
    assert isinstance(value, list)
    return float(value[1])


def test_the_target_is_scraped_as_job_kube_runtime(scrape: Scrape) -> None:
    (target,) = scrape.prom.api("targets")["activeTargets"]
    assert target["health"] == "up", target
    assert target["labels"]["job"] == "kube-runtime"
    assert [_value(s) for s in scrape.prom.query('up{job="kube-runtime"}')] == [1.0]


@pytest.mark.parametrize("record", RECORDS)
def test_recording_rule_returns_finite_data(scrape: Scrape, record: str) -> None:
    samples = scrape.prom.query(record)
    assert samples, f"{record} returned nothing"
    for sample in samples:
        assert sample["metric"]["job"] == "kube-runtime"
        assert math.isfinite(_value(sample)), sample


def test_recorded_values_match_the_target(scrape: Scrape) -> None:
    prom = scrape.prom
    quantiles = [
        _value(prom.query(f"controller:controller_runtime_reconcile_time_seconds:{q}_rate5m")[0])
        for q in ("p50", "p95", "p99")
    ]
    assert 0 < quantiles[0] <= quantiles[1] <= quantiles[2]
    (rate,) = prom.query("controller:controller_runtime_reconcile_total:rate5m")
    assert _value(rate) > 0
    if scrape.target != "loopback-exporter":
        return
    (ratio,) = prom.query("controller:controller_runtime_reconcile_errors:ratio_rate5m")
    assert _value(ratio) == pytest.approx(EXPECTED_ERROR_RATIO, rel=1e-3)
    # A young series has too few samples for rate() to reach the true 11/s (it divides by the full 5m
    # window), but the per-result rates keep the target's 10:1 proportion.
    by_result = {
        s["metric"]["result"]: _value(s)
        for s in prom.query("controller_result:controller_runtime_reconcile_total:rate5m")
    }
    assert by_result["requeue"] == 0.0
    assert by_result["success"] / by_result["error"] == pytest.approx(10.0, rel=1e-3)
    assert quantiles[2] <= 0.5
    (depth,) = prom.query("controller:workqueue_depth:sum")
    assert _value(depth) == 3.0


def test_every_rule_evaluates_without_error(scrape: Scrape) -> None:
    rules = [rule for group in scrape.prom.api("rules")["groups"] for rule in group["rules"]]
    assert sorted(rule["name"] for rule in rules) == sorted(RECORDS + ALERTS)
    for rule in rules:
        assert rule["health"] == "ok", rule


def test_a_healthy_target_raises_no_alert(scrape: Scrape) -> None:
    """Pending counts too: no alert condition may hold for a healthy controller."""
    assert scrape.prom.api("alerts")["alerts"] == []


def test_every_dashboard_query_runs(scrape: Scrape) -> None:
    """Each panel query executes on the server; those on kube-runtime's own metrics return series."""
    empty = []
    for query in dashboard_queries(DASHBOARD):
        result = scrape.prom.query(concrete(query.expr))
        if result or "container_" in query.expr:
            continue
        if scrape.target == "loopback-exporter" or any(family in query.expr for family in LIVE_FAMILIES):
            empty.append(query.where)
    assert not empty, f"no data for {empty}"
