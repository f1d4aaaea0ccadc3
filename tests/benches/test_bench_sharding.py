"""benches/bench_sharding.py runs and prints each figure (tiny sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_sharding_prints_every_figure() -> None:
    command = [sys.executable, "benches/bench_sharding.py", "--identities", "20000", "--objects", "20"]
    result = subprocess.run(
        [*command, "--rings", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # PATH and HOME kept for any tool lookup
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "spread: max/mean",
        "moved on join",
        "moved on leave",
        "CPU per placement",
        "ring of 2: 20 objects",
        "MiB resident",
        "CPU per reconcile",
        "its objects reconciled elsewhere within",
    ):
        assert label in result.stdout, result.stdout
