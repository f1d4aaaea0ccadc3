"""The watch line splitter and event decoder, without a server."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client import ApiError, WatchDecodeError, WatchEvent
from kube_runtime.client.lines import ADDED, BOOKMARK, LineSplitter, WatchDecoder, decode_event


def _split_all(data: bytes, cuts: list[int]) -> list[bytes]:
    splitter = LineSplitter()
    lines: list[bytes] = []
    start = 0
    for cut in sorted(set(cuts)):
        lines += splitter.feed(data[start:cut])
        start = cut
    lines += splitter.feed(data[start:])
    rest = splitter.finish()
    if rest is not None:
        lines.append(rest)
    return lines


line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"x"))


@given(st.lists(line_bytes, max_size=20), st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_any_chunking_yields_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    cuts = [c for c in cuts if c <= len(data)]
    assert _split_all(data, cuts) == [line for line in lines if line]


@given(
    st.lists(line_bytes, max_size=20),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    st.lists(st.booleans(), min_size=20, max_size=20),
)
def test_any_chunking_of_crlf_lines_yields_the_same_lines(
    lines: list[bytes], cuts: list[int], crlf: list[bool]
) -> None:
    """``\r\n`` endings, mixed with ``\n`` ones, wherever the chunks cut them (a ``\r`` at the
    end of one chunk and its ``\n`` at the start of the next used to leave the ``\r`` behind)."""
    data = b"".join(line + (b"\r\n" if crlf[i] else b"\n") for i, line in enumerate(lines))
    cuts = [c for c in cuts if c <= len(data)]
    assert _split_all(data, cuts) == [line for line in lines if line]


def test_a_crlf_cut_between_chunks_leaves_nothing_behind() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":1}\r') == []
    assert splitter.feed(b'\n{"b":2}\r\n\r') == [b'{"a":1}', b'{"b":2}']
    assert splitter.feed(b"\n") == []  # a blank "\r\n" line, cut in two
    assert splitter.finish() is None


def test_ten_megabyte_line_split_across_many_chunks() -> None:
    big = {"type": "MODIFIED", "object": {"metadata": {"name": "big"}, "data": {"blob": "x" * 10_000_000}}}
    encoded = (
        orjson.dumps(big) + b"\n" + orjson.dumps({"type": "DELETED", "object": {"metadata": {}}}) + b"\n"
    )
    decoder = WatchDecoder()
    items = []
    chunk = 4096
    for i in range(0, len(encoded), chunk):
        items += decoder.feed(encoded[i : i + chunk])
    assert decoder.finish() == []
    assert [type(i) for i in items] == [WatchEvent, WatchEvent]
    first = items[0]
    assert isinstance(first, WatchEvent)
    assert first.type == "MODIFIED"
    assert len(first.object["data"]["blob"]) == 10_000_000
    assert isinstance(items[1], WatchEvent)
    assert items[1].type == "DELETED"


def test_splitter_holds_only_the_unfinished_line() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert splitter.pending == 4
    assert splitter.feed(b":2}\r\n\n") == [b'{"b":2}']
    assert splitter.pending == 0


def test_unterminated_last_line_is_returned_by_finish() -> None:
    decoder = WatchDecoder()
    assert decoder.feed(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}') == []
    (item,) = decoder.finish()
    assert isinstance(item, WatchEvent)
    assert item.type is ADDED


def test_event_types_are_the_module_constants() -> None:
    item = decode_event(b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}')
    assert isinstance(item, WatchEvent)
    assert item.type is BOOKMARK
    assert item.object["metadata"]["resourceVersion"] == "12"


def test_error_event_becomes_api_error_from_its_status() -> None:
    line = orjson.dumps(
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "too old resource version: 1 (5)",
                "reason": "Expired",
                "code": 410,
            },
        }
    )
    item = decode_event(line)
    assert isinstance(item, ApiError)
    assert item.code == 410
    assert item.is_gone
    assert item.reason == "Expired"
    assert "too old" in item.message


def test_error_event_without_code_is_a_500() -> None:
    item = decode_event(b'{"type":"ERROR","object":{"kind":"Status","message":"boom"}}')
    assert isinstance(item, ApiError)
    assert item.code == 500


def test_malformed_lines_become_decode_errors_and_the_stream_goes_on() -> None:
    decoder = WatchDecoder()
    body = (
        b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n'
        b"this is not json\n"
        b"[1,2,3]\n"
        b'{"type":"ADDED"}\n'
        b'{"object":{"metadata":{}}}\n'
        b'{"type":"RENAMED","object":{}}\n'
        b'{"type":"ADDED","object":"not an object"}\n'
        b'{"type":"ADDED","object":{"metadata":{"name":"b"}}\n'  # truncated JSON
        b'{"type":"DELETED","object":{"metadata":{"name":"a"}}}\n'
    )
    items = decoder.feed(body)
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["WatchEvent"] + ["WatchDecodeError"] * 7 + ["WatchEvent"]
    errors = [i for i in items if isinstance(i, WatchDecodeError)]
    assert errors[0].line == b"this is not json"
    assert "unknown type 'RENAMED'" in str(errors[4])


def test_decode_error_message_truncates_huge_lines() -> None:
    line = b"x" * 100_000
    item = decode_event(line)
    assert isinstance(item, WatchDecodeError)
    assert item.line == line
    assert len(str(item)) < 400


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]),
    st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5), max_size=4),
    st.sampled_from(["", ',"x":1', "}", " "]),
)
def test_positional_framing_agrees_with_the_envelope_decoder(
    event_type: str, data: dict[str, Any], tail: str
) -> None:
    obj = {"metadata": {"name": "a", "resourceVersion": "3"}, "data": data}
    compact = orjson.dumps({"type": event_type, "object": obj})  # framed by position
    spaced = json.dumps({"type": event_type, "object": obj}).encode()  # the envelope decoder
    for line in (compact, spaced):
        mangled = line[:-1] + tail.encode() + b"}"
        fast, general = decode_event(mangled), decode_event(b" " + mangled)
        assert type(fast) is type(general)
        if isinstance(fast, WatchEvent):
            assert isinstance(general, WatchEvent)
            assert (fast.type, fast.object) == (general.type, general.object)
            assert fast.object == obj
