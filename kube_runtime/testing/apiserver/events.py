"""``events.k8s.io/v1`` Events served from the same objects as ``core/v1`` Events.

kube-apiserver stores one kind of Event and serves it through both APIs, so an Event written by a
controller through ``events.k8s.io/v1`` (client-go's new recorder, kube-runtime's recorder) is what
``kubectl describe`` (which reads ``core/v1``) shows, and the other way round. The embedded server
does the same: objects are stored in their ``core/v1`` form, and :func:`serve_as_events_v1` translates
an ``events.k8s.io/v1`` request into a ``core/v1`` one (body, patch, field selector) and the answer
back (object, list, watch events), renaming the fields the two versions name differently.

Guarantees: the translation is a renaming of top-level fields (see ``_RENAMES``), so a round trip
through either API keeps every field; resourceVersions, uids and watch events are shared.
Pitfalls: kube-apiserver's typed encoders print unset non-pointer fields of the *other* version
(``"source": {}``, ``"firstTimestamp": null``, ``"reportingComponent": ""``); here a field is absent
when it was never set. Server-side apply through ``events.k8s.io/v1`` records managed fields under
the ``core/v1`` names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import yaml

from kube_runtime.testing.apiserver.bodies import PATCH_TYPES, content_type, load_yaml
from kube_runtime.testing.apiserver.httpserver import ChunkSender, Request, Response, StreamingResponse
from kube_runtime.testing.apiserver.resources import ResourceType

__all__ = ["is_events_v1", "serve_as_events_v1", "to_core", "to_events_v1"]

# events.k8s.io/v1 name -> core/v1 name (k8s.io/kubernetes pkg/apis/events/v1 conversion).
_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_BACK = {core: new for new, core in _RENAMES.items()}
_CORE_API = "v1"
_EVENTS_API = "events.k8s.io/v1"

Dispatch = Callable[[Request], Awaitable[Response | StreamingResponse]]


def is_events_v1(rtype: ResourceType) -> bool:
    return rtype.group == "events.k8s.io" and rtype.plural == "events"


def _rename(obj: dict[str, Any], names: dict[str, str], api_version: str) -> dict[str, Any]:
    out = {names.get(k, k): v for k, v in obj.items()}
    if "apiVersion" in out:
        out["apiVersion"] = api_version
    return out


def to_core(obj: dict[str, Any]) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event (or a patch of one) in its ``core/v1`` form."""
    return _rename(obj, _RENAMES, _CORE_API)


def to_events_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """A ``core/v1`` Event in its ``events.k8s.io/v1`` form."""
    return _rename(obj, _BACK, _EVENTS_API)


def _core_path(path: Any) -> Any:
    if not isinstance(path, str) or not path.startswith("/"):
        return path
    head, sep, rest = path[1:].partition("/")
    return "/" + _RENAMES.get(head, head) + sep + rest


def _core_body(request: Request) -> bytes:
    """The request body with events.k8s.io/v1 names replaced by core/v1 ones (unchanged if unreadable)."""
    if not request.body:
        return request.body
    media = content_type(request)
    try:
        if media in ("application/yaml", "application/apply-patch+yaml"):
            doc = load_yaml(request.body)
        elif media in ("", "application/json", "*/*") or media in PATCH_TYPES:
            doc = orjson.loads(request.body)
        else:
            return request.body  # protobuf and the like: the core handler answers as it would
    except (yaml.YAMLError, UnicodeDecodeError, orjson.JSONDecodeError):
        return request.body  # the core handler reports the decoding error
    if isinstance(doc, dict):
        doc = to_core(doc)
    elif isinstance(doc, list) and media == "application/json-patch+json":
        doc = [
            {**op, "path": _core_path(op.get("path")), "from": _core_path(op.get("from"))}
            if isinstance(op, dict) and "from" in op
            else {**op, "path": _core_path(op.get("path"))}
            if isinstance(op, dict)
            else op
            for op in doc
        ]
    return orjson.dumps(doc)


def _core_term(term: str) -> str:
    for name, core in _RENAMES.items():
        if term.startswith(name) and term[len(name) : len(name) + 1] in (".", "=", "!"):
            return core + term[len(name) :]
    return term


def _core_query(query: dict[str, str]) -> dict[str, str]:
    selector = query.get("fieldSelector")
    if not selector:
        return query
    return {**query, "fieldSelector": ",".join(_core_term(t) for t in selector.split(","))}


def _view(doc: Any) -> Any:
    if not isinstance(doc, dict):
        return doc
    if doc.get("kind") == "Event":
        return to_events_v1(doc)
    if doc.get("kind") == "EventList":
        items = [to_events_v1(i) if isinstance(i, dict) else i for i in doc.get("items") or ()]
        return {**doc, "apiVersion": _EVENTS_API, "items": items}
    return doc


def _view_lines(chunk: bytes) -> bytes:
    out = []
    for line in chunk.split(b"\n"):
        if line:
            event = orjson.loads(line)
            if isinstance(event, dict) and isinstance(event.get("object"), dict):
                event["object"] = _view(event["object"])
            line = orjson.dumps(event)
        out.append(line)
    return b"\n".join(out)


async def serve_as_events_v1(request: Request, dispatch: Dispatch) -> Response | StreamingResponse:
    """Serve an ``events.k8s.io/v1`` request with ``dispatch``, the ``core/v1`` Events handler."""
    core_request = Request(
        request.method,
        request.path,
        _core_query(request.query),
        request.headers,
        _core_body(request),
        request.keep_alive,
    )
    answer = await dispatch(core_request)
    if isinstance(answer, StreamingResponse):
        inner = answer.writer

        async def writer(send: ChunkSender) -> None:
            async def translated(chunk: bytes) -> None:
                await send(_view_lines(chunk))

            await inner(translated)

        return StreamingResponse(answer.status, writer, answer.content_type, answer.headers)
    if answer.content_type != "application/json" or not answer.body:
        return answer  # Table and PartialObjectMetadata answers name no Event fields
    return Response(
        answer.status, orjson.dumps(_view(orjson.loads(answer.body))), answer.content_type, answer.headers
    )
