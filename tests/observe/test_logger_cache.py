"""Cached structlog loggers (``configure_logging`` turns structlog's cache on) still follow a later
configuration, and what a JSON line holds: its fields in order, odd characters escaped, exceptions
rendered without locals."""

from __future__ import annotations

import contextvars
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from structlog.testing import capture_logs

from kube_runtime.controller.action import ReconcileReason
from kube_runtime.controller.context import ReconcileInfo, _current
from kube_runtime.observe.logging import configure_logging
from kube_runtime.store.object_ref import ObjectRef

#: Module-level, as in any application module; first called in a test, so cached there.
log = structlog.get_logger("cache.test")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    yield stream
    configure_logging("warning", stream=io.StringIO())


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_cached_logger_is_seen_by_capture_logs(output: io.StringIO) -> None:
    log.info("before")  # assembled and cached here
    bound = log.bind(extra="kept")
    with capture_logs() as captured:
        log.info("captured", n=1)
        bound.warning("bound too")
    log.info("after")
    assert captured == [
        {"event": "captured", "n": 1, "log_level": "info"},
        {"event": "bound too", "extra": "kept", "log_level": "warning"},
    ]
    assert [line["event"] for line in lines(output)] == ["before", "after"]


def test_a_logger_first_used_inside_capture_logs_logs_normally_after_it(output: io.StringIO) -> None:
    fresh = structlog.get_logger("cache.first-captured")
    with capture_logs() as captured:
        fresh.info("captured")  # assembled and cached under capture_logs' processors
    fresh.info("written")
    assert [entry["event"] for entry in captured] == ["captured"]
    assert [line["event"] for line in lines(output)] == ["written"]


def test_a_cached_logger_writes_where_a_later_configure_logging_says(output: io.StringIO) -> None:
    log.info("first")
    second = io.StringIO()
    configure_logging("info", stream=second)
    log.info("second")
    configure_logging("warning", stream=second)
    log.info("filtered")
    assert [line["event"] for line in lines(output)] == ["first"]
    assert [line["event"] for line in lines(second)] == ["second"]


def test_a_cached_logger_follows_a_structlog_configure_of_its_own(output: io.StringIO) -> None:
    log.info("ours")
    printed = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
        logger_factory=structlog.PrintLoggerFactory(printed),
        wrapper_class=structlog.BoundLogger,
    )
    try:
        log.info("theirs", n=2)
    finally:
        configure_logging("info", stream=output)
    log.info("ours again")
    assert printed.getvalue() == "event='theirs' n=2\n"
    assert [line["event"] for line in lines(output)] == ["ours", "ours again"]


@dataclass
class Secretive:
    token: str

    def __repr__(self) -> str:
        return "Secretive(token=<hidden>)"


def in_a_reconcile(fn: object) -> None:
    def run() -> None:
        ref = ObjectRef("ConfigMap", "cm-1", "default")
        _current.set(ReconcileInfo(ref, ReconcileReason.OBJECT_UPDATED, "abc-1", "cms"))
        span = NonRecordingSpan(SpanContext(0xAB, 0xCD, False, TraceFlags(TraceFlags.SAMPLED)))
        otel_context.attach(trace.set_span_in_context(span))
        fn()  # type: ignore[operator]

    contextvars.copy_context().run(run)


def test_a_json_line_holds_its_fields_in_order_with_odd_characters_escaped(output: io.StringIO) -> None:
    odd = 'quote " backslash \\ newline \n tab \t bell \x07 snowman \u2603 nul \x00'
    in_a_reconcile(lambda: log.info(odd, value=odd, numbers={1: "one"}, obj=Secretive("s3cret")))
    text = output.getvalue()
    assert text.count("\n") == 1
    assert "\\n" in text
    assert '\\"' in text
    assert "\\u0007" in text
    assert "\\u0000" in text
    assert "\u2603" in text  # UTF-8, not escaped
    assert "s3cret" not in text
    (entry,) = lines(output)
    assert isinstance(entry.pop("timestamp"), str)
    assert entry == {
        "value": odd,
        "numbers": {"1": "one"},
        "obj": "Secretive(token=<hidden>)",
        "event": odd,
        "level": "info",
        "logger": "cache.test",
        "object.ref": "ConfigMap.v1./cm-1.default",
        "object.reason": "object updated",
        "reconcile_id": "abc-1",
        "controller": "cms",
        "span": {
            "name": "reconciling object",
            "object.ref": "ConfigMap.v1./cm-1.default",
            "object.reason": "object updated",
        },
        "trace_id": f"{0xAB:032x}",
        "span_id": f"{0xCD:016x}",
    }
    assert list(entry) == [
        "value",
        "numbers",
        "obj",
        "event",
        "level",
        "logger",
        "object.ref",
        "object.reason",
        "reconcile_id",
        "controller",
        "span",
        "trace_id",
        "span_id",
    ]


def test_fields_a_line_sets_itself_win_over_the_reconcile_context(output: io.StringIO) -> None:
    in_a_reconcile(lambda: log.info("mine", controller="own", span="own", trace_id="own"))
    (entry,) = lines(output)
    assert (entry["controller"], entry["span"], entry["trace_id"]) == ("own", "own", "own")
    assert entry["reconcile_id"] == "abc-1"


def test_an_exception_is_rendered_without_locals(output: io.StringIO) -> None:
    def fail() -> None:
        secret = "do-not-log-me"  # noqa: F841  # a local the traceback must not show
        raise KeyError("missing")

    try:
        fail()
    except KeyError:
        log.exception("failed", attempt=3)
    text = output.getvalue()
    assert "do-not-log-me" not in text
    (entry,) = lines(output)
    assert entry["level"] == "error"
    assert entry["attempt"] == 3
    [exception] = entry["exception"]  # type: ignore[misc]
    assert exception["exc_type"] == "KeyError"
    assert exception["exc_value"] == "'missing'"
    assert exception["frames"][-1]["name"] == "fail"
    assert "locals" not in exception["frames"][-1]


@pytest.mark.parametrize(
    ("method", "threshold", "level"),
    [
        ("debug", "info", "debug"),
        ("info", "warning", "info"),
        ("warning", "error", "warning"),
        ("warn", "error", "warning"),
        ("error", "critical", "error"),
        ("exception", "critical", "error"),
        ("critical", "off", "critical"),
        ("fatal", "off", "critical"),
    ],
)
def test_each_level_method_writes_at_its_level_and_is_silent_below_it(
    method: str, threshold: str, level: str
) -> None:
    """Every level method of a cached logger and of a bound one: one line with structlog's level
    name when enabled, nothing when the logger's level is above it; under structlog's own
    configuration (``capture_logs``) an enabled line is captured under the same level."""
    for bound in (False, True):
        logger = structlog.get_logger("levels.test")
        if bound:
            logger = logger.bind(bound=True)
        stream = io.StringIO()
        configure_logging(f"{level if level != 'warning' else 'warn'}", stream=stream)
        try:
            try:
                raise LookupError("current")
            except LookupError:  # exception() renders the current exception; the others do not
                getattr(logger, method)("shown", n=1)
            with capture_logs() as captured:
                getattr(logger, method)("captured", n=3)
            configure_logging(threshold, stream=stream)
            getattr(logger, method)("hidden", n=2)
        finally:
            configure_logging("warning", stream=io.StringIO())
        (entry,) = lines(stream)
        assert (entry["event"], entry["level"], entry["n"]) == ("shown", level, 1)
        assert entry.get("bound") is (True if bound else None)
        assert ("exception" in entry) is (method == "exception")
        assert [(c["event"], c["log_level"]) for c in captured] == [("captured", level)]
