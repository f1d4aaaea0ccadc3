"""Logging setup: RUST_LOG-style per-logger levels over structlog and stdlib, JSON lines with the
trace context stamped in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kube_runtime.observe.logging import (
    TRACE,
    LogFilter,
    LogFilterError,
    configure_logging,
    parse_log_filter,
)


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    configure_logging("warning", stream=io.StringIO())  # leave quiet, known levels behind


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_parse_filter_levels_targets_and_rust_paths() -> None:
    parsed = parse_log_filter("warn, kube_runtime=info ,my_controller::reconcile=trace,httpx=off")
    assert parsed.default == logging.WARNING
    assert parsed.targets == {
        "kube_runtime": logging.INFO,
        "my_controller.reconcile": TRACE,
        "httpx": logging.CRITICAL + 10,
    }


def test_parse_filter_last_directive_wins_and_empty_is_info() -> None:
    assert parse_log_filter("a=debug,a=error").targets == {"a": logging.ERROR}
    assert parse_log_filter("") == LogFilter()


def test_a_bare_logger_path_enables_everything_it_logs_as_in_rust_log() -> None:
    parsed = parse_log_filter("info,kube_runtime.watcher,my_app::reconcile")
    assert parsed.default == logging.INFO
    assert parsed.targets == {"kube_runtime.watcher": TRACE, "my_app.reconcile": TRACE}
    with pytest.raises(LogFilterError, match="loud=trace"):
        parse_log_filter("info,loud")  # one word: a misspelt level, not a logger


@pytest.mark.parametrize("spec", ["loud", "a=verbose", "=info", "a=debug,b="])
def test_parse_filter_rejects_bad_directives(spec: str) -> None:
    with pytest.raises(LogFilterError):
        parse_log_filter(spec)


def test_level_for_uses_longest_dotted_prefix() -> None:
    parsed = parse_log_filter("error,kube=warn,kube.runtime=debug")
    assert parsed.level_for("kube.runtime.watcher") == logging.DEBUG
    assert parsed.level_for("kube.client") == logging.WARNING
    assert parsed.level_for("kubernetes") == logging.ERROR  # a prefix only matches at a dot


names = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map(".".join)
levels = st.sampled_from(["trace", "debug", "info", "warn", "error"])


@given(st.dictionaries(names, levels, max_size=4), levels, names)
def test_stdlib_effective_level_matches_the_filter(targets: dict[str, str], default: str, name: str) -> None:
    spec = ",".join([default, *(f"{t}={lvl}" for t, lvl in targets.items())])
    parsed = configure_logging(spec, stream=io.StringIO())
    assert logging.getLogger(name).getEffectiveLevel() == parsed.level_for(name)


def test_env_var_filter_governs_structlog_and_stdlib(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBE_RUNTIME_LOG", "warning,my_controller=debug,httpx=error")
    configure_logging(stream=output)
    structlog.get_logger("my_controller").debug("shown", n=1)
    structlog.get_logger("other").info("hidden")
    logging.getLogger("httpx").warning("hidden too")
    logging.getLogger("httpx").error("httpx error shown")
    logging.getLogger("uvicorn.error").warning("uvicorn warning shown %s", "x")
    got = lines(output)
    assert [(entry["event"], entry["level"], entry["logger"]) for entry in got] == [
        ("shown", "debug", "my_controller"),
        ("httpx error shown", "error", "httpx"),
        ("uvicorn warning shown x", "warning", "uvicorn.error"),
    ]
    assert got[0]["n"] == 1
    assert all("timestamp" in entry for entry in got)


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_format_variable_counts_as_unset(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """The chart always sets the variable; an empty value made configure_logging raise."""
    monkeypatch.setenv("KUBE_RUNTIME_LOG_FORMAT", value)
    configure_logging("info", stream=output)
    structlog.get_logger("my_controller").info("json by default")
    assert [entry["event"] for entry in lines(output)] == ["json by default"]


def test_reconfiguring_replaces_the_handler_and_resets_old_targets(output: io.StringIO) -> None:
    configure_logging("info,noisy=error", stream=io.StringIO())
    configure_logging("info", stream=output)
    logging.getLogger("noisy").info("once")
    assert [entry["event"] for entry in lines(output)] == ["once"]
    assert logging.getLogger("noisy").level == logging.NOTSET


def test_trace_and_span_ids_stamped_inside_a_span(output: io.StringIO, spans: InMemorySpanExporter) -> None:
    configure_logging("info", stream=output)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        structlog.get_logger("t").info("inside")
        logging.getLogger("t.stdlib").info("stdlib inside")
    structlog.get_logger("t").info("outside")
    ctx = span.get_span_context()
    inside, stdlib_inside, outside = lines(output)
    for entry in (inside, stdlib_inside):
        assert entry["trace_id"] == format(ctx.trace_id, "032x")
        assert entry["span_id"] == format(ctx.span_id, "016x")
    assert "trace_id" not in outside


def test_console_format_is_plain_text(output: io.StringIO) -> None:
    configure_logging("info", fmt="console", stream=output)
    structlog.get_logger("c").info("hello console", key="v")
    text = output.getvalue()
    assert "hello console" in text
    assert "key=v" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_exceptions_render_as_structured_tracebacks(output: io.StringIO) -> None:
    configure_logging("info", stream=output)
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger("e").exception("failed")
    (entry,) = lines(output)
    assert entry["exception"][0]["exc_type"] == "ValueError"


async def test_uvicorn_lifecycle_lines_are_quiet_by_default_and_never_colored(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn logs "Started/Finished server process" per listener at INFO with a ``color_message``
    full of ANSI escapes; the default filter keeps uvicorn to warnings and no renderer shows it."""
    from prometheus_client import CollectorRegistry

    from kube_runtime.observe.server import ObservabilityServer, ServerOptions

    options = ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")
    monkeypatch.delenv("KUBE_RUNTIME_LOG", raising=False)
    configure_logging(fmt="json", stream=output)
    async with ObservabilityServer(options, registry=CollectorRegistry()):
        pass
    logging.getLogger("uvicorn.error").warning(
        "listener trouble", extra={"color_message": "\x1b[31mx\x1b[0m"}
    )
    assert [(r["logger"], r["event"]) for r in lines(output)] == [("uvicorn.error", "listener trouble")]
    assert "color_message" not in lines(output)[0]

    for fmt in ("json", "console"):
        chosen = io.StringIO()
        configure_logging("info", fmt=fmt, stream=chosen)  # type: ignore[arg-type]
        async with ObservabilityServer(options, registry=CollectorRegistry()):
            pass
        text = chosen.getvalue()
        assert text.count("Started server process") == 2  # asked for: shown, once per listener
        assert "color_message" not in text
        assert "\x1b" not in text


def test_reconcile_fields_follow_the_current_reconcile(
    output: io.StringIO, spans: InMemorySpanExporter
) -> None:
    """The fields are rendered once per reconcile and reused, but a new reconcile (even in the
    same context, as on a worker) and a new span get their own."""
    import contextvars

    from kube_runtime.controller.action import ReconcileReason
    from kube_runtime.controller.context import ReconcileInfo, _current
    from kube_runtime.store.object_ref import ObjectRef

    configure_logging("info", stream=output)
    log = structlog.get_logger("reconciler")
    tracer = trace.get_tracer("test")
    first = ReconcileInfo(ObjectRef("ConfigMap", "a", "ns"), ReconcileReason.OBJECT_UPDATED, "r-1", "cms")
    second = ReconcileInfo(ObjectRef("ConfigMap", "b", "ns"), ReconcileReason.custom("nudged"), "r-2", "cms")

    def worker() -> list[tuple[str, str]]:
        ids = []
        for info in (first, first, second):
            _current.set(info)
            with tracer.start_as_current_span("reconciling object") as span:
                log.info("step")
                log.info("step")
                ctx = span.get_span_context()
                ids.append((format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")))
        return ids

    ids = contextvars.copy_context().run(worker)
    got = lines(output)
    assert [(e["object.ref"], e["object.reason"], e["reconcile_id"]) for e in got] == [
        ("ConfigMap.v1./a.ns", "object updated", "r-1"),
    ] * 4 + [("ConfigMap.v1./b.ns", "nudged", "r-2")] * 2
    assert [e["span"]["object.ref"] for e in got][-1] == "ConfigMap.v1./b.ns"
    assert [(e["trace_id"], e["span_id"]) for e in got] == [ids[0], ids[0], ids[1], ids[1], ids[2], ids[2]]
    log.info("outside")
    assert "object.ref" not in lines(output)[-1]


def test_a_child_span_inside_a_reconcile_has_its_own_ids_and_the_parent_gets_its_back(
    output: io.StringIO, spans: InMemorySpanExporter
) -> None:
    """The fields are cached per OpenTelemetry context: entering a child span and leaving it
    (back to the parent's very context object) each show on the next line."""
    import contextvars

    from kube_runtime.controller.action import ReconcileReason
    from kube_runtime.controller.context import ReconcileInfo, _current
    from kube_runtime.store.object_ref import ObjectRef

    configure_logging("info", stream=output)
    log = structlog.get_logger("reconciler")
    tracer = trace.get_tracer("test")
    info = ReconcileInfo(ObjectRef("ConfigMap", "a", "ns"), ReconcileReason.OBJECT_UPDATED, "r-1", "cms")

    def reconcile() -> list[int]:
        _current.set(info)
        with tracer.start_as_current_span("reconciling object") as parent:
            log.info("before")
            with tracer.start_as_current_span("child") as child:
                log.info("in child")
            log.info("after")
        return [parent.get_span_context().span_id, child.get_span_context().span_id]

    parent_id, child_id = contextvars.copy_context().run(reconcile)
    got = lines(output)
    assert [e["span_id"] for e in got] == [format(i, "016x") for i in (parent_id, child_id, parent_id)]
    assert len({e["trace_id"] for e in got}) == 1
    assert {e["reconcile_id"] for e in got} == {"r-1"}
