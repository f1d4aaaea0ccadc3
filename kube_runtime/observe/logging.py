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
twice does not duplicate output) but leaves handlers installed by others alone. Calls below a
logger's level return before any processor runs.

Loggers are cached: a module-level ``log = structlog.get_logger(__name__)`` is assembled at its
first call and reused (structlog's ``cache_logger_on_first_use``), so a line costs no bind. The
pitfall of structlog's own cache (a cached logger ignores a later ``structlog.configure``, so
``structlog.testing.capture_logs`` misses its lines) does not apply: every call checks that the
processors it was assembled with are still structlog's (:class:`LevelFilteringLogger`), and logs
through the current configuration when they are not. A later ``configure_logging`` call keeps
cached loggers valid (it refills the same processor list).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import orjson
import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.context import get_current as get_current_otel_context

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
#: A logger name on its own in a filter: a dotted Python name or a Rust path (two parts at least).
_TARGET = re.compile(r"[A-Za-z_]\w*((\.|::)[A-Za-z_]\w*)+")
# Loggers whose level the previous configure_logging() call set, reset on the next call.
_configured_targets: set[str] = set()
#: The structlog processors and logger factory configure_logging() installs (one of each per
#: process, so that loggers cached under one call remain those of the next).
_PROCESSORS: list[Any] = []
_LOGGER_FACTORY = RoutingLoggerFactory()


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
    """Parse a RUST_LOG-style filter: comma-separated ``level``, ``target=level`` or ``target``
    directives.

    Rust paths (``my_controller::reconcile``) are accepted and mean the dotted Python name. A bare
    level sets the default; a bare dotted or ``::`` path enables everything that logger logs
    (``trace``), as in RUST_LOG (a bare single word must be a level: a misspelt level would
    otherwise pass as a logger's name); the last directive for a target wins. Raises
    ``LogFilterError``.
    """
    default = logging.INFO
    targets: dict[str, int] = {}
    for raw in spec.split(","):
        directive = raw.strip()
        if not directive:
            continue
        target, sep, level_name = directive.rpartition("=")
        level = _LEVELS.get(level_name.strip().lower())
        if not sep:
            if level is not None:
                default = level
            elif _TARGET.fullmatch(directive):
                targets[directive.replace("::", ".")] = TRACE
            else:
                raise LogFilterError(
                    f"unknown log level {directive!r} (a logger on its own: write {directive}=trace)"
                )
            continue
        if level is None:
            raise LogFilterError(f"unknown log level {level_name.strip()!r} in {directive!r}")
        target = target.strip().replace("::", ".")
        if not target:
            raise LogFilterError(f"empty logger name in {directive!r}")
        targets[target] = level
    return LogFilter(default, targets)


class _LineContext:
    """The reconcile and trace fields of the lines logged under one reconcile and one OpenTelemetry
    context, rendered once (not once per line) and kept in a context variable of the reconcile's
    context."""

    __slots__ = ("fields", "info", "otel_context", "span_field")

    def __init__(self, info: ReconcileInfo | None, otel_context: Context) -> None:
        self.info = info
        #: Held, so its identity cannot be reused by another context while this one is cached.
        self.otel_context = otel_context
        #: tracing-subscriber's ``span`` object (copied into each line: processors may edit it).
        self.span_field: dict[str, str] | None = None
        #: In line order: ``object.ref``, ``object.reason``, ``reconcile_id``, ``controller`` and
        #: ``span`` inside a reconcile, then ``trace_id`` and ``span_id`` unless there is neither a
        #: valid span nor unrecorded ids.
        self.fields: dict[str, Any] = {}
        if info is not None:
            ref, reason = str(info.obj_ref), str(info.reason)
            self.span_field = {"name": "reconciling object", "object.ref": ref, "object.reason": reason}
            self.fields.update(
                {
                    "object.ref": ref,
                    "object.reason": reason,
                    "reconcile_id": info.reconcile_id,
                    "controller": info.controller,
                    "span": self.span_field,
                }
            )
        ctx = trace.get_current_span(otel_context).get_span_context()
        ids = (ctx.trace_id, ctx.span_id) if ctx.is_valid else None if info is None else info.unrecorded_ids
        if ids is not None:
            self.fields["trace_id"] = format(ids[0], "032x")
            self.fields["span_id"] = format(ids[1], "016x")

    def stamp(self, event_dict: MutableMapping[str, Any], keys: Iterable[str]) -> None:
        """Add those of ``keys`` the line does not have yet (a field the line has is kept)."""
        fields = self.fields
        for key in keys:
            if key not in event_dict:
                value = fields[key]
                event_dict[key] = dict(value) if key == "span" else value


def _line_context() -> _LineContext:
    """The fields of a line logged here and now (the current reconcile and OpenTelemetry context).

    The cache is keyed by the OpenTelemetry context object, not the current span: contexts are
    immutable, so the same object means the same span, and ``get_current`` is a fraction of the
    cost of ``get_current_span``."""
    info = current_reconcile()
    otel_context = get_current_otel_context()
    cached = _line_contexts.get()
    if cached is None or cached.otel_context is not otel_context or cached.info is not info:
        cached = _LineContext(info, otel_context)
        _line_contexts.set(cached)
    return cached


#: The fields of the last reconcile and span a line was logged under, in this context.
_line_contexts: ContextVar[_LineContext | None] = ContextVar("kube_runtime_log_line_context", default=None)
_RECONCILE_KEYS = ("object.ref", "object.reason", "reconcile_id", "controller", "span")
_TRACE_KEYS = ("trace_id", "span_id")


def add_reconcile_context(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: inside a reconcile, stamp ``object.ref``, ``object.reason``,
    ``reconcile_id``, ``controller`` and a tracing-subscriber-like ``span`` object.

    The fields are rendered once per reconcile and span (kept in a context variable of the
    reconcile's own context), not once per line; a field the line already has is kept."""
    context = _line_context()
    if context.span_field is not None:
        context.stamp(event_dict, _RECONCILE_KEYS)
    return event_dict


def add_trace_context(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: stamp the current OpenTelemetry span's ``trace_id`` and ``span_id``
    (lower-case hex, as OTLP backends display them) when a valid span is active, else the running
    reconcile's unrecorded ids (no tracer provider installed)."""
    context = _line_context()
    if "trace_id" in context.fields:
        context.stamp(event_dict, _TRACE_KEYS)
    return event_dict


def _add_line_context(event_dict: MutableMapping[str, Any]) -> None:
    """``add_reconcile_context`` and ``add_trace_context`` in one call (one lookup)."""
    context = _line_context()
    fields = context.fields
    if event_dict.keys().isdisjoint(fields):  # the common line: no field to keep
        event_dict.update(fields)
        if context.span_field is not None:
            event_dict["span"] = dict(context.span_field)
    else:
        context.stamp(event_dict, fields)


class LevelFilteringLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, but a call below the logger's level returns before any
    processor runs (stdlib's ``isEnabledFor`` check), so disabled debug lines cost next to nothing.

    ``configure_logging`` lets structlog cache these loggers (a module-level
    ``structlog.get_logger(name)`` is assembled once, at its first call, not at every call). A
    cached logger still follows a later ``structlog.configure`` (``structlog.testing.capture_logs``
    among others), both ways: each call compares the processors it was made with to structlog's
    current ones (``structlog.get_config()``), and when they differ logs through a logger assembled
    from the current configuration, with its own bound values, as an uncached logger would. So a
    logger first used inside ``capture_logs`` logs normally afterwards, and one cached before it is
    captured.

    Pitfall: a logger given processors of its own (``structlog.wrap_logger(logger,
    processors=...)``) while this is the configured wrapper class logs through the configured
    processors too; give it ``wrapper_class=structlog.stdlib.BoundLogger`` to keep its own.
    """

    def _proxy_to_logger(
        self, method_name: str, event: str | None = None, *event_args: str, **event_kw: Any
    ) -> Any:
        level = _METHOD_LEVELS.get(method_name)
        if level is not None and not self._logger.isEnabledFor(level):
            return None
        return self._process_line(method_name, event, event_args, event_kw)

    def _process_line(
        self, method_name: str, event: str | None, event_args: tuple[Any, ...], event_kw: dict[str, Any]
    ) -> Any:
        """A line past the level check: through structlog's processors to the logger.

        structlog.stdlib.BoundLogger's and BoundLoggerBase's ``_proxy_to_logger`` and
        ``_process_event``, in one frame; ``event_kw`` is the call's own keyword dict (stamped
        in place)."""
        if structlog.get_config()["processors"] is not self._processors:
            name = getattr(self._logger, "name", None)
            current = structlog.get_logger(*([name] if name else [])).bind(**self._context)
            return getattr(current, method_name)(event, *event_args, **event_kw)
        if event_args:
            event_kw["positional_args"] = event_args
        event_dict: Any = self._context.copy()
        event_dict.update(event_kw)
        if event is not None:
            event_dict["event"] = event
        logger = self._logger
        try:
            for processor in self._processors:
                event_dict = processor(logger, method_name, event_dict)
        except structlog.DropEvent:
            return None
        if type(event_dict) is tuple:  # ProcessorFormatter.wrap_for_formatter's (args, kwargs)
            args, kw = event_dict
        elif isinstance(event_dict, (str, bytes, bytearray)):
            args, kw = (event_dict,), {}
        elif isinstance(event_dict, dict):
            args, kw = (), event_dict
        else:
            returned = type(event_dict).__name__
            raise ValueError(f"the last processor returned a {returned}: expected a tuple, str or dict")
        return getattr(logger, method_name)(*args, **kw)

    # The level methods check the level before anything else (no call of ``_proxy_to_logger``
    # with its arguments packed again), so a disabled line costs one check.

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return self._process_line("debug", event, args, kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return self._process_line("info", event, args, kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.WARNING):
            return None
        return self._process_line("warning", event, args, kw)

    warn = warning

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.ERROR):
            return None
        return self._process_line("error", event, args, kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.ERROR):
            return None
        kw.setdefault("exc_info", True)
        return self._process_line("exception", event, args, kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.CRITICAL):
            return None
        return self._process_line("critical", event, args, kw)

    fatal = critical


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


#: orjson options of a JSON line: non-string keys allowed; dataclasses go to ``default=repr``
#: rather than orjson's field-by-field rendering, which would bypass the repr that hides a
#: ClientConfig's token.
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


class _StructlogLineFields:
    """structlog processor for structlog's own lines: ``add_log_level``, ``add_logger_name``, the
    timestamp and the reconcile and trace fields in one call (stdlib records get the processors
    themselves)."""

    __slots__ = ("_timestamp",)

    def __init__(self, timestamp: IsoUtcTimestamper) -> None:
        self._timestamp = timestamp

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict["level"] = _LEVEL_NAMES.get(method_name, method_name)
        record = event_dict.get("_record")
        event_dict["logger"] = logger.name if record is None else record.name
        event_dict["timestamp"] = self._timestamp.text()
        _add_line_context(event_dict)
        return event_dict


#: Level names of logger methods that differ from the method's name (structlog's mapping).
_LEVEL_NAMES: Mapping[str, str] = {"warn": "warning", "exception": "error"}


def _positional_args_and_stack(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog's ``PositionalArgumentsFormatter`` and ``StackInfoRenderer``, each run only when
    the line has its key (``positional_args``, ``stack_info``), as each does nothing otherwise."""
    if "positional_args" in event_dict:
        event_dict = _format_positional_args(logger, method_name, event_dict)
    if "stack_info" in event_dict:
        event_dict = _render_stack_info(logger, method_name, event_dict)
    return event_dict


_format_positional_args = structlog.stdlib.PositionalArgumentsFormatter()
_render_stack_info = structlog.processors.StackInfoRenderer()


#: Exception rendering for JSON: no frame locals (they hold request headers, tokens, keys).
_exception_dicts = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def _render_json(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> str:
    """structlog renderer: the line as one JSON object, by orjson directly (what structlog's
    ``JSONRenderer`` with an orjson serializer writes, without its indirections), ``exc_info``
    first rendered as structured tracebacks without locals (:data:`_exception_dicts`); values
    orjson cannot encode are rendered by their ``repr``."""
    if "exc_info" in event_dict:
        event_dict = _exception_dicts(logger, method_name, event_dict)
    return orjson.dumps(event_dict, default=repr, option=_JSON_OPTIONS).decode()


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
    to ``$KUBE_RUNTIME_LOG_FORMAT``, then ``json`` (an empty variable counts as unset, as
    OpenTelemetry's do: a chart value left empty must not stop the pod). Returns the parsed filter. Raises
    ``LogFilterError`` for a bad filter (before changing any configuration).
    """
    spec = log_filter if log_filter is not None else os.environ.get(LOG_ENV_VAR, DEFAULT_LOG_FILTER)
    parsed = parse_log_filter(spec)
    chosen = fmt or os.environ.get(LOG_FORMAT_ENV_VAR, "").strip().lower() or "json"
    if chosen not in ("json", "console"):
        raise LogFilterError(f"unknown log format {chosen!r} (expected 'json' or 'console')")

    timestamp = IsoUtcTimestamper()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamp,
        add_reconcile_context,
        add_trace_context,
    ]
    final: list[Any]
    if chosen == "json":
        final = [_render_json]
    else:
        out = stream or sys.stderr
        final = [
            structlog.dev.ConsoleRenderer(
                colors=bool(getattr(out, "isatty", lambda: False)()),
                # Pinned: with rich or better-exceptions installed, structlog's default shows locals.
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]

    # The same list object at every call (refilled in place), and the same factory: loggers cached
    # under an earlier configure_logging() stay valid (LevelFilteringLogger compares identities).
    # The chain is ``shared``'s, fused: the per-line, reconcile and trace fields in one processor.
    _PROCESSORS[:] = [
        structlog.contextvars.merge_contextvars,
        _StructlogLineFields(timestamp),
        _positional_args_and_stack,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=_PROCESSORS,
        logger_factory=_LOGGER_FACTORY,
        wrapper_class=LevelFilteringLogger,
        cache_logger_on_first_use=True,
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
