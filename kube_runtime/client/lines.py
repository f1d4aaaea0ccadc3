"""Turning a watch response body into events: an incremental line splitter and a line decoder.

A watch body is newline-delimited JSON, one ``{"type": ..., "object": ...}`` per line, arriving in
chunks that cut lines anywhere. :class:`LineSplitter` reassembles lines with work linear in the
bytes received: each byte is searched for ``\\n`` once and copied at most twice (into the carry
buffer, then into the finished line), whatever the line length (there is no limit: a 10 MB object is
one line). httpx's own ``aiter_lines`` rescanned its buffer on every chunk (encode/httpx#2422).

:func:`decode_event` turns one line into a :class:`WatchEvent`, an :class:`ApiError` (an ``ERROR``
event carrying a ``Status``) or a :class:`WatchDecodeError` (anything else); it never raises, so one
bad line never ends a watch. :class:`WatchDecoder` combines both for a stream of chunks.

orjson decodes the lines. Against msgspec (a typed ``Struct`` for the envelope, or plain decoding)
it measured level within noise on Pod-sized lines (``benches/bench_watch_decode.py`` prints both),
so the codec already used everywhere else (:mod:`kube_runtime.client.json`) stays.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from kube_runtime.client.errors import ApiError, WatchDecodeError

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "ERROR",
    "MODIFIED",
    "LineSplitter",
    "WatchDecoder",
    "WatchEvent",
    "WatchItem",
    "decode_event",
]

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"
BOOKMARK: Final = "BOOKMARK"
ERROR: Final = "ERROR"

# Maps the decoded type string to the module constant, so ``event.type is ADDED`` holds and the
# per-event strings from the decoder are released.
_EVENT_TYPES: Final[dict[str, str]] = {ADDED: ADDED, MODIFIED: MODIFIED, DELETED: DELETED, BOOKMARK: BOOKMARK}


class WatchEvent:
    """One watch event: ``type`` is ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``.

    ``object`` is the decoded object (for ``BOOKMARK``, an object carrying only
    ``metadata.resourceVersion``). Treat it as read-only: stores hand the same dict out.
    """

    __slots__ = ("object", "type")

    def __init__(self, type: str, object: dict[str, Any]) -> None:
        self.type = type
        self.object = object

    def __repr__(self) -> str:
        meta = self.object.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return f"WatchEvent({self.type}, {name!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WatchEvent):
            return NotImplemented
        return self.type == other.type and self.object == other.object

    __hash__ = None  # type: ignore[assignment]  # mutable payload


WatchItem = WatchEvent | ApiError | WatchDecodeError
"""What a watch stream yields: an event, a server ``ERROR`` event, or an undecodable line."""

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def decode_event(line: bytes) -> WatchItem:
    """Decode one watch line; never raises.

    ``ERROR`` events become :class:`ApiError` built from the ``Status`` they carry (an ``ERROR``
    whose object is not a ``Status`` still becomes an ``ApiError``, code 500 if absent). A line that
    is not JSON, not an object, or lacks a known ``type`` and an object ``object`` becomes a
    :class:`WatchDecodeError` holding the line.
    """
    try:
        decoded = _loads(line)
    except _JSONDecodeError as exc:
        return WatchDecodeError(f"watch line is not valid JSON ({exc})", line)
    if type(decoded) is not dict:
        return WatchDecodeError("watch line is not a JSON object", line)
    obj = decoded.get("object")
    if type(obj) is not dict:
        return WatchDecodeError("watch event has no object", line)
    raw_type = decoded.get("type")
    event_type = _EVENT_TYPES.get(raw_type) if type(raw_type) is str else None
    if event_type is not None:
        return WatchEvent(event_type, obj)
    if raw_type == ERROR:
        if not obj.get("code"):
            obj = {**obj, "code": 500}
        return ApiError(obj)
    return WatchDecodeError(f"watch event has unknown type {raw_type!r}", line)


class LineSplitter:
    """Splits a byte stream into ``\\n``-terminated lines, incrementally and in linear time.

    Guarantees: lines come out without their terminator (and without a trailing ``\\r``); empty
    lines are dropped; bytes after the last newline are kept until more data arrives or
    :meth:`finish` hands them out. Only the new chunk is ever searched, so a line spread over many
    chunks costs no rescans.
    """

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back."""
        return len(self._carry)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add a chunk; return the lines it completed (possibly none)."""
        carry = self._carry
        if carry:
            newline = chunk.find(b"\n")
            if newline == -1:
                carry += chunk
                return []
            carry += chunk[:newline]
            first = bytes(carry)
            carry.clear()
            lines = chunk[newline + 1 :].split(b"\n")
            lines.insert(0, first)
        else:
            lines = chunk.split(b"\n")
        tail = lines.pop()
        if tail:
            carry += tail
        # Per-chunk checks keep the common case (no CR, no blank line) free of per-line work.
        if b"\r" in chunk:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        if not all(lines):
            lines = [line for line in lines if line]
        return lines

    def finish(self) -> bytes | None:
        """End of stream: the unterminated last line, if any (a watch body normally has none)."""
        if not self._carry:
            return None
        rest = bytes(self._carry)
        self._carry.clear()
        rest = rest[:-1] if rest.endswith(b"\r") else rest
        return rest or None


class WatchDecoder:
    """Chunks in, decoded watch items out: a :class:`LineSplitter` feeding :func:`decode_event`."""

    __slots__ = ("_splitter",)

    def __init__(self) -> None:
        self._splitter = LineSplitter()

    def feed(self, chunk: bytes) -> list[WatchItem]:
        """Decode every line this chunk completes."""
        return [decode_event(line) for line in self._splitter.feed(chunk)]

    def finish(self) -> list[WatchItem]:
        """Decode a final unterminated line, if the stream ended without a newline."""
        rest = self._splitter.finish()
        return [] if rest is None else [decode_event(rest)]
