"""The README's performance table is what benches/readme_table.py renders from the results files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "benches" / "readme_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_table"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


table = _load()
_RAW = "raw (gc off)"


def _write(directory: Path, name: str, date: str, results: dict[str, Any], *, cached: int = 20000) -> None:
    meta = {"mode": "full", "date": date, "sizes": {"ingest_cached": cached}}
    (directory / name).write_text(json.dumps({"meta": meta, "results": results}))


def _cold(peer: str, seconds: float) -> dict[str, Any]:
    return {"peer": peer, "resource": "configmaps", "n": 100_000, "seconds": seconds, "peak_rss_mib": 100.0}


def _ingest(peer: str, rate: int) -> dict[str, Any]:
    return {"peer": peer, "max_sustained": rate, "cpu_us_per_event": 10.0}


def _rendered_row(results: Path, start: str) -> str:
    """The table row rendered from ``results`` that starts with ``start``."""
    text = table.render(table.current_runs(results))
    return next(line for line in text.splitlines() if line.startswith(start))


def test_readme_table_matches_the_committed_results() -> None:
    assert table.main(["--check", str(ROOT / "README.md")]) == 0


def test_the_newest_run_of_a_scenario_is_the_one_shown(tmp_path: Path) -> None:
    _write(tmp_path, "old.json", "2026-01-01 00:00 UTC", {"s1": {"rows": [_cold("kube-runtime", 9.0)]}})
    _write(
        tmp_path,
        "new.json",
        "2026-02-01 00:00 UTC",
        {"s1": {"rows": [_cold("kube-runtime", 2.0), _cold("kube-rs", 3.0), _cold(_RAW, 4.0)]}},
    )
    _write(tmp_path, "quick.json", "2026-03-01 00:00 UTC", {"s1": {"rows": [_cold("kube-runtime", 0.1)]}})
    quick = json.loads((tmp_path / "quick.json").read_text())
    quick["meta"]["mode"] = "quick"
    (tmp_path / "quick.json").write_text(json.dumps(quick))

    text = table.render(table.current_runs(tmp_path))

    row = next(line for line in text.splitlines() if line.startswith("| cold sync, 100k ConfigMaps"))
    raw = "raw httpx+orjson loop, GC off, 4.0 s"
    assert row == f"| cold sync, 100k ConfigMaps | 2.0 s | kube-rs 3.0 s | {raw} |"
    assert "`new.json`" in text
    assert "old.json" not in text
    assert "quick.json" not in text


def test_ingest_takes_a_peer_that_did_not_sync_from_a_smaller_run(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "s2.json",
        "2026-02-01 00:00 UTC",
        {
            "s2": {
                "rows": [_ingest("kube-runtime", 50_000), _ingest("kopf", 0), _ingest("raw (gc off)", 40_000)]
            }
        },
    )
    _write(
        tmp_path,
        "s2-kopf.json",
        "2026-02-02 00:00 UTC",
        {"s2": {"rows": [_ingest("kopf", 1000)]}},
        cached=2000,
    )

    row = _rendered_row(tmp_path, "| steady ingest")
    assert row == (
        "| steady ingest, 20k cached | 50k events/s, 10.0 µs CPU/event | kopf 1.0k (at 2k cached) "
        "| raw loop 40k (1.25x) |"
    )


def test_check_fails_on_a_stale_readme_and_write_repairs_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    _write(results, "a.json", "2026-02-01 00:00 UTC", {"s1": {"rows": [_cold("kube-runtime", 2.0)]}})
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{table.BEGIN}\nold\n{table.END}\n\nafter\n")

    assert table.main(["--results", str(results), "--check", str(readme)]) == 1
    assert table.main(["--results", str(results), "--write", str(readme)]) == 0
    assert table.main(["--results", str(results), "--check", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n")
    assert text.endswith("\n\nafter\n")
    assert "| 2.0 s |" in text


def _s6_row(observability: str, pair: int, cpu: float) -> dict[str, Any]:
    return {"peer": "kube-runtime", "observability": observability, "pair": pair, "cpu_us_per_reconcile": cpu}


def test_observability_is_the_median_of_paired_differences(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benches"))
    from harness.latency import observability_summary

    rows = [
        _s6_row("off", 1, 150.0),
        _s6_row("on", 1, 158.0),
        _s6_row("off", 2, 190.0),  # a noisy pair: both runs slow, the difference still small
        _s6_row("on", 2, 196.0),
        _s6_row("off", 3, 140.0),
        _s6_row("on", 3, 175.0),
        _s6_row("off", 4, 145.0),  # a pair whose "on" run failed is left out
    ]
    summary = observability_summary(rows)
    assert summary == {
        "pairs": 3,
        "off_median": 150.0,
        "on_median": 175.0,
        "added": [8.0, 6.0, 35.0],
        "added_median": 8.0,
    }
    _write(tmp_path, "s6.json", "2026-02-01 00:00 UTC", {"s6": {"rows": rows, "summary": summary}})

    row = _rendered_row(tmp_path, "| metrics and tracing")
    assert row == (
        "| metrics and tracing on (default sampling) | +8 µs CPU/reconcile |  | S3 at c=8, median of 3 "
        "interleaved off/on pairs (each pair +6 to +35 µs); 150 µs off |"
    )


def test_observability_shows_the_instruction_count_when_the_run_has_one(tmp_path: Path) -> None:
    rows = [_s6_row("off", 1, 150.0), _s6_row("on", 1, 170.0)]
    summary = {
        "pairs": 1,
        "off_median": 150.0,
        "on_median": 170.0,
        "added": [20.0],
        "added_median": 20.0,
        "instructions": {"off": 361_366, "on": 408_406, "added_pct": 13.0},
    }
    _write(tmp_path, "s6.json", "2026-02-01 00:00 UTC", {"s6": {"rows": rows, "summary": summary}})

    row = _rendered_row(tmp_path, "| metrics and tracing")
    assert "| +20 µs CPU/reconcile, +13.0% instructions |" in row
    assert row.endswith("; instructions per reconcile (valgrind) 361k off, 408k on |")

    summary["instructions"] = {
        **summary["instructions"],
        "metrics_added": 12_345,
        "tracing_added": 30_100,
    }
    _write(tmp_path, "s6.json", "2026-02-01 00:00 UTC", {"s6": {"rows": rows, "summary": summary}})
    row = _rendered_row(tmp_path, "| metrics and tracing")
    assert row.endswith(
        "; instructions per reconcile (valgrind) 361k off, 408k on "
        "(metrics alone +12.3k, tracing alone +30.1k) |"
    )


def _s3_row(peer: str, cpu: float) -> dict[str, Any]:
    return {
        "peer": peer,
        "concurrency": 8,
        "reconcile_ms": 0,
        "p50_ms": 0.3,
        "p99_ms": 0.8,
        "cpu_us_per_reconcile": cpu,
    }


def _write_s3(directory: Path, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    _write(directory, "s3.json", "2026-02-01 00:00 UTC", {"s3": {"rows": rows, "summary": summary}})


def test_latency_shows_each_peers_instruction_count_when_the_run_has_them(tmp_path: Path) -> None:
    rows = [
        _s3_row("kube-runtime", 250.0),
        _s3_row("kube-runtime (uvloop)", 220.0),
        _s3_row("kube-rs", 115.0),
        _s3_row("controller-runtime", 240.0),
    ]
    counted = {
        "kube-runtime": 345_700,
        "kube-runtime (uvloop)": 281_300,
        "kube-rs": 126_500,
        "controller-runtime": None,
    }
    _write_s3(tmp_path, rows, {"instructions": counted})

    row = _rendered_row(tmp_path, "| scheduling latency")
    assert row.endswith("; instructions per reconcile (valgrind) ours 346k (on uvloop 281k), kube-rs 126k |")


def test_latency_without_instruction_counts_says_nothing_of_them(tmp_path: Path) -> None:
    _write(tmp_path, "s3.json", "2026-02-01 00:00 UTC", {"s3": {"rows": [_s3_row("kube-runtime", 250.0)]}})

    row = _rendered_row(tmp_path, "| scheduling latency")
    assert "instructions" not in row
    assert row.endswith("CPU of the whole controller process |")


def test_latency_names_the_python_floor_when_the_run_has_it(tmp_path: Path) -> None:
    rows = [_s3_row("kube-runtime", 250.0), _s3_row("kube-rs", 115.0), _s3_row("raw (streams)", 84.0)]
    counted = {"kube-runtime": 345_700, "kube-rs": 126_500, "raw (streams)": 61_200}
    _write_s3(tmp_path, rows, {"instructions": counted})

    row = _rendered_row(tmp_path, "| scheduling latency")
    assert "; Python floor (`raw (streams)`: no runtime) 84 µs;" in row
    assert row.endswith("ours 346k, kube-rs 126k, Python floor 61k |")
    assert "raw" not in row.split("|")[3]  # not listed among the peers


def test_latency_cpu_is_the_median_of_the_rotating_rounds_when_the_run_has_them(tmp_path: Path) -> None:
    rows = [_s3_row("kube-runtime", 250.0), _s3_row("kube-rs", 115.0), _s3_row("raw (streams)", 84.0)]
    rounds = {
        "rounds": 3,
        "cpu_us": {"kube-runtime": [140.0, 150.0, 190.0], "kube-rs": [120.0, 118.0, 150.0]},
        "median": {"kube-runtime": 150.0, "kube-rs": 120.0, "raw (streams)": 80.0},
        "ours_over": {"kube-rs": {"per_round": [1.17, 1.27, 1.27], "median": 1.27}},
    }
    _write_s3(tmp_path, rows, {"cpu_rounds": rounds})

    row = _rendered_row(tmp_path, "| scheduling latency")
    assert "| p50 0.30 ms, p99 0.8 ms, 150 µs CPU/reconcile | kube-rs 0.30 / 0.8 ms, 120 µs |" in row
    assert "(median of 3 rounds in rotating order; ours over kube-rs per round 1.17, 1.27, 1.27)" in row
    assert row.endswith("Python floor (`raw (streams)`: no runtime) 80 µs |")


def test_cpu_rounds_rotate_the_order_and_take_each_rounds_ratio(monkeypatch: Any) -> None:
    sys.path.insert(0, str(ROOT / "benches"))
    from harness import latency
    from harness.scenarios import Sizes

    class _Peer:
        def __init__(self, name: str) -> None:
            self.name = name

    cpu = iter([100.0, 50.0, 0.0, 60.0, 120.0, 40.0, 130.0, 70.0, 45.0])
    order: list[str] = []

    def fake_run(_server: Any, peer: Any, *_args: Any) -> dict[str, Any]:
        order.append(peer.name)
        return {"cpu_us_per_reconcile": next(cpu)}  # 0.0: a failed run, no value

    monkeypatch.setattr(latency, "latency_run", fake_run)
    peers: Any = [_Peer("kube-runtime"), _Peer("kube-rs"), _Peer("raw (streams)")]
    out = latency.cpu_rounds(None, peers, "ns", 10, Sizes(latency_cpu_rounds=3))  # type: ignore[arg-type]
    assert order == [
        *("kube-runtime", "kube-rs", "raw (streams)"),
        *("kube-rs", "raw (streams)", "kube-runtime"),
        *("raw (streams)", "kube-runtime", "kube-rs"),
    ]
    assert out["cpu_us"] == {
        "kube-runtime": [100.0, 40.0, 70.0],
        "kube-rs": [50.0, 60.0, 45.0],
        "raw (streams)": [120.0, 130.0],
    }
    assert out["median"] == {"kube-runtime": 70.0, "kube-rs": 50.0, "raw (streams)": 125.0}
    assert out["ours_over"]["kube-rs"] == {"per_round": [2.0, 0.67, 1.56], "median": 1.56}
    assert out["ours_over"]["raw (streams)"] == {"per_round": [0.33, 0.54], "median": 0.44}
