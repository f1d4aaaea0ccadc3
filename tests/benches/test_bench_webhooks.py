"""benches/bench_webhooks.py runs and prints every figure (tiny sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_webhooks_reports_latency_throughput_and_cpu_per_review() -> None:
    result = subprocess.run(
        [sys.executable, "benches/bench_webhooks.py", "--requests", "600", "--concurrency", "2", "--json"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    for path in ("/validate", "/mutate"):
        figures = report[path]
        assert figures["requests"] == 600
        for name in ("requests_per_second", "p50_ms", "p99_ms", "server_cpu_us_per_review"):
            assert figures[name] > 0, (path, name)
        assert figures["p50_ms"] <= figures["p99_ms"]
