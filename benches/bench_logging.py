"""Cost of one JSON log line inside a reconcile, as ``configure_logging()`` sets logging up.

The line is what a reconciler writes with a module-level structlog logger
(``log.info("reconciling", generation=3)``) while a reconcile is current: it carries the
reconcile's fields (``object.ref``, ``object.reason``, ``reconcile_id``, ``controller``, ``span``),
``trace_id``/``span_id`` of the reconcile's (unrecorded) span, a timestamp, level and logger name,
and goes through redaction to an in-memory text stream. Also measured: the same with a logger
bound once (``structlog.get_logger(name).bind()``, which skips structlog's per-call bind of a
module-level logger), a stdlib ``logging`` line through the same handler, and a filtered-out debug
call. CPU microseconds per line, best of five
rounds.

    python benches/bench_logging.py [--lines N]

It measures the kube_runtime it imports: ``PYTHONPATH=<checkout> python benches/bench_logging.py``.
"""

from __future__ import annotations

import argparse
import contextvars
import io
import logging
import time
from collections.abc import Callable

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kube_runtime.controller.action import ReconcileReason
from kube_runtime.controller.context import ReconcileInfo, _current
from kube_runtime.observe.logging import configure_logging
from kube_runtime.store.object_ref import ObjectRef


def per_line_us(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """CPU microseconds per call, best of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time_ns() - start) / n / 1000)
    return best


def in_reconcile() -> None:
    """Make this context look like a running reconcile: its info and its current span."""
    ref = ObjectRef("ConfigMap", "cm-1", "default", uid="0b9c1f3e", resource_version="4711")
    _current.set(ReconcileInfo(ref, ReconcileReason.OBJECT_UPDATED, "1f2e3d4c5b6a-1", "configmaps"))
    span = NonRecordingSpan(
        SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(1))
    )
    otel_context.attach(trace.set_span_in_context(span))


def measure(lines: int) -> dict[str, float]:
    stream = io.StringIO()
    configure_logging("info,bench.quiet=warning", fmt="json", stream=stream)
    log = structlog.get_logger("bench.reconciler")
    bound = structlog.get_logger("bench.reconciler").bind()
    quiet = structlog.get_logger("bench.quiet")
    stdlib = logging.getLogger("bench.stdlib")

    def structlog_line() -> None:
        log.info("reconciling", generation=3)

    def bound_line() -> None:
        bound.info("reconciling", generation=3)

    def stdlib_line() -> None:
        stdlib.info("reconciling %s", "cm-1")

    def drain() -> None:
        stream.seek(0)
        stream.truncate()

    out: dict[str, float] = {}

    def run() -> None:
        in_reconcile()
        structlog_line()
        print("sample line:", stream.getvalue().strip())
        drain()
        out["structlog JSON line in a reconcile"] = per_line_us(structlog_line, lines)
        drain()
        out["same, logger bound once"] = per_line_us(bound_line, lines)
        drain()
        out["stdlib JSON line in a reconcile"] = per_line_us(stdlib_line, lines)
        drain()
        out["filtered-out debug call"] = per_line_us(lambda: quiet.debug("hidden", x=1), lines * 10)

    contextvars.copy_context().run(run)
    configure_logging("warning", stream=io.StringIO())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000, help="lines per round")
    args = parser.parse_args()
    for name, us in measure(args.lines).items():
        print(f"{name:40s} {us:8.2f} us")


if __name__ == "__main__":
    main()
