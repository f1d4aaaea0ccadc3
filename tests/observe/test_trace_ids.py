"""Every line logged inside a reconcile carries ``trace_id``/``span_id``, with or without a tracer
provider: without one, from an unrecorded span with fresh ids per reconcile; with one whose
sampler drops the span, from the SDK's non-recording span. Run in a fresh process each, since a
tracer provider can be installed only once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("mode", ["none", "unsampled"])
def test_reconcile_lines_carry_trace_ids_without_an_exporter(mode: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.observe.untraced_reconciles", mode],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    inside = [line for line in lines if line.get("logger") == "untraced"]
    assert len(inside) == 4, out.stdout + out.stderr
    by_object: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for line in inside:
        trace_id, span_id = line["trace_id"], line["span_id"]
        assert len(trace_id) == 32
        assert len(span_id) == 16
        assert int(trace_id, 16) != 0
        by_object[line["name"]].add((trace_id, span_id))
    assert sorted(by_object) == ["a", "b"]
    assert all(len(ids) == 1 for ids in by_object.values())  # one reconcile: one span
    assert by_object["a"] != by_object["b"]  # two reconciles: two traces
