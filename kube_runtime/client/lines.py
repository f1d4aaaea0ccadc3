"""Turning a watch response body into events: an incremental line splitter and a line decoder.

A watch body is newline-delimited JSON, one ``{"type": ..., "object": ...}`` per line, arriving in
chunks that cut lines anywhere. :class:`LineSplitter` reassembles lines with work linear in the
bytes received: each byte is searched for ``\\n`` once and copied at most twice (into the carry
buffer, then into the finished line), whatever the line length (there is no limit: a 10 MB object is
one line). httpx's own ``aiter_lines`` rescanned its buffer on every chunk (encode/httpx#2422).

:func:`decode_event` turns one line into a :class:`WatchEvent`, an :class:`ApiError` (an ``ERROR``
event carrying a ``Status``) or a :class:`WatchDecodeError` (anything else); it never raises, so one
bad line never ends a watch. :class:`WatchDecoder` combines both for a stream of chunks.

Decoding reads only the envelope's ``type``, the object's bytes and the object's head
(:mod:`kube_runtime.client.head`, msgspec): the event's object is a
:class:`~kube_runtime.client.head.LazyObject`, decoded whole (by orjson) only when ``object`` is
read. A line is checked as JSON and its object's metadata as the head's types; a number beyond a
double's range in the rest of the object is found only when ``object`` is decoded (an
``ObjectDecodeError``).
"""

from __future__ import annotations

import builtins
from typing import Any, Final

import msgspec
import orjson

from kube_runtime.client.errors import ApiError, ObjectDecodeError, WatchDecodeError
from kube_runtime.client.head import LazyObject, ObjectHead

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
_EVENT_TYPE_BYTES: Final[dict[bytes, str]] = {t.encode(): t for t in _EVENT_TYPES}


class WatchEvent:
    """One watch event: ``type`` is ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``.

    ``lazy`` is the object as bytes and head; ``object`` the decoded dict (for ``BOOKMARK``, an
    object carrying only ``metadata.resourceVersion``), built on first access and cached. Treat it
    as read-only: it is shared. Built from a dict (``WatchEvent(type, obj)``) the event holds that
    dict; assigning ``object`` replaces the object.
    """

    __slots__ = ("lazy", "type")

    def __init__(self, type: str, object: dict[str, Any] | LazyObject) -> None:
        self.type = type
        self.lazy = object if isinstance(object, LazyObject) else LazyObject.from_object(object)

    @property
    def object(self) -> dict[str, Any]:
        """The decoded object (raises ``ObjectDecodeError`` if its bytes do not decode)."""
        return self.lazy.object

    @object.setter
    def object(self, value: dict[str, Any]) -> None:
        self.lazy = LazyObject.from_object(value)

    def __repr__(self) -> str:
        try:
            name = self.lazy.meta.metadata.name
        except ObjectDecodeError:
            name = None
        return f"WatchEvent({self.type}, {name!r})"

    def __eq__(self, other: builtins.object) -> bool:
        if not isinstance(other, WatchEvent):
            return NotImplemented
        return self.type == other.type and self.lazy == other.lazy

    __hash__ = None  # type: ignore[assignment]  # mutable payload


WatchItem = WatchEvent | ApiError | WatchDecodeError
"""What a watch stream yields: an event, a server ``ERROR`` event, or an undecodable line."""


class _Envelope(msgspec.Struct):
    """A watch line: the event type and the object's bytes, left undecoded."""

    type: str
    object: msgspec.Raw


_envelope_decode: Final = msgspec.json.Decoder(_Envelope).decode
_head_decode: Final = msgspec.json.Decoder(ObjectHead).decode
_MsgspecError: Final = msgspec.MsgspecError
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def decode_event(line: bytes) -> WatchItem:
    """Decode one watch line; never raises.

    ``ERROR`` events become :class:`ApiError` built from the ``Status`` they carry (an ``ERROR``
    whose object is not a ``Status`` still becomes an ``ApiError``, code 500 if absent). A line that
    is not JSON, not an object, lacks a known ``type`` and an object ``object``, or whose object's
    metadata does not decode becomes a :class:`WatchDecodeError` holding the line.

    Lines shaped as API servers write them (``{"type":"<TYPE>","object":<object>}``, no spaces)
    are framed by position: the object's bytes are the slice between the prefix and the closing
    brace, checked by the head decoder (which rejects anything but one JSON object there). Any
    other line goes through the envelope decoder, with the same results.
    """
    if line.startswith(b'{"type":"') and line.endswith(b"}"):
        end = line.find(b'","object":', 9)
        if end != -1:
            event_type = _EVENT_TYPE_BYTES.get(line[9:end])
            if event_type is not None:
                raw = line[end + 11 : -1]
                try:
                    return WatchEvent(event_type, LazyObject(raw, _head_decode(raw)))
                except _MsgspecError:
                    pass  # the general path below says what is wrong
    try:
        envelope = _envelope_decode(line)
    except _MsgspecError as exc:
        return WatchDecodeError(_envelope_problem(line, exc), line)
    event_type = _EVENT_TYPES.get(envelope.type)
    raw = envelope.object
    if event_type is not None:
        try:
            head = _head_decode(raw)
        except _MsgspecError as exc:
            if bytes(memoryview(raw)[:1]) != b"{":
                return WatchDecodeError("watch event has no object", line)
            return WatchDecodeError(f"watch event object has undecodable metadata ({exc})", line)
        return WatchEvent(event_type, LazyObject(bytes(raw), head))
    if envelope.type == ERROR:
        try:
            obj = _loads(bytes(raw))
        except _JSONDecodeError as exc:
            return WatchDecodeError(f"watch line is not valid JSON ({exc})", line)
        if type(obj) is not dict:
            return WatchDecodeError("watch event has no object", line)
        if not obj.get("code"):
            obj = {**obj, "code": 500}
        return ApiError(obj)
    return WatchDecodeError(f"watch event has unknown type {envelope.type!r}", line)


def _envelope_problem(line: bytes, exc: Exception) -> str:
    """Why a line is not a watch envelope, in the words the orjson decoder used for each case."""
    if not isinstance(exc, msgspec.ValidationError):
        return f"watch line is not valid JSON ({exc})"
    if not line.lstrip().startswith(b"{"):
        return "watch line is not a JSON object"
    if "object" in str(exc) and "`$.type`" not in str(exc):
        return "watch event has no object"
    return f"watch event has unknown type ({exc})"


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
        # Lines are cut at newlines found by bytes.find (memchr): bytes.split compares byte by
        # byte, several times the cost on watch lines of a kilobyte or more.
        find = chunk.find
        newline = find(b"\n")
        if newline == -1:
            carry += chunk
            return []
        if carry:
            carry += chunk[:newline]
            lines = [bytes(carry)]
            carry.clear()
        else:
            lines = [chunk[:newline]]
        start = newline + 1
        newline = find(b"\n", start)
        while newline != -1:
            lines.append(chunk[start:newline])
            start = newline + 1
            newline = find(b"\n", start)
        if start < len(chunk):
            carry += chunk[start:]
        # Per-chunk checks keep the common case (no CR, no blank line) free of per-line work.
        if b"\r" in chunk:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        elif lines[0].endswith(b"\r"):  # a "\r\n" split between chunks: the "\r" was carried
            lines[0] = lines[0][:-1]
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
