"""Smoke test of the benchmark harness's quick-mode pieces (benches/harness, benches/run.py).

One tiny workload with our own peer only: the server process starts, bulk creation and churn work,
the peer speaks the protocol (store-ready, events, emit-stamp lags, final report, cache dump), the
harness reads /proc, and the report renders. No timing is asserted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))

from harness import report  # noqa: E402
from harness import scenarios as sc  # noqa: E402
from harness.peers import PEERS, PeerRun  # noqa: E402
from harness.procfs import cpu_seconds, memory_kib, reset_peak  # noqa: E402
from harness.server import BenchServer  # noqa: E402
from harness.workload import configmap_template, pod_template  # noqa: E402


def test_procfs_reads_this_process() -> None:
    mem = memory_kib(os.getpid())
    assert mem["VmRSS"] > 0
    assert mem["VmHWM"] >= mem["VmRSS"]
    assert cpu_seconds(os.getpid()) > 0
    assert reset_peak(os.getpid())
    assert memory_kib(2**22 + 12345) == {}
    assert cpu_seconds(2**22 + 12345) == 0.0


def test_workload_objects_have_managed_fields_and_sizes() -> None:
    import orjson

    cm, pod = configmap_template(), pod_template()
    assert cm["metadata"]["managedFields"]
    assert pod["metadata"]["managedFields"]
    assert 900 <= len(orjson.dumps(cm)) <= 1600
    assert 4000 <= len(orjson.dumps(pod)) <= 7000


def test_our_peer_syncs_follows_churn_and_loses_nothing() -> None:
    with BenchServer(cpu=None) as server:
        server.bulk_create("configmaps", "smoke", 50, configmap_template())
        with PeerRun(PEERS["kube-runtime"], server.kubeconfig, "smoke", cpu=None) as run:
            synced = run.wait_synced(60)
            assert synced["synced"] == 50
            assert synced["VmHWM"] > 0
            assert synced["cpu"] > 0
            index = server.churn("configmaps", "smoke", 100, 200)
            assert server.wait_churn(index, timeout=30)["done"] == 100
            assert run.wait_events(100, timeout=30)
            run.wait_quiet(1.2, 10)  # one more report after the last event
            lagged = [w for w in run.windows(0) if w.get("window")]
            assert sum(w["window"] for w in lagged) == 100  # every churned write carried its emit stamp
            assert all(w["lag_p50"] >= 0 for w in lagged)
            dump = run.stop()
        assert run.final is not None
        assert run.final["events"] == 100
        assert dump == server.versions("configmaps", "smoke")


@pytest.mark.parametrize("name", ["raw (gc on)", "raw (streams)"])
def test_raw_limit_controller_reconciles_every_object_and_every_write(name: str) -> None:
    """The raw limit's controller mode: each object once after the list, then each churned write
    (its keys are distinct and spaced, so none is deduplicated), on both watch transports."""
    with BenchServer(cpu=None) as server:
        server.bulk_create("configmaps", "raw", 40, configmap_template())
        peer = PEERS[name]
        with PeerRun(peer, server.kubeconfig, "raw", mode="controller", concurrency=4, cpu=None) as run:
            assert run.wait_synced(60)["synced"] == 40
            assert run.wait_events(40, timeout=30)
            base = run.wait_quiet(1.2, 10)
            assert base == 40
            index = server.churn("configmaps", "raw", 40, 100)
            assert server.wait_churn(index, timeout=30)["done"] == 40
            assert run.wait_events(80, timeout=30)
            assert run.wait_quiet(1.2, 10) == 80
            dump = run.stop()
        assert dump == server.versions("configmaps", "raw")


def test_run_quick_scenario_one_with_our_peer(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    import run as bench_run

    tiny = sc.Sizes(cold_sync=(30,), sync_timeout=60)
    monkeypatch.setattr(sc.Sizes, "quick", staticmethod(lambda: tiny))
    assert (
        bench_run.main(
            ["--quick", "--scenarios", "1", "--peers", "kube-runtime", "--no-write", "--no-envtest"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "## S1 cold sync" in out
    rows = [line for line in out.splitlines() if line.startswith("| kube-runtime |")]
    assert len(rows) == 2  # ConfigMaps and Pods
    assert "error" not in out.split("## S1 cold sync")[1].split("##")[0].splitlines()[2]


def test_ratios_and_targets_point_the_right_way() -> None:
    s2 = {
        "rows": [
            {"peer": "kube-runtime", "max_sustained": 40_000},
            {"peer": "kopf", "max_sustained": 1_000},
            {"peer": "official", "max_sustained": 20_000},
            {"peer": "raw (gc off)", "max_sustained": 100_000},
        ]
    }
    s1 = {
        "rows": [
            {"peer": "kube-runtime", "resource": "configmaps", "n": 10, "seconds": 3.0},
            {"peer": "controller-runtime", "resource": "configmaps", "n": 10, "seconds": 1.0},
        ]
    }
    report.add_ratios("s2", s2)
    report.add_ratios("s1", s1)
    assert s2["rows"][1]["vs_ours"] == 40.0  # higher is better: ours / theirs
    assert s1["rows"][1]["vs_ours"] == 0.33  # lower is better: theirs / ours
    checks = {c["target"]: c["met"] for c in report.targets({"s1": s1, "s2": s2})}
    assert checks["S2 ingest >= 30x kopf"] is True
    assert checks["S2 ingest >= 4x official"] is False
    assert checks["S2 ingest >= 0.5x raw limit (gc off)"] is False
    assert checks["S1 cold sync configmaps n=10 <= 2x controller-runtime"] is False
    assert "| kopf |" in report.table(s2["rows"])


def test_s2_search_doubles_then_bisects_with_our_peer() -> None:
    tiny = sc.Sizes(
        ingest_cached=20,
        ingest_start=100,
        ingest_floor=50,
        ingest_refine=1,
        ingest_step_seconds=0.3,
        sync_timeout=60,
    )
    with BenchServer(cpu=None) as server:
        result = sc.s2_ingest(server, [PEERS["kube-runtime"]], tiny)
    (row,) = result["rows"]
    assert "error" not in row, row
    steps = row["steps"].split()
    rates = [int(s.split(":")[0]) for s in steps]
    assert rates[:2] == [100, 200]  # doubling from the start rate
    assert row["max_sustained"] > 0
    assert row["bound"] in ("peer", "server")
    failed = [r for r, s in zip(rates, steps, strict=True) if "FAIL" in s]
    if failed:  # then one bisection step between the best pass and the first failure
        first = rates.index(failed[0])
        assert len(rates) == first + 2
        assert rates[-1] == (rates[first - 1] + failed[0]) // 2 if first else rates[-1] == 50


def test_peer_failing_every_step_gives_a_lower_bound_ratio() -> None:
    s2 = {
        "rows": [
            {"peer": "kube-runtime", "max_sustained": 40_000},
            {"peer": "kopf", "max_sustained": 0, "lowest_failed": 500},
            {"peer": "raw (gc off)", "max_sustained": 60_000, "bound": "server"},
        ]
    }
    checks = {c["target"]: c for c in report.targets({"s2": s2})}
    assert checks["S2 ingest >= 30x kopf"]["met"] is True
    assert checks["S2 ingest >= 30x kopf"]["value"].startswith("> 80.0x")
    assert "bound by the server" in checks["S2 ingest >= 0.5x raw limit (gc off)"]["value"]
    assert checks["S2 ingest >= 0.5x raw limit (gc off)"]["met"] is True
