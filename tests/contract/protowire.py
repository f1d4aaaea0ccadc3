"""A minimal protobuf encoder for tests: the wire format kubectl's typed clients send.

Only what the tests need: varint and length-delimited fields, and the ``k8s\\x00`` + runtime.Unknown
envelope. Field numbers are those of k8s.io/api's generated.proto.
"""

from __future__ import annotations

__all__ = ["envelope", "field", "map_entry", "varint_field"]


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (string, bytes or an embedded message)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def map_entry(number: int, key: str, value: str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """``k8s\\x00`` + runtime.Unknown{typeMeta, raw, contentEncoding, contentType}."""
    type_meta = field(1, api_version) + field(2, kind)
    return b"k8s\x00" + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")
