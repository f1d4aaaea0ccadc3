"""Decoding of Kubernetes protobuf request bodies for the few kinds kubectl sends that way.

kubectl's typed clients (``kubectl create namespace|configmap|secret|deployment``) send
``application/vnd.kubernetes.protobuf`` and do not fall back to JSON on 415, so the server decodes
the envelope (``k8s\\x00`` + ``runtime.Unknown``) and the messages of Namespace, ConfigMap and
Secret (with ObjectMeta) into the JSON form, and Deployments with :mod:`.protobuf_apps`. Other kinds
get 415. Responses are always JSON
(every Kubernetes client also accepts JSON).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from typing import Any

__all__ = ["ProtobufError", "decode_object", "fields_of", "object_meta"]

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a protobuf object this server can decode."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs; length-delimited values are bytes, varints ints."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ProtobufError("truncated field")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            out.append((number, int.from_bytes(buf[pos : pos + 8], "little")))
            pos += 8
        elif wire == 5:
            out.append((number, int.from_bytes(buf[pos : pos + 4], "little")))
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _str(v: int | bytes) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a string")
    return v.decode("utf-8")


def _bytes(v: int | bytes) -> bytes:
    if not isinstance(v, bytes):
        raise ProtobufError("expected bytes")
    return v


def _map_entry(v: int | bytes, value: Callable[[int | bytes], Any]) -> tuple[str, Any]:
    key: str = ""
    val: Any = value(b"")
    for n, x in _fields(_bytes(v)):
        if n == 1:
            key = _str(x)
        elif n == 2:
            val = value(x)
    return key, val


def _time(v: int | bytes) -> str:
    seconds = 0
    for n, x in _fields(_bytes(v)):
        if n == 1 and isinstance(x, int):
            seconds = x
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner_ref(v: int | bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    out: dict[str, Any] = {}
    for n, x in _fields(_bytes(v)):
        if n in names:
            out[names[n]] = _str(x)
        elif n == 6:
            out["controller"] = bool(x)
        elif n == 7:
            out["blockOwnerDeletion"] = bool(x)
    return out


def _object_meta(v: int | bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for n, x in _fields(_bytes(v)):
        if n in strings:
            if x:
                meta[strings[n]] = _str(x)
        elif n == 7 and isinstance(x, int) and x:
            meta["generation"] = x
        elif n == 8:
            meta["creationTimestamp"] = _time(x)
        elif n == 11:
            k, val = _map_entry(x, _str)
            meta.setdefault("labels", {})[k] = val
        elif n == 12:
            k, val = _map_entry(x, _str)
            meta.setdefault("annotations", {})[k] = val
        elif n == 13:
            meta.setdefault("ownerReferences", []).append(_owner_ref(x))
        elif n == 14:
            meta.setdefault("finalizers", []).append(_str(x))
    return meta


def fields_of(buf: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of one message (for decoders in other modules)."""
    return _fields(buf)


def object_meta(value: int | bytes) -> dict[str, Any]:
    """An ObjectMeta message in its JSON form (for decoders in other modules)."""
    return _object_meta(value)


def _b64(v: int | bytes) -> str:
    return base64.b64encode(_bytes(v)).decode()


def _namespace(fields: list[tuple[int, int | bytes]], obj: dict[str, Any]) -> None:
    for n, x in fields:
        if n == 2:
            finalizers = [_str(f) for m, f in _fields(_bytes(x)) if m == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}


def _configmap(fields: list[tuple[int, int | bytes]], obj: dict[str, Any]) -> None:
    for n, x in fields:
        if n == 2:
            k, val = _map_entry(x, _str)
            obj.setdefault("data", {})[k] = val
        elif n == 3:
            k, val = _map_entry(x, _b64)
            obj.setdefault("binaryData", {})[k] = val
        elif n == 4:
            obj["immutable"] = bool(x)


def _secret(fields: list[tuple[int, int | bytes]], obj: dict[str, Any]) -> None:
    for n, x in fields:
        if n == 2:
            k, val = _map_entry(x, _b64)
            obj.setdefault("data", {})[k] = val
        elif n == 3:
            obj["type"] = _str(x)
        elif n == 4:
            k, val = _map_entry(x, _str)
            obj.setdefault("stringData", {})[k] = val
        elif n == 5:
            obj["immutable"] = bool(x)


_KINDS: dict[tuple[str, str], Callable[[list[tuple[int, int | bytes]], dict[str, Any]], None]] = {
    ("v1", "Namespace"): _namespace,
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
}


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a protobuf-encoded object into its JSON form; raises :class:`ProtobufError`."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf prefix")
    api_version = kind = ""
    raw = b""
    for n, x in _fields(body[len(MAGIC) :]):
        if n == 1:
            for m, y in _fields(_bytes(x)):
                if m == 1:
                    api_version = _str(y)
                elif m == 2:
                    kind = _str(y)
        elif n == 2:
            raw = _bytes(x)
    decoder = _KINDS.get((api_version, kind))
    if decoder is None:
        # Imported here: protobuf_apps builds on this module's wire helpers.
        from kube_runtime.testing.apiserver.protobuf_apps import KINDS

        decoder = KINDS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"protobuf bodies of {api_version}/{kind} are not supported; send JSON")
    fields = _fields(raw)
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    for n, x in fields:
        if n == 1:
            obj["metadata"] = _object_meta(x)
    decoder(fields, obj)
    return obj
