"""The fast path of structlog lines: rendered and written by the structlog call itself when
``configure_logging``'s handler is the only place the line would go.

Through stdlib ``logging``, one structlog line costs two ``LogRecord`` objects (the
``ProcessorFormatter`` copies the first), a walk up the stack for the caller, the handler
dispatch and the formatter's own bookkeeping: most of the cost of a line. The loggers made by
:class:`RoutingLoggerFactory` skip all of that when nothing else could see the line, and take the
stdlib path otherwise, so what is written never differs:

* fast path: the line's logger and its ancestors up to the root have no handler but the one
  ``configure_logging`` installed (:func:`route_to`), no logger on the way filters, and neither
  does that handler (nor has it a level above the line's). The event dict goes through the same
  final processors the handler's formatter runs (exception rendering, the JSON or console
  renderer), then :func:`~kube_runtime.client.redact.redact`, and is written to the handler's
  stream under the handler's lock, then flushed, as ``StreamHandler.emit`` does;
* otherwise (a handler added by someone else, pytest's ``caplog``, a filter, no
  ``configure_logging`` yet) the stdlib logger is called exactly as ``structlog.stdlib``'s
  ``LoggerFactory`` loggers are, and every handler sees the record. A fast-path line that fails to
  render or to be written also takes this path, so a failure is reported as a handler reports it
  (pitfall: a write that failed halfway leaves its part of the line in the stream).

:class:`IsoUtcTimestamper` writes structlog's ``TimeStamper(fmt="iso", utc=True)`` field
(``2026-01-02T03:04:05.678901Z``, no fraction at a whole second), formatting the date and time of
day once per second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from kube_runtime.client.redact import redact

__all__ = ["IsoUtcTimestamper", "RoutingLoggerFactory", "route_to"]

#: ``(logger, method_name, event_dict) -> event_dict | str``, structlog's processor signature.
Processor = Callable[[Any, str, Any], Any]


class _Route:
    """The handler ``configure_logging`` installed and the processors its formatter ends with."""

    __slots__ = ("handler", "processors")

    def __init__(self, handler: logging.StreamHandler[Any], processors: Sequence[Processor]) -> None:
        self.handler = handler
        self.processors = tuple(processors)


_route: _Route | None = None


def route_to(handler: logging.StreamHandler[Any] | None, processors: Sequence[Processor] = ()) -> None:
    """Write fast-path lines to ``handler`` (installed on the root logger), rendered by
    ``processors`` (the handler's formatter's, after its structlog bookkeeping); ``None``: none."""
    global _route
    _route = None if handler is None else _Route(handler, processors)


def _only_destination(logger: logging.Logger, handler: logging.Handler, level: int) -> bool:
    """Whether a record of ``logger`` at ``level`` would reach ``handler`` and nothing else,
    unfiltered."""
    if logger.filters or handler.filters or level < handler.level or logger.disabled:
        return False
    current: logging.Logger | None = logger
    while current is not None:
        handlers = current.handlers
        if handlers:
            return current.parent is None and len(handlers) == 1 and handlers[0] is handler
        if not current.propagate:
            return False
        current = current.parent
    return False


class _RoutingLogger:
    """A stdlib logger whose level methods take the fast path when they can (module docs).

    Everything else (``name``, ``isEnabledFor``, ``handlers``, ...) is the stdlib logger's."""

    __slots__ = ("_logger", "isEnabledFor", "name")

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.name = logger.name
        #: The stdlib logger's own method (asked before every line: no ``__getattr__`` detour and
        #: no frame of ours).
        self.isEnabledFor: Callable[[int], bool] = logger.isEnabledFor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)

    def _emit(self, method: str, level: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        route = _route
        if route is not None and len(args) == 1 and isinstance(args[0], dict):
            handler = route.handler
            if _only_destination(self._logger, handler, level):
                try:
                    # Not copied: the exception renderer replaces ``exc_info`` by its rendering, which
                    # the stdlib path, if taken after all, renders the same.
                    rendered: Any = args[0]
                    logger = self._logger
                    for processor in route.processors:
                        rendered = processor(logger, method, rendered)
                    line = redact(rendered) + handler.terminator
                    stream = handler.stream
                    with handler.lock:  # type: ignore[union-attr]  # created by Handler.__init__
                        stream.write(line)
                        stream.flush()
                    return
                except Exception:  # the stdlib path writes it, or reports the failure as a handler does
                    pass
        getattr(self._logger, method)(*args, **kwargs)

    def debug(self, *args: Any, **kwargs: Any) -> None:
        self._emit("debug", logging.DEBUG, args, kwargs)

    def info(self, *args: Any, **kwargs: Any) -> None:
        self._emit("info", logging.INFO, args, kwargs)

    def warning(self, *args: Any, **kwargs: Any) -> None:
        self._emit("warning", logging.WARNING, args, kwargs)

    def warn(self, *args: Any, **kwargs: Any) -> None:
        self._emit("warning", logging.WARNING, args, kwargs)

    def error(self, *args: Any, **kwargs: Any) -> None:
        self._emit("error", logging.ERROR, args, kwargs)

    def exception(self, *args: Any, **kwargs: Any) -> None:
        self._emit("exception", logging.ERROR, args, kwargs)

    def critical(self, *args: Any, **kwargs: Any) -> None:
        self._emit("critical", logging.CRITICAL, args, kwargs)

    def fatal(self, *args: Any, **kwargs: Any) -> None:
        self._emit("critical", logging.CRITICAL, args, kwargs)


class RoutingLoggerFactory:
    """structlog logger factory: ``structlog.stdlib.LoggerFactory``'s stdlib loggers, wrapped to
    take the fast path (module docs), one wrapper per logger name. A logger asked for without a
    name (structlog then guesses it from the caller's frame) is the plain stdlib logger."""

    def __init__(self) -> None:
        self._stdlib = structlog.stdlib.LoggerFactory()
        self._by_name: dict[str, _RoutingLogger] = {}

    def __call__(self, *args: Any) -> Any:
        if not args or not isinstance(args[0], str):
            return self._stdlib(*args)
        name = args[0]
        logger = self._by_name.get(name)
        if logger is None:
            logger = self._by_name[name] = _RoutingLogger(self._stdlib(name))
        return logger


class IsoUtcTimestamper:
    """structlog processor: ``timestamp`` as ``TimeStamper(fmt="iso", utc=True)`` writes it."""

    __slots__ = ("_clock", "_second")

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        #: Nanoseconds since the epoch.
        self._clock = clock
        #: The last whole second formatted, and its text.
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        event_dict["timestamp"] = self.text()
        return event_dict

    def text(self) -> str:
        """The current time as the ``timestamp`` field's text."""
        seconds, micros = divmod(self._clock() // 1000, 1_000_000)
        cached = self._second
        if cached[0] != seconds:
            cached = self._second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        if micros:
            # ``str(1_000_000 + micros)[1:]`` is the six zero-padded digits, at a third of the
            # cost of a ``06d`` format (this runs once per log line).
            return cached[1] + "." + str(1_000_000 + micros)[1:] + "Z"
        return cached[1] + "Z"
