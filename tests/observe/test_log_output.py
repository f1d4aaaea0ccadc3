"""The structlog fast path: the same lines as through stdlib logging, written only when the
installed handler is their one destination; the timestamp as structlog's ISO UTC stamper writes it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from kube_runtime.observe.log_output import IsoUtcTimestamper
from kube_runtime.observe.logging import configure_logging


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    configure_logging("warning", stream=io.StringIO())


@contextmanager
def without_pytest_handlers() -> Iterator[None]:
    """pytest's capturing handlers off the root logger (with them, every line must take the
    stdlib path); they are installed per test phase, so this runs inside the test."""
    root = logging.getLogger()
    saved = [h for h in root.handlers if h.get_name() != "kube_runtime.observe"]
    for handler in saved:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in saved:
            root.addHandler(handler)


class Recording(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def emit_lines(log: structlog.stdlib.BoundLogger) -> None:
    log.info("plain", n=1, nested={"a": [1, 2]})
    log.warning("formatted %s and %d", "x", 7)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", attempt=2)


def without_timestamps(text: str) -> list[dict[str, object]]:
    entries = [json.loads(line) for line in text.splitlines()]
    for entry in entries:
        assert isinstance(entry.pop("timestamp"), str)
    return entries


def no_record(*_args: object, **_kwargs: object) -> logging.LogRecord:
    raise AssertionError("the line went through stdlib logging")


def test_fast_path_lines_equal_the_stdlib_path_lines(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("info", stream=output)
    log = structlog.get_logger("fast.path")
    with monkeypatch.context() as patched, without_pytest_handlers():
        patched.setattr(logging.getLogger("fast.path"), "makeRecord", no_record)
        emit_lines(log)
    fast = output.getvalue()
    output.seek(0)
    output.truncate()
    other = Recording()
    with without_pytest_handlers():
        logging.getLogger().addHandler(other)  # a second destination: every line goes through stdlib
        try:
            emit_lines(log)
        finally:
            logging.getLogger().removeHandler(other)
    assert len(other.records) == 3
    slow = output.getvalue()
    assert fast.count("\n") == slow.count("\n") == 3
    fast_entries, slow_entries = without_timestamps(fast), without_timestamps(slow)
    for entries in (fast_entries, slow_entries):  # tracebacks name their own lines: compare the rest
        assert entries[2].pop("exception")[0]["exc_value"] == "boom"  # type: ignore[index]
    assert fast_entries == slow_entries
    assert fast_entries[1]["event"] == "formatted x and 7"


def test_filters_and_handler_levels_are_honoured(output: io.StringIO) -> None:
    configure_logging("info", stream=output)
    (handler,) = [h for h in logging.getLogger().handlers if h.get_name() == "kube_runtime.observe"]
    dropper = logging.getLogger("filtered.logger")
    dropper.addFilter(lambda record: False)
    with without_pytest_handlers():
        structlog.get_logger("filtered.logger").info("dropped by the logger's filter")
        handler.setLevel(logging.ERROR)
        structlog.get_logger("other").warning("below the handler's level")
        structlog.get_logger("other").error("shown")
    assert [json.loads(line)["event"] for line in output.getvalue().splitlines()] == ["shown"]


def test_a_logger_that_does_not_propagate_keeps_its_lines(output: io.StringIO) -> None:
    configure_logging("info", stream=output)
    own = io.StringIO()
    isolated = logging.getLogger("isolated")
    isolated.propagate = False
    isolated.addHandler(logging.StreamHandler(own))
    try:
        with without_pytest_handlers():
            structlog.get_logger("isolated").info("mine")
    finally:
        isolated.propagate = True
        isolated.handlers.clear()
    assert output.getvalue() == ""
    assert "mine" in own.getvalue()


def test_console_lines_take_the_fast_path_too(output: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("info", fmt="console", stream=output)
    with monkeypatch.context() as patched, without_pytest_handlers():
        patched.setattr(logging.getLogger("c"), "makeRecord", no_record)
        structlog.get_logger("c").info("hello console", key="v")
    assert "hello console" in output.getvalue()
    assert "key=v" in output.getvalue()


@given(st.integers(min_value=0, max_value=4_102_444_800 * 10**9))  # up to 2100
def test_timestamps_are_structlog_iso_utc_timestamps(now_ns: int) -> None:
    stamped = IsoUtcTimestamper(lambda: now_ns)(None, "info", {})
    seconds, nanos = divmod(now_ns, 10**9)
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=nanos // 1000)
    assert stamped == {"timestamp": instant.isoformat().replace("+00:00", "Z")}


def test_timestamps_follow_the_clock_across_seconds() -> None:
    clock = iter([1_700_000_000_999_999_000, 1_700_000_001_000_000_000, 1_700_000_001_000_001_999])
    stamper = IsoUtcTimestamper(lambda: next(clock))
    stamps = [stamper(None, "info", {})["timestamp"] for _ in range(3)]
    assert stamps == ["2023-11-14T22:13:20.999999Z", "2023-11-14T22:13:21Z", "2023-11-14T22:13:21.000001Z"]
