"""Response shaping shared by the request handlers: media types, negotiation, the parsed target URL.

:func:`negotiate` picks the representation a client's ``Accept`` header asks for (full JSON,
``PartialObjectMetadata`` or ``Table``); :func:`object_response` answers one stored object in it.
Guarantees: every function here is pure (no server state); :func:`error_response` turns any
:class:`StatusError` into kube-apiserver's ``Status`` body, with ``Retry-After`` when it has one.
Pitfall: YAML is accepted in ``Accept`` but answered as JSON (every client decodes JSON).
"""

from __future__ import annotations

from typing import Any

import orjson

from kube_runtime.testing.apiserver.httpserver import Response
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.status import StatusError, status_body
from kube_runtime.testing.apiserver.storage import Record
from kube_runtime.testing.apiserver.table import table_bytes

__all__ = [
    "JSON",
    "META_CT",
    "META_LIST_CT",
    "NOT_ALLOWED",
    "NOT_FOUND",
    "PAGE_NOT_FOUND",
    "TABLE_CT",
    "Headers",
    "Target",
    "error_response",
    "json_response",
    "negotiate",
    "object_response",
    "query_bool",
]

Headers = tuple[tuple[str, str], ...]

JSON = "application/json"
META_CT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
META_LIST_CT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
TABLE_CT = "application/json;as=Table;g=meta.k8s.io;v=v1"
NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource", {})
# What kube-apiserver's HTTP mux answers for a path no API group claims (an unknown top-level path or
# an unknown group under /apis): plain text, not a Status. Known groups and /api answer a JSON Status.
PAGE_NOT_FOUND = Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
NOT_ALLOWED = StatusError(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
)


def json_response(obj: Any, status: int = 200, content_type: str = JSON) -> Response:
    return Response(status, orjson.dumps(obj), content_type)


def error_response(err: StatusError) -> Response:
    headers: Headers = ()
    if err.retry_after is not None:
        headers = (("Retry-After", str(err.retry_after)),)
    return Response(err.code, status_body(err), JSON, headers)


def negotiate(accept: str | None) -> str | None:
    """``json``, ``meta`` (PartialObjectMetadata), ``table``, or None when nothing acceptable."""
    if not accept:
        return "json"
    for media in accept.split(","):
        parts = [p.strip() for p in media.split(";")]
        mt = parts[0].lower()
        if mt not in ("application/json", "*/*", "application/*", "application/yaml"):
            continue
        params: dict[str, str] = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip()
        as_ = params.get("as")
        if as_ is None:
            return "json"
        if params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return "meta"
            if as_ == "Table":
                return "table"
    return None


def query_bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


class Target:
    """A parsed resource URL."""

    __slots__ = ("name", "namespace", "rtype", "subresource")

    def __init__(
        self, rtype: ResourceType, namespace: str | None, name: str | None, subresource: str | None
    ) -> None:
        self.rtype = rtype
        self.namespace = namespace
        self.name = name
        self.subresource = subresource


def object_response(
    record: Record, code: int, mode: str, rtype: ResourceType, headers: Headers = ()
) -> Response:
    """One stored object in the negotiated ``mode`` (``json``, ``meta`` or ``table``)."""
    if mode == "meta":
        return Response(code, record.meta_raw, META_CT, headers)
    if mode == "table":
        return Response(code, table_bytes([record], None, rtype), TABLE_CT, headers)
    return Response(code, record.raw, JSON, headers)
