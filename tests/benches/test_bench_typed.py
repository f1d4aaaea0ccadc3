"""benches/bench_typed.py runs and prints each figure (tiny sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_typed_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "benches/bench_typed.py", "--objects", "200", "--seconds", "0.01"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "dict path: store read",
        "typed path: store read + model build",
        "to_dict(model)",
        "compact store",
    ):
        assert label in result.stdout, result.stdout
