"""Structured logging: one call routes structlog and stdlib ``logging`` through one renderer.

``configure_logging()`` installs a single handler on the root logger that renders every record
(structlog calls and stdlib records from httpx, uvicorn, ...) as one JSON object per line, or as
human-readable console lines. Levels are set per logger from a RUST_LOG-style filter, read from
``$KUBE_RUNTIME_LOG`` unless passed explicitly::

    KUBE_RUNTIME_LOG="kube_runtime=info,my_controller=debug,httpx=warning"

Inside a reconcile, every line (structlog or stdlib) automatically carries ``object.ref``,
``object.reason`` and ``reconcile_id`` (from the controller's reconcile context variable), the
OpenTelemetry ``trace_id``/``span_id`` of the current span (also without a tracer provider: the
reconcile then runs in an unrecorded span with fresh ids), and a ``span`` object mirroring the
reconcile span the way tracing-subscriber's JSON output does, so both of these select one object::

    jq 'select(."object.ref" | contains("my-object"))'
    jq 'select(.span."object.ref" | contains("my-object"))'

Secrets never reach the output, whatever the level or format: tracebacks are rendered without
frame locals (structlog's ``dict_tracebacks`` and rich/better-exceptions console tracebacks show
every frame's local variables, among them the HTTP client's ``Authorization`` header), dataclasses
passed as fields are rendered with their ``repr`` (which hides ``ClientConfig``'s secrets) instead
of field by field, and every rendered line goes through
:func:`~kube_runtime.client.redact.redact` (bearer tokens and the credentials this process
obtained become ``<redacted>``; this also covers libraries' own debug lines, such as HTTP/2 header
dumps). To see a variable in a log line, log it explicitly.

A structlog line whose only destination is the installed handler is rendered and written by the
logging call itself, skipping stdlib's record machinery; with any other handler on its way (pytest's
``caplog``, a file handler) it goes through stdlib logging. The line is the same either way
(:mod:`~kube_runtime.observe.log_output`).

Pitfalls: the context is read when a line is *formatted*, which for the installed
``StreamHandler`` is the emitting call itself; a ``QueueHandler`` placed in front of it would
lose the context. ``configure_logging`` replaces the handler it installed earlier (calling it
twice does not duplicate output) but leaves handlers installed by others alone. Loggers are not
cached (a module-level ``structlog.get_logger()`` made before this call still picks up the
configuration), which costs a bind per call; on a hot path, bind once after configuring
(``log = structlog.get_logger(__name__).bind()``). Calls below a logger's level return before any
processor runs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import orjson
import structlog
from opentelemetry import trace

from kube_runtime.client.redact import redact
from kube_runtime.controller.context import ReconcileInfo, current_reconcile
from kube_runtime.observe.log_output import IsoUtcTimestamper, RoutingLoggerFactory, route_to

__all__ = [
    "DEFAULT_LOG_FILTER",
    "DROPPED_RECORD_FIELDS",
    "LOG_ENV_VAR",
    "LOG_FORMAT_ENV_VAR",
    "TRACE",
    "LevelFilteringLogger",
    "LogFilter",
    "LogFilterError",
    "add_reconcile_context",
    "add_trace_context",
    "configure_logging",
    "parse_log_filter",
]

#: Environment variable holding the per-logger level filter.
LOG_ENV_VAR = "KUBE_RUNTIME_LOG"
#: Environment variable choosing ``json`` (default) or ``console`` output.
LOG_FORMAT_ENV_VAR = "KUBE_RUNTIME_LOG_FORMAT"
#: Used when neither an argument nor the environment variable gives a filter: info everywhere,
#: but httpx/httpcore's one-line-per-request INFO chatter and uvicorn's per-listener
#: "Started/Finished server process" lines are kept to warnings (uvicorn.error's warnings and
#: errors still show). An explicit filter replaces all of it: add ``uvicorn=warning`` there too.
DEFAULT_LOG_FILTER = "info,httpx=warning,httpcore=warning,uvicorn=warning"
#: Record attributes never rendered: uvicorn's ``color_message`` (the message again, full of ANSI
#: escapes, for its own console output) and ``message`` (the formatted message, left on the
#: record when another handler formatted it first; it repeats ``event``).
DROPPED_RECORD_FIELDS = frozenset({"color_message", "message"})
#: A level below DEBUG for per-event chatter (RUST_LOG's ``trace``).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS: Mapping[str, int] = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": logging.CRITICAL + 10,
}
_HANDLER_NAME = "kube_runtime.observe"
# Loggers whose level the previous configure_logging() call set, reset on the next call.
_configured_targets: set[str] = set()


class LogFilterError(ValueError):
    """A log filter directive could not be parsed (unknown level, empty target)."""


@dataclass(frozen=True)
class LogFilter:
    """A parsed filter: the default level plus a level per logger name (dotted prefix)."""

    default: int = logging.INFO
    targets: Mapping[str, int] = field(default_factory=dict)

    def level_for(self, name: str) -> int:
        """The effective level for logger ``name``: its longest configured prefix, else the default."""
        best, best_len = self.default, -1
        for target, level in self.targets.items():
            if (name == target or name.startswith(target + ".")) and len(target) > best_len:
                best, best_len = level, len(target)
        return best


def parse_log_filter(spec: str) -> LogFilter:
    """Parse a RUST_LOG-style filter: comma-separated ``level`` or ``target=level`` directives.

    Rust paths (``my_controller::reconcile``) are accepted and mean the dotted Python name. A bare
    level sets the default; the last directive for a target wins. Raises ``LogFilterError``.
    """
    default = logging.INFO
    targets: dict[str, int] = {}
    for raw in spec.split(","):
        directive = raw.strip()
        if not directive:
            continue
        target, sep, level_name = directive.rpartition("=")
        level = _LEVELS.get(level_name.strip().lower())
        if level is None:
            raise LogFilterError(f"unknown log level {level_name.strip()!r} in {directive!r}")
        if not sep:
            default = level
            continue
        target = target.strip().replace("::", ".")
        if not target:
            raise LogFilterError(f"empty logger name in {directive!r}")
        targets[target] = level
    return LogFilter(default, targets)


def add_reconcile_context(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: inside a reconcile, stamp ``object.ref``, ``object.reason``,
    ``reconcile_id``, ``controller`` and a tracing-subscriber-like ``span`` object.

    The fields are rendered once per reconcile (kept in a context variable of the reconcile's own
    context), not once per line."""
    info = current_reconcile()
    if info is None:
        return event_dict
    rendered = _reconcile_fields.get()
    if rendered is None or rendered[0] is not info:
        ref, reason = str(info.obj_ref), str(info.reason)
        rendered = (
            info,
            ref,
            reason,
            {"name": "reconciling object", "object.ref": ref, "object.reason": reason},
        )
        _reconcile_fields.set(rendered)
    _, ref, reason, span = rendered
    event_dict.setdefault("object.ref", ref)
    event_dict.setdefault("object.reason", reason)
    event_dict.setdefault("reconcile_id", info.reconcile_id)
    event_dict.setdefault("controller", info.controller)
    event_dict.setdefault("span", dict(span))  # a copy: later processors may edit the line's fields
    return event_dict


#: The current reconcile and its rendered log fields (set inside the reconcile's own context).
_reconcile_fields: ContextVar[tuple[ReconcileInfo, str, str, dict[str, str]] | None] = ContextVar(
    "kube_runtime_reconcile_log_fields", default=None
)


def add_trace_context(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: stamp the current OpenTelemetry span's ``trace_id`` and ``span_id``
    (lower-case hex, as OTLP backends display them) when a valid span is active, else the running
    reconcile's unrecorded ids (no tracer provider installed)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        ids: object = ctx
        trace_id, span_id = ctx.trace_id, ctx.span_id
    else:
        info = current_reconcile()
        if info is None or info.unrecorded_ids is None:
            return event_dict
        ids = info
        trace_id, span_id = info.unrecorded_ids
    cached = _trace_ids.get()
    if cached is None or cached[0] is not ids:
        cached = (ids, format(trace_id, "032x"), format(span_id, "016x"))
        _trace_ids.set(cached)
    event_dict.setdefault("trace_id", cached[1])
    event_dict.setdefault("span_id", cached[2])
    return event_dict


#: The last span context whose ids were formatted, and its ids (a span's lines reuse them).
_trace_ids: ContextVar[tuple[object, str, str] | None] = ContextVar("kube_runtime_trace_ids", default=None)


class LevelFilteringLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, but a call below the logger's level returns before any
    processor runs (stdlib's ``isEnabledFor`` check), so disabled debug lines cost next to nothing."""

    def _proxy_to_logger(
        self, method_name: str, event: str | None = None, *event_args: str, **event_kw: Any
    ) -> Any:
        level = _METHOD_LEVELS.get(method_name)
        if level is not None and not self._logger.isEnabledFor(level):
            return None
        # structlog.stdlib.BoundLogger's and BoundLoggerBase's _proxy_to_logger, in one frame.
        if event_args:
            event_kw["positional_args"] = event_args
        try:
            args, kw = self._process_event(method_name, event, event_kw)
        except structlog.DropEvent:
            return None
        return getattr(self._logger, method_name)(*args, **kw)


_METHOD_LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _drop_library_fields(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    for name in DROPPED_RECORD_FIELDS:
        event_dict.pop(name, None)
    return event_dict


def _json_serializer(obj: Any, **_kw: Any) -> str:
    # Dataclasses go to ``default=repr`` rather than orjson's field-by-field rendering, which would
    # bypass the repr that hides a ClientConfig's token.
    options = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
    return orjson.dumps(obj, default=repr, option=options).decode()


#: Exception rendering for JSON: no frame locals (they hold request headers, tokens, keys).
_exception_dicts = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """The rendered line, with bearer tokens and known credentials redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    log_filter: str | None = None,
    *,
    fmt: Literal["json", "console"] | None = None,
    stream: TextIO | None = None,
) -> LogFilter:
    """Route structlog and stdlib logging to ``stream`` (default stderr) with per-logger levels.

    ``log_filter`` defaults to ``$KUBE_RUNTIME_LOG``, then :data:`DEFAULT_LOG_FILTER`; ``fmt``
    to ``$KUBE_RUNTIME_LOG_FORMAT``, then ``json``. Returns the parsed filter. Raises
    ``LogFilterError`` for a bad filter (before changing any configuration).
    """
    spec = log_filter if log_filter is not None else os.environ.get(LOG_ENV_VAR, DEFAULT_LOG_FILTER)
    parsed = parse_log_filter(spec)
    chosen = fmt or os.environ.get(LOG_FORMAT_ENV_VAR, "json").strip().lower()
    if chosen not in ("json", "console"):
        raise LogFilterError(f"unknown log format {chosen!r} (expected 'json' or 'console')")

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        IsoUtcTimestamper(),
        add_reconcile_context,
        add_trace_context,
    ]
    renderer: Any
    if chosen == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_serializer)
        final: list[Any] = [_exception_dicts, renderer]
    else:
        out = stream or sys.stderr
        renderer = structlog.dev.ConsoleRenderer(
            colors=bool(getattr(out, "isatty", lambda: False)()),
            # Pinned: with rich or better-exceptions installed, structlog's default shows locals.
            exception_formatter=structlog.dev.plain_traceback,
        )
        final = [renderer]

    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=RoutingLoggerFactory(),
        wrapper_class=LevelFilteringLogger,
        # Not cached: module-level loggers created before this call must pick up the new setup.
        cache_logger_on_first_use=False,
    )
    formatter = _RedactingFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_library_fields],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    route_to(handler, final)
    root.setLevel(parsed.default)
    for name in _configured_targets - set(parsed.targets):
        logging.getLogger(name).setLevel(logging.NOTSET)
    _configured_targets.clear()
    for name, level in parsed.targets.items():
        logging.getLogger(name).setLevel(level)
        _configured_targets.add(name)
    return parsed
