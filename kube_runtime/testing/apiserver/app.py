"""The HTTP application: entry, auth, routing of a URL to its resource, and method dispatch.

Every failure is answered with a ``Status`` object; no request can crash the server or corrupt
storage (operations validate before they commit, and an unexpected exception becomes a 500).
The handlers live beside it: list and watch in :mod:`.listwatch`, body checks, patches and deletes
in :mod:`.writes` (mixins of :class:`ApiApp`), response shaping in :mod:`.respond`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import anyio

from kube_runtime.testing.apiserver.admission import Admission
from kube_runtime.testing.apiserver.conversion import Conversion
from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.events import is_events_v1, serve_as_events_v1
from kube_runtime.testing.apiserver.faults import Faults
from kube_runtime.testing.apiserver.httpserver import Request, Response, StreamingResponse
from kube_runtime.testing.apiserver.listwatch import ListWatchHandlers
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.resources import CORE_EVENTS
from kube_runtime.testing.apiserver.respond import (
    NOT_ALLOWED,
    NOT_FOUND,
    PAGE_NOT_FOUND,
    Target,
    error_response,
    json_response,
    negotiate,
    object_response,
    query_bool,
)
from kube_runtime.testing.apiserver.scale import serve_scale
from kube_runtime.testing.apiserver.settings import ServerSettings
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import Storage
from kube_runtime.testing.apiserver.writes import WriteHandlers

__all__ = ["ApiApp", "ServerSettings"]

_log = logging.getLogger(__name__)

_MAX_BODY = 3 * 1024 * 1024
_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+kube-runtime",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class ApiApp(ListWatchHandlers, WriteHandlers):
    """The request handler of the embedded API server."""

    def __init__(
        self,
        *,
        storage: Storage,
        registry: Registry,
        ops: ObjectOps,
        faults: Faults,
        settings: ServerSettings,
        token: Callable[[], str],
        address: Callable[[], str],
        admin: Callable[[Request, list[str]], Awaitable[Response]] | None = None,
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.ops = ops
        self.faults = faults
        self.settings = settings
        self._token = token
        self._address = address
        self._admin = admin
        self.requests = 0
        self.on_watch: Callable[[], None] | None = None
        self.conversion = Conversion(storage)
        self.admission = Admission(storage, registry, self.conversion)

    # Entry -----------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | StreamingResponse:
        self.requests += 1
        try:
            return await self._handle(request)
        except StatusError as err:
            return error_response(err)
        except Exception as exc:  # a bug must not take the server down
            _log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(StatusError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    def _authenticated(self, request: Request) -> bool | None:
        """True: valid token; False: wrong token; None: no credentials."""
        header = request.headers.get("authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return value.strip() == self._token() and not self.faults.token_expired

    async def _handle(self, request: Request) -> Response | StreamingResponse:
        path = request.path
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        auth = self._authenticated(request)
        if parts and parts[0] in ("healthz", "livez", "readyz") and auth is not False:
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if parts and parts[0] == "admin" and self._admin is not None:
            # The admin endpoint ignores the "expired token" fault, or it could never be undone.
            header = request.headers.get("authorization") or ""
            if header.partition(" ")[2].strip() != self._token():
                raise StatusError(401, "Unauthorized", "Unauthorized")
            return await self._admin(request, parts[1:])
        if auth is not True:
            raise StatusError(401, "Unauthorized", "Unauthorized")
        if self.faults.latency > 0:
            await anyio.sleep(self.faults.latency)
        failure = self.faults.take_failure()
        if failure is not None:
            raise failure
        if len(request.body) > _MAX_BODY:
            raise StatusError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")
        if not parts:
            return json_response(
                {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}
            )
        head = parts[0]
        if head == "version" and len(parts) == 1:
            return json_response(_VERSION)
        if head == "api":
            return await self._api(request, "", parts[1:])
        if head == "openapi" and len(parts) >= 2 and parts[1] == "v3":
            return self._openapi_v3(request, parts[2:])
        if head == "apis":
            if len(parts) == 1:
                return self._get_only(request, self.registry.group_list())
            if len(parts) == 2:
                doc = self.registry.group(parts[1])
                return PAGE_NOT_FOUND if doc is None else self._get_only(request, doc)
            try:
                return await self._api(request, parts[1], parts[2:])
            except StatusError as err:
                # Routing failed; only then pay for the group lookup (kept off the hot path).
                if err is NOT_FOUND and self.registry.group(parts[1]) is None:
                    return PAGE_NOT_FOUND
                raise
        if head == "version":
            raise NOT_FOUND
        return PAGE_NOT_FOUND

    def _openapi_v3(self, request: Request, rest: list[str]) -> Response:
        if not rest:
            return self._get_only(request, self.registry.openapi_v3_root())
        if rest[0] == "api" and len(rest) == 2:
            doc = self.registry.openapi_v3_group_version("", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            doc = self.registry.openapi_v3_group_version(rest[1], rest[2])
        else:
            doc = None
        if doc is None:
            raise NOT_FOUND
        return self._get_only(request, doc)

    def _get_only(self, request: Request, doc: dict[str, Any]) -> Response:
        if request.method != "GET":
            raise NOT_ALLOWED
        return json_response(doc)

    async def _api(self, request: Request, group: str, parts: list[str]) -> Response | StreamingResponse:
        if not group and not parts:
            return self._get_only(request, self.registry.core_versions(self._address()))
        if not parts:
            raise NOT_FOUND
        version, rest = parts[0], parts[1:]
        if not group and version != "v1":
            raise NOT_FOUND
        if not rest:
            doc = self.registry.resource_list(group, version)
            if doc is None:
                raise NOT_FOUND
            return self._get_only(request, doc)
        watch_path = False
        if rest[0] == "watch":
            watch_path = True
            rest = rest[1:]
        target = self._target(group, version, rest)
        if is_events_v1(target.rtype):
            # One store, two APIs (as in kube-apiserver): events.k8s.io/v1 goes through core/v1.
            core = Target(CORE_EVENTS, target.namespace, target.name, target.subresource)
            return await serve_as_events_v1(request, lambda req: self._dispatch(req, core, watch_path))
        return await self._dispatch(request, target, watch_path)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace: str | None = None
        if (
            rest
            and rest[0] == "namespaces"
            and len(rest) >= 3
            and not (not group and len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace = rest[1]
            rest = rest[2:]
        if not rest or len(rest) > 3:
            raise NOT_FOUND
        rtype = self.registry.lookup(group, version, rest[0])
        if rtype is None:
            raise NOT_FOUND
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not rtype.namespaced:
            raise NOT_FOUND
        if rtype.namespaced and namespace is None and name is not None:
            raise NOT_FOUND
        if sub is not None and not (
            (sub == "status" and rtype.has_status)
            or (sub == "finalize" and rtype.storage_key == ("", "namespaces"))
            or (sub == "scale" and rtype.scale is not None)
        ):
            raise NOT_FOUND
        if name == "":
            raise NOT_FOUND
        return Target(rtype, namespace, name, sub)

    # Dispatch --------------------------------------------------------------------------------

    async def _dispatch(self, request: Request, t: Target, watch_path: bool) -> Response | StreamingResponse:
        method = request.method
        q = request.query
        mode = negotiate(request.headers.get("accept"))
        if mode is None:
            raise StatusError(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml",
            )
        if method == "GET" and t.subresource != "scale":
            if watch_path or query_bool(q.get("watch")):
                if t.name is not None:
                    fs = q.get("fieldSelector")
                    q = {**q, "fieldSelector": f"metadata.name={t.name}" + (f",{fs}" if fs else "")}
                return self.conversion.watch(t.rtype, self._watch(t, q, mode), mode)
            if self.conversion.converts(t.rtype):
                return await self.conversion.read(self, t, q, mode)
            if t.name is None:
                return self._list(t, q, mode)
            record = self.ops.get(t.rtype, t.namespace, t.name)
            return object_response(record, 200, mode, t.rtype)
        if watch_path:
            raise NOT_ALLOWED
        manager = q.get("fieldManager") or self._default_manager(request)
        dry_run = q.get("dryRun") == "All"
        if q.get("dryRun") and not dry_run:  # refused, not taken for a real write
            value = q.get("dryRun")
            raise StatusError(
                422, "Invalid", f'dryRun: Unsupported value: "{value}": supported values: "All"'
            )
        if t.subresource == "scale" and t.name is not None:
            return serve_scale(
                self.ops, request, t.rtype, t.namespace, t.name, manager=manager, dry_run=dry_run
            )
        if t.name is not None and method in ("PUT", "PATCH", "DELETE"):
            await self.conversion.align(t.rtype, t.namespace, t.name)
        if (t.name is None) == (method == "POST") and self.admission.wants(t.rtype, method, t.subresource):
            return await self.admission.write(self, request, t, mode, manager, dry_run)
        if method == "POST":
            if t.name is not None:
                raise NOT_ALLOWED
            obj, warnings = self._checked_body(request, t, "CreateOptions")
            record = self.ops.create(t.rtype, t.namespace, obj, manager=manager, dry_run=dry_run)
            return object_response(record, 201, mode, t.rtype, warnings)
        if t.name is None:
            if method == "DELETE":
                return self._delete_collection(request, t, mode)
            raise NOT_ALLOWED
        if method == "PUT":
            sub = t.subresource if t.subresource == "status" else None
            obj, warnings = self._checked_body(request, t, "UpdateOptions")
            record = self.ops.update(
                t.rtype, t.namespace, t.name, obj, subresource=sub, manager=manager, dry_run=dry_run
            )
            return object_response(record, 200, mode, t.rtype, warnings)
        if method == "PATCH":
            return self._patch(request, t, mode, manager, dry_run)
        if method == "DELETE":
            return self._delete(request, t, mode, dry_run)
        raise NOT_ALLOWED

    @staticmethod
    def _default_manager(request: Request) -> str:
        agent = request.headers.get("user-agent") or "unknown"
        return agent.split("/", 1)[0][:128] or "unknown"
