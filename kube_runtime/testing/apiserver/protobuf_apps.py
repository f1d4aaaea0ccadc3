"""Protobuf decoding of ``apps/v1`` Deployments (what ``kubectl create deployment`` sends).

kubectl's typed clients send ``application/vnd.kubernetes.protobuf`` and do not fall back to JSON
when refused, so without this ``kubectl create deployment`` cannot work against the embedded server.
The decoder is driven by a small table of the messages' field numbers (from k8s.io/api's
``generated.proto``): the fields kubectl and ordinary manifests set on a Deployment's spec and pod
template.

Guarantees: nothing is dropped silently. gogo-protobuf writes every non-pointer field even when it is
empty, so a field this table does not know is accepted only when it holds its zero value (0, "" or an
empty message); any other unknown field makes the whole body a :class:`ProtobufError`, answered 415
(the client then sees why instead of getting an object with a field missing). Pitfall: scalar fields
are left out of the JSON form when zero, except the ones marked optional (Go pointers such as
``spec.replicas``, where 0 is a value).
"""

from __future__ import annotations

from typing import Any

from kube_runtime.testing.apiserver.protobuf import ProtobufError, fields_of, object_meta

__all__ = ["KINDS", "decode_message"]

# A message is {field number: (JSON name, type, sub-message)}. Types: str, int, opt_int (kept when 0),
# bool, msg, msgs (repeated), strs (repeated), map (string to string), quantities (string to
# Quantity), int_or_str, meta (ObjectMeta).
Message = dict[int, tuple[str, str, "Message | None"]]

_REQUIREMENT: Message = {1: ("key", "str", None), 2: ("operator", "str", None), 3: ("values", "strs", None)}
_LABEL_SELECTOR: Message = {1: ("matchLabels", "map", None), 2: ("matchExpressions", "msgs", _REQUIREMENT)}
_PORT: Message = {
    1: ("name", "str", None),
    2: ("hostPort", "int", None),
    3: ("containerPort", "int", None),
    4: ("protocol", "str", None),
    5: ("hostIP", "str", None),
}
_ENV: Message = {1: ("name", "str", None), 2: ("value", "str", None)}
_RESOURCES: Message = {1: ("limits", "quantities", None), 2: ("requests", "quantities", None)}
_CONTAINER: Message = {
    1: ("name", "str", None),
    2: ("image", "str", None),
    3: ("command", "strs", None),
    4: ("args", "strs", None),
    5: ("workingDir", "str", None),
    6: ("ports", "msgs", _PORT),
    7: ("env", "msgs", _ENV),
    8: ("resources", "msg", _RESOURCES),
    13: ("terminationMessagePath", "str", None),
    14: ("imagePullPolicy", "str", None),
    20: ("terminationMessagePolicy", "str", None),
}
_POD_SPEC: Message = {
    2: ("containers", "msgs", _CONTAINER),
    3: ("restartPolicy", "str", None),
    4: ("terminationGracePeriodSeconds", "opt_int", None),
    6: ("dnsPolicy", "str", None),
    7: ("nodeSelector", "map", None),
    8: ("serviceAccountName", "str", None),
    19: ("schedulerName", "str", None),
    20: ("initContainers", "msgs", _CONTAINER),
}
_TEMPLATE: Message = {1: ("metadata", "meta", None), 2: ("spec", "msg", _POD_SPEC)}
_ROLLING: Message = {1: ("maxUnavailable", "int_or_str", None), 2: ("maxSurge", "int_or_str", None)}
_STRATEGY: Message = {1: ("type", "str", None), 2: ("rollingUpdate", "msg", _ROLLING)}
_DEPLOYMENT_SPEC: Message = {
    1: ("replicas", "opt_int", None),
    2: ("selector", "msg", _LABEL_SELECTOR),
    3: ("template", "msg", _TEMPLATE),
    4: ("strategy", "msg", _STRATEGY),
    5: ("minReadySeconds", "int", None),
    6: ("revisionHistoryLimit", "opt_int", None),
    7: ("paused", "bool", None),
    9: ("progressDeadlineSeconds", "opt_int", None),
}
# Status is the server's to write; a client's (always empty from kubectl) is accepted only when zero.
_DEPLOYMENT_STATUS: Message = {}


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise ProtobufError("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value  # negative int32/int64 are 10-byte varints


def _str(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string")
    return value.decode("utf-8")


def _map_entry(value: int | bytes) -> tuple[str, bytes]:
    key, val = "", b""
    for n, x in fields_of(_bytes(value)):
        if n == 1:
            key = _str(x)
        elif n == 2:
            val = _bytes(x)
    return key, val


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited field")
    return value


def _int_or_str(value: int | bytes) -> int | str:
    kind, int_val, str_val = 0, 0, ""
    for n, x in fields_of(_bytes(value)):
        if n == 1:
            kind = _int(x)
        elif n == 2:
            int_val = _int(x)
        elif n == 3:
            str_val = _str(x)
    return str_val if kind == 1 else int_val


def _quantity(value: bytes) -> str:
    return next((_str(x) for n, x in fields_of(value) if n == 1), "")


def decode_message(buf: bytes, message: Message, where: str) -> dict[str, Any]:
    """Decode ``buf`` as ``message`` into its JSON form (``where`` names it in errors)."""
    out: dict[str, Any] = {}
    for number, value in fields_of(buf):
        spec = message.get(number)
        if spec is None:
            if value in (0, b""):
                continue  # an empty non-pointer field gogo-protobuf always writes
            raise ProtobufError(f"field {number} of {where} is not supported by this server; send JSON")
        name, kind, sub = spec
        path = f"{where}.{name}"
        if kind == "str":
            if text := _str(value):
                out[name] = text
        elif kind == "int":
            if number_value := _int(value):
                out[name] = number_value
        elif kind == "opt_int":
            out[name] = _int(value)
        elif kind == "bool":
            if _int(value):
                out[name] = True
        elif kind == "strs":
            out.setdefault(name, []).append(_str(value))
        elif kind == "map":
            key, raw = _map_entry(value)
            out.setdefault(name, {})[key] = raw.decode("utf-8")
        elif kind == "quantities":
            key, raw = _map_entry(value)
            out.setdefault(name, {})[key] = _quantity(raw)
        elif kind == "int_or_str":
            out[name] = _int_or_str(value)
        elif kind == "meta":
            out[name] = object_meta(value)
        elif kind == "msg":
            assert sub is not None
            out[name] = decode_message(_bytes(value), sub, path)
        elif kind == "msgs":
            assert sub is not None
            out.setdefault(name, []).append(decode_message(_bytes(value), sub, path))
        else:  # pragma: no cover - a table error
            raise AssertionError(f"unknown field type {kind}")
    return out


def _deployment(fields: list[tuple[int, int | bytes]], obj: dict[str, Any]) -> None:
    for number, value in fields:
        if number == 2:
            obj["spec"] = decode_message(_bytes(value), _DEPLOYMENT_SPEC, "spec")
        elif number == 3:
            obj["status"] = decode_message(_bytes(value), _DEPLOYMENT_STATUS, "status")
        elif number != 1 and value not in (0, b""):
            raise ProtobufError(f"field {number} of Deployment is not supported by this server; send JSON")


KINDS = {("apps/v1", "Deployment"): _deployment}
