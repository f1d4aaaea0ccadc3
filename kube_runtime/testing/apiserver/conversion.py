"""CRD conversion webhooks in the embedded API server, called as kube-apiserver calls them.

A CRD with ``conversion.strategy: Webhook`` has objects read at another version than the one they
were stored at converted by its webhook (``ConversionReview`` v1 over HTTPS, verified by the
``caBundle``): gets, lists and watch events, through one call each from the app. A ``Failure``
result or a failed call is a 500 (``conversion webhook for <version>, Kind=<kind> failed: ...``),
as kube-apiserver reports it; during a watch it is an ``ERROR`` event that ends the stream.

A write (``PUT``, ``PATCH``, ``DELETE``) of an object stored at another version than the request's
first converts the stored object to the request's version through the webhook (kept at its
resourceVersion, no event: only its representation changes), so the write, and the ``oldObject``
admission webhooks see, are at the request's version.

Difference from kube-apiserver kept on purpose: objects stay stored at the version they were
last written at (kube-apiserver converts them to the storage version on write), so the webhook is
called on reads and on writes at another version than the stored one, not on every write.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson

from kube_runtime.testing.apiserver.httpserver import ChunkSender, Response, StreamingResponse
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.respond import object_response
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import Storage
from kube_runtime.testing.apiserver.webhookcall import CallFailed, post_review

if TYPE_CHECKING:
    from kube_runtime.testing.apiserver.app import ApiApp
    from kube_runtime.testing.apiserver.respond import Target

__all__ = ["Conversion"]

CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


class _StopStream(Exception):
    """A watch event could not be converted: the ERROR event was sent, the stream ends."""


class Conversion:
    """The conversion webhooks of one embedded server's CRDs (see the module docs)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _conversion_hook(self, rtype: ResourceType) -> dict[str, Any] | None:
        if not rtype.custom:
            return None
        crd = self.storage.collection(CRDS).get("", f"{rtype.plural}.{rtype.group}")
        conversion = (crd.obj.get("spec") or {}).get("conversion") if crd is not None else None
        if not isinstance(conversion, dict) or conversion.get("strategy") != "Webhook":
            return None
        webhook = conversion.get("webhook") or {}
        return webhook if isinstance(webhook, dict) else None

    def converts(self, rtype: ResourceType) -> bool:
        """Whether reads of ``rtype`` may need its CRD's conversion webhook."""
        return self._conversion_hook(rtype) is not None

    async def convert(self, rtype: ResourceType, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``objects`` at ``rtype``'s version, converting those stored at another through the webhook."""
        hook = self._conversion_hook(rtype)
        todo = [o for o in objects if o.get("apiVersion") != rtype.api_version]
        if hook is None or not todo:
            return objects
        uid = str(uuid.uuid4())
        body = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": rtype.api_version, "objects": todo},
        }
        failed = f"conversion webhook for {todo[0].get('apiVersion')}, Kind={rtype.kind} failed"
        try:
            result = await post_review(hook.get("clientConfig") or {}, 30.0, body)
        except CallFailed as exc:
            raise StatusError(500, "InternalError", f"{failed}: {exc}") from None
        outcome = result.get("result") or {}
        if outcome.get("status") != "Success":
            raise StatusError(500, "InternalError", f"{failed}: {outcome.get('message', '')}")
        converted = result.get("convertedObjects")
        if not isinstance(converted, list) or len(converted) != len(todo):
            raise StatusError(500, "InternalError", f"{failed}: expected {len(todo)} converted objects")
        replaced = iter(converted)
        return [next(replaced) if o.get("apiVersion") != rtype.api_version else o for o in objects]

    async def align(self, rtype: ResourceType, namespace: str | None, name: str) -> None:
        """Before a write at ``rtype``'s version: convert the stored object to it (see the module
        docs). Nothing happens when it is already there, missing, or the CRD has no webhook."""
        if not self.converts(rtype):
            return
        coll = self.storage.collection(rtype.storage_key)
        record = coll.get(namespace or "", name)
        if record is None or record.obj.get("apiVersion") == rtype.api_version:
            return
        (converted,) = await self.convert(rtype, [record.copy_obj()])
        self.storage.replace_current(coll, record, converted)

    async def read(self, app: ApiApp, t: Target, q: dict[str, str], mode: str) -> Response:
        """A GET (one object or a list, not a watch) with objects converted to the requested version."""
        if t.name is None:
            response = app._list(t, q, mode)
        else:
            response = object_response(app.ops.get(t.rtype, t.namespace, t.name), 200, mode, t.rtype)
        if mode != "json":
            return response
        doc = orjson.loads(response.body)
        if t.name is None:
            doc["items"] = await self.convert(t.rtype, doc.get("items") or [])
        else:
            (doc,) = await self.convert(t.rtype, [doc])
        return Response(response.status, orjson.dumps(doc), response.content_type, response.headers)

    def watch(self, rtype: ResourceType, response: StreamingResponse, mode: str) -> StreamingResponse:
        """``response`` (a watch) with event objects converted to ``rtype``'s version; a conversion
        failure ends the watch with an ``ERROR`` event carrying the 500 Status."""
        if mode != "json" or not self.converts(rtype):
            return response
        inner = response.writer

        async def writer(send: ChunkSender) -> None:
            async def converting(chunk: bytes) -> None:
                out: list[bytes] = []
                for line in chunk.split(b"\n"):
                    if not line:
                        continue
                    event = orjson.loads(line)
                    obj = event.get("object")
                    foreign = isinstance(obj, dict) and obj.get("apiVersion") not in (None, rtype.api_version)
                    if foreign and event.get("type") not in ("ERROR", "BOOKMARK"):
                        try:
                            (event["object"],) = await self.convert(rtype, [obj])
                        except StatusError as exc:
                            out.append(orjson.dumps({"type": "ERROR", "object": exc.status()}) + b"\n")
                            await send(b"".join(out))
                            raise _StopStream from None
                        line = orjson.dumps(event)
                    out.append(line + b"\n")
                await send(b"".join(out))

            try:
                await inner(converting)
            except _StopStream:
                return

        return StreamingResponse(response.status, writer, response.content_type, response.headers)
