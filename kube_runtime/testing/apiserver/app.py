"""The HTTP application: routing, auth, content negotiation, list/watch, and error Status bodies.

Every failure is answered with a ``Status`` object; no request can crash the server or corrupt
storage (operations validate before they commit, and an unexpected exception becomes a 500).
"""

from __future__ import annotations

import base64
import bisect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import anyio
import orjson
import yaml

from kube_runtime.testing.apiserver.admission import Admission
from kube_runtime.testing.apiserver.conversion import Conversion
from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.faults import Faults
from kube_runtime.testing.apiserver.httpserver import ChunkSender, Request, Response, StreamingResponse
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.patch import (
    PatchError,
    PatchFailed,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from kube_runtime.testing.apiserver.protobuf import ProtobufError, decode_object
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from kube_runtime.testing.apiserver.status import StatusError, bad_request, expired, invalid, status_body
from kube_runtime.testing.apiserver.storage import ADDED, Expired, Record, Storage
from kube_runtime.testing.apiserver.table import table_bytes
from kube_runtime.testing.apiserver.watch import Watcher

__all__ = ["ApiApp", "ServerSettings"]

_log = logging.getLogger(__name__)

JSON = "application/json"
_META_CT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_META_LIST_CT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
_TABLE_CT = "application/json;as=Table;g=meta.k8s.io;v=v1"
_MAX_BODY = 3 * 1024 * 1024
_NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource", {})
# What kube-apiserver's HTTP mux answers for a path no API group claims (an unknown top-level path or
# an unknown group under /apis): plain text, not a Status. Known groups and /api answer a JSON Status.
_PAGE_NOT_FOUND = Response(404, b"404 page not found\n", "text/plain; charset=utf-8")
_NOT_ALLOWED = StatusError(
    405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
)
_PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
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


class ServerSettings:
    """Tunables of one server (defaults follow kube-apiserver where it has one)."""

    def __init__(
        self,
        *,
        bookmark_interval: float = 60.0,
        watch_queue_size: int = 100_000,
        default_watch_timeout: float = 1800.0,
    ) -> None:
        self.bookmark_interval = bookmark_interval
        self.watch_queue_size = watch_queue_size
        self.default_watch_timeout = default_watch_timeout


def _json(obj: Any, status: int = 200, content_type: str = JSON) -> Response:
    return Response(status, orjson.dumps(obj), content_type)


def _error(err: StatusError) -> Response:
    headers: tuple[tuple[str, str], ...] = ()
    if err.retry_after is not None:
        headers = (("Retry-After", str(err.retry_after)),)
    return Response(err.code, status_body(err), JSON, headers)


def _negotiate(accept: str | None) -> str | None:
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


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


_BODY_TYPES = ("", "application/json", "application/yaml", "*/*")


def _parse_body(request: Request) -> Any:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/vnd.kubernetes.protobuf":
        try:
            return decode_object(request.body)
        except ProtobufError as exc:
            raise StatusError(415, "UnsupportedMediaType", str(exc)) from None
    if content_type not in _BODY_TYPES:
        raise StatusError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
        )
    if not request.body:
        raise bad_request("the request body is empty")
    if content_type == "application/yaml":
        try:
            return yaml.safe_load(request.body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"error decoding YAML: {exc}") from None
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


class _Target:
    """A parsed resource URL."""

    __slots__ = ("name", "namespace", "rtype", "subresource")

    def __init__(
        self, rtype: ResourceType, namespace: str | None, name: str | None, subresource: str | None
    ) -> None:
        self.rtype = rtype
        self.namespace = namespace
        self.name = name
        self.subresource = subresource


class ApiApp:
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
        self.admission = Admission(storage)
        self.conversion = Conversion(storage)

    # Entry -----------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | StreamingResponse:
        self.requests += 1
        try:
            return await self._handle(request)
        except StatusError as err:
            return _error(err)
        except Exception as exc:  # a bug must not take the server down
            _log.exception("internal error serving %s %s", request.method, request.path)
            return _error(StatusError(500, "InternalError", f"Internal error occurred: {exc!r}"))

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
            return _json({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]})
        head = parts[0]
        if head == "version" and len(parts) == 1:
            return _json(_VERSION)
        if head == "api":
            return await self._api(request, "", parts[1:])
        if head == "openapi" and len(parts) >= 2 and parts[1] == "v3":
            return self._openapi_v3(request, parts[2:])
        if head == "apis":
            if len(parts) == 1:
                return self._get_only(request, self.registry.group_list())
            if len(parts) == 2:
                doc = self.registry.group(parts[1])
                return _PAGE_NOT_FOUND if doc is None else self._get_only(request, doc)
            try:
                return await self._api(request, parts[1], parts[2:])
            except StatusError as err:
                # Routing failed; only then pay for the group lookup (kept off the hot path).
                if err is _NOT_FOUND and self.registry.group(parts[1]) is None:
                    return _PAGE_NOT_FOUND
                raise
        if head == "version":
            raise _NOT_FOUND
        return _PAGE_NOT_FOUND

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
            raise _NOT_FOUND
        return self._get_only(request, doc)

    def _get_only(self, request: Request, doc: dict[str, Any]) -> Response:
        if request.method != "GET":
            raise _NOT_ALLOWED
        return _json(doc)

    async def _api(self, request: Request, group: str, parts: list[str]) -> Response | StreamingResponse:
        if not group and not parts:
            return self._get_only(request, self.registry.core_versions(self._address()))
        if not parts:
            raise _NOT_FOUND
        version, rest = parts[0], parts[1:]
        if not group and version != "v1":
            raise _NOT_FOUND
        if not rest:
            doc = self.registry.resource_list(group, version)
            if doc is None:
                raise _NOT_FOUND
            return self._get_only(request, doc)
        watch_path = False
        if rest[0] == "watch":
            watch_path = True
            rest = rest[1:]
        target = self._target(group, version, rest)
        return await self._dispatch(request, target, watch_path)

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
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
            raise _NOT_FOUND
        rtype = self.registry.lookup(group, version, rest[0])
        if rtype is None:
            raise _NOT_FOUND
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not rtype.namespaced:
            raise _NOT_FOUND
        if rtype.namespaced and namespace is None and name is not None:
            raise _NOT_FOUND
        if sub is not None and not (
            (sub == "status" and rtype.has_status)
            or (sub == "finalize" and rtype.storage_key == ("", "namespaces"))
        ):
            raise _NOT_FOUND
        if name == "":
            raise _NOT_FOUND
        return _Target(rtype, namespace, name, sub)

    # Dispatch --------------------------------------------------------------------------------

    async def _dispatch(self, request: Request, t: _Target, watch_path: bool) -> Response | StreamingResponse:
        method = request.method
        q = request.query
        mode = _negotiate(request.headers.get("accept"))
        if mode is None:
            raise StatusError(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json, application/yaml",
            )
        if method == "GET":
            if watch_path or _bool(q.get("watch")):
                if t.name is not None:
                    fs = q.get("fieldSelector")
                    q = {**q, "fieldSelector": f"metadata.name={t.name}" + (f",{fs}" if fs else "")}
                return self.conversion.watch(t.rtype, self._watch(t, q, mode), mode)
            if self.conversion.converts(t.rtype):
                return await self.conversion.read(self, t, q, mode)
            if t.name is None:
                return self._list(t, q, mode)
            record = self.ops.get(t.rtype, t.namespace, t.name)
            return self._object(record, 200, mode, t.rtype)
        if watch_path:
            raise _NOT_ALLOWED
        manager = q.get("fieldManager") or self._default_manager(request)
        dry_run = q.get("dryRun") == "All"
        if (t.name is None) == (method == "POST") and self.admission.wants(t.rtype, method, t.subresource):
            return await self.admission.write(self, request, t, mode, manager, dry_run)
        if method == "POST":
            if t.name is not None:
                raise _NOT_ALLOWED
            record = self.ops.create(
                t.rtype, t.namespace, _parse_body(request), manager=manager, dry_run=dry_run
            )
            return self._object(record, 201, mode, t.rtype)
        if t.name is None:
            if method == "DELETE":
                return self._delete_collection(request, t, mode)
            raise _NOT_ALLOWED
        if method == "PUT":
            sub = t.subresource if t.subresource == "status" else None
            record = self.ops.update(
                t.rtype,
                t.namespace,
                t.name,
                _parse_body(request),
                subresource=sub,
                manager=manager,
                dry_run=dry_run,
            )
            return self._object(record, 200, mode, t.rtype)
        if method == "PATCH":
            return self._patch(request, t, mode, manager, dry_run)
        if method == "DELETE":
            return self._delete(request, t, mode, dry_run)
        raise _NOT_ALLOWED

    @staticmethod
    def _default_manager(request: Request) -> str:
        agent = request.headers.get("user-agent") or "unknown"
        return agent.split("/", 1)[0][:128] or "unknown"

    def _object(self, record: Record, code: int, mode: str, rtype: ResourceType) -> Response:
        if mode == "meta":
            return Response(code, record.meta_raw, _META_CT)
        if mode == "table":
            return Response(code, self._table([record], rtype, None), _TABLE_CT)
        return Response(code, record.raw, JSON)

    # Table (kubectl get) -------------------------------------------------------------------

    @staticmethod
    def _table(records: list[Record], rtype: ResourceType, list_meta: dict[str, Any] | None) -> bytes:
        return table_bytes(records, list_meta, rtype)

    # List ------------------------------------------------------------------------------------

    def _selectors(self, t: _Target, q: dict[str, str]) -> tuple[LabelSelector, FieldSelector]:
        try:
            labels = parse_label_selector(q.get("labelSelector"))
            fields = parse_field_selector(
                q.get("fieldSelector"), t.rtype.storage_key, t.rtype.selectable_fields
            )
        except SelectorError as exc:
            raise bad_request(str(exc)) from None
        return labels, fields

    @staticmethod
    def _int_param(q: dict[str, str], name: str) -> int | None:
        raw = q.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f'invalid {name} "{raw}": must be an integer') from None

    def _parse_rv(self, raw: str | None) -> int | None:
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"invalid resource version: {raw}") from None
        if value < 0:
            raise bad_request(f"invalid resource version: {raw}")
        return value

    def _list_rv(self, q: dict[str, str], limit: int | None, t: _Target) -> int:
        """The resourceVersion the list is served at (list semantics of kube-apiserver)."""
        rv = self._parse_rv(q.get("resourceVersion"))
        match = q.get("resourceVersionMatch") or ""
        current = self.storage.rv
        if match and match not in ("Exact", "NotOlderThan"):
            raise invalid(
                t.rtype,
                "",
                [
                    (
                        "resourceVersionMatch",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"',
                    )
                ],
            )
        if match and rv is None:
            raise invalid(
                t.rtype,
                "",
                [
                    (
                        "resourceVersionMatch",
                        "FieldValueForbidden",
                        "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                ],
            )
        if rv is None or rv == 0:
            if match == "Exact":
                raise invalid(
                    t.rtype,
                    "",
                    [
                        (
                            "resourceVersionMatch",
                            "FieldValueForbidden",
                            'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                        )
                    ],
                )
            return current
        if rv > current:
            raise StatusError(
                504,
                "Timeout",
                f"Too large resource version: {rv}, current: {current}",
                {
                    "causes": [
                        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                    ],
                    "retryAfterSeconds": 1,
                },
                retry_after=1,
            )
        if match == "Exact" or (not match and limit):
            return rv
        return current

    def _list(self, t: _Target, q: dict[str, str], mode: str) -> Response:
        labels, fields = self._selectors(t, q)
        limit = self._int_param(q, "limit")
        if limit is not None and limit <= 0:
            limit = None
        cont = q.get("continue") or ""
        coll = self.ops.collection(t.rtype)
        start: tuple[str, str] | None = None
        if cont:
            if q.get("resourceVersion") not in (None, ""):
                raise bad_request("specifying resource version is not allowed when using continue")
            rv, start = self._decode_continue(cont)
        else:
            rv = self._list_rv(q, limit, t)
        try:
            records = coll.snapshot(rv, self.storage.rv)
        except Expired:
            if cont:
                raise expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start "
                    "a new list without the continue parameter."
                ) from None
            raise expired(
                f"The resourceVersion for the provided list is too old. ({rv} < {coll.history_start_rv})"
            ) from None
        lo, hi = coll.range_for_namespace(records, t.namespace)
        if start is not None:
            lo = max(lo, bisect.bisect_right(records, start, lo, hi, key=lambda r: r.key))
        name_only = fields.name_equals()
        filtered = not (labels.empty and fields.empty)
        out: list[Record] = []
        i = lo
        if name_only is not None and not cont:
            candidates: list[Record | None]
            if t.namespace is not None and rv == self.storage.rv:
                candidates = [coll.get(t.namespace, name_only)]
            else:
                candidates = [r for r in records[lo:hi] if r.key[1] == name_only]
            out = [r for r in candidates if r is not None and labels.matches(r.obj) and fields.matches(r.obj)]
            i = hi
        elif not filtered and limit is None:
            out = records[lo:hi]
            i = hi
        else:
            while i < hi:
                rec = records[i]
                i += 1
                if filtered and not (labels.matches(rec.obj) and fields.matches(rec.obj)):
                    continue
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit is not None and i < hi and out:
            meta["continue"] = self._encode_continue(rv, out[-1].key)
            if not filtered:
                meta["remainingItemCount"] = hi - i
        if mode == "table":
            return Response(200, self._table(out, t.rtype, meta), _TABLE_CT)
        if mode == "meta":
            head = b'{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":'
            items = b",".join([r.meta_raw for r in out])
            content_type = _META_LIST_CT
        else:
            head = (
                b'{"kind":"' + t.rtype.list_kind.encode() + b'","apiVersion":"' + t.rtype.api_version.encode()
            )
            head += b'","metadata":'
            items = b",".join([r.raw for r in out])
            content_type = JSON
        return Response(200, head + orjson.dumps(meta) + b',"items":[' + items + b"]}", content_type)

    @staticmethod
    def _encode_continue(rv: int, key: tuple[str, str]) -> str:
        raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": [key[0], key[1]]})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            doc = orjson.loads(raw)
            rv = int(doc["rv"])
            ns, name = doc["start"]
            if doc.get("v") != "meta.k8s.io/v1" or not isinstance(ns, str) or not isinstance(name, str):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise bad_request(f"continue key is not valid: {token[:64]!r}") from None
        return rv, (ns, name)

    # Watch -----------------------------------------------------------------------------------

    def _watch(self, t: _Target, q: dict[str, str], mode: str) -> StreamingResponse:
        labels, fields = self._selectors(t, q)
        send_initial = q.get("sendInitialEvents")
        match = q.get("resourceVersionMatch") or ""
        bookmarks = _bool(q.get("allowWatchBookmarks"))
        causes: list[tuple[str, str, str]] = []
        if send_initial is not None and send_initial != "":
            if match != "NotOlderThan":
                causes.append(
                    (
                        "resourceVersionMatch",
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                )
            if not bookmarks and _bool(send_initial):
                causes.append(
                    (
                        "allowWatchBookmarks",
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    )
                )
        elif match:
            causes.append(
                (
                    "resourceVersionMatch",
                    "FieldValueForbidden",
                    "Forbidden: resourceVersionMatch is forbidden for watch "
                    "unless sendInitialEvents is provided",
                )
            )
        if causes:
            raise StatusError(
                422,
                "Invalid",
                'ListOptions.meta.k8s.io "" is invalid: ' + "; ".join(f"{f}: {m}" for f, _, m in causes),
                {
                    "kind": "ListOptions",
                    "group": "meta.k8s.io",
                    "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
                },
            )
        timeout = self._int_param(q, "timeoutSeconds")
        rv = self._parse_rv(q.get("resourceVersion"))
        coll = self.ops.collection(t.rtype)
        watcher = Watcher(
            coll,
            t.rtype,
            namespace=t.namespace,
            labels=labels,
            fields=fields,
            metadata_only=mode == "meta",
            table=mode == "table",
            bookmarks=bookmarks,
            max_queue=self.settings.watch_queue_size,
        )
        current = self.storage.rv
        if _bool(send_initial) or rv is None or rv == 0:
            records = coll.snapshot(current, current)
            lo, hi = coll.range_for_namespace(records, t.namespace)
            watcher.initial = [(ADDED, r) for r in records[lo:hi] if watcher.matches(r)]
            if _bool(send_initial):
                watcher.initial_tail = watcher.bookmark(current, initial_events_end=True)
        else:
            if rv > current:
                raise StatusError(
                    504,
                    "Timeout",
                    f"Too large resource version: {rv}, current: {current}",
                    {
                        "causes": [
                            {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                        ],
                        "retryAfterSeconds": 1,
                    },
                    retry_after=1,
                )
            try:
                events = coll.events_after(rv)
            except Expired as exc:
                watcher.close(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": str(exc),
                        "reason": "Expired",
                        "code": 410,
                    }
                )
                return StreamingResponse(200, watcher.stream, _META_CT if mode == "meta" else JSON)
            initial = []
            for ev in events:
                seen = watcher.visible(ev)
                if seen is not None:
                    initial.append(seen)
            watcher.initial = initial
        coll.watchers.add(watcher)
        if self.on_watch is not None:
            self.on_watch()
        seconds = (
            float(timeout) if timeout is not None and timeout > 0 else self.settings.default_watch_timeout
        )

        async def writer(send: ChunkSender) -> None:
            try:
                with anyio.move_on_after(seconds):
                    await watcher.stream(send)
            finally:
                watcher.closed = True
                coll.watchers.discard(watcher)

        return StreamingResponse(200, writer, _META_CT if mode == "meta" else JSON)

    # Patch -----------------------------------------------------------------------------------

    def _patch(self, request: Request, t: _Target, mode: str, manager: str, dry_run: bool) -> Response:
        assert t.name is not None
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        kind = _PATCH_TYPES.get(content_type)
        if kind is None or (kind == "strategic" and t.rtype.custom):
            raise StatusError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                + ("" if t.rtype.custom else ", application/strategic-merge-patch+json"),
            )
        sub = t.subresource if t.subresource == "status" else None
        q = request.query
        if kind == "apply":
            if not q.get("fieldManager"):
                raise StatusError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: '
                    "fieldManager: Required value: is required for apply patch",
                    {
                        "kind": "PatchOptions",
                        "group": "meta.k8s.io",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "message": "Required value: is required for apply patch",
                                "field": "fieldManager",
                            }
                        ],
                    },
                )
            try:
                applied = yaml.safe_load(request.body.decode("utf-8")) if request.body else None
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise bad_request(f"error decoding YAML: {exc}") from None
            record, created = self.ops.apply(
                t.rtype,
                t.namespace,
                t.name,
                applied,
                manager=q["fieldManager"],
                force=_bool(q.get("force")),
                subresource=sub,
                dry_run=dry_run,
            )
            return self._object(record, 201 if created else 200, mode, t.rtype)
        if not request.body:
            raise bad_request("the request body is empty")
        try:
            patch = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        current = self.ops.get(t.rtype, t.namespace, t.name)
        doc = current.copy_obj()
        try:
            if kind == "merge":
                if not isinstance(patch, dict):
                    raise PatchError("merge patch must be a JSON object")
                patched = json_merge_patch(doc, patch)
            elif kind == "json":
                patched = json_patch(doc, patch)
            else:
                if not isinstance(patch, dict):
                    raise PatchError("strategic merge patch must be a JSON object")
                patched = strategic_merge_patch(doc, patch)
        except PatchError as exc:
            raise bad_request(str(exc)) from None
        except PatchFailed as exc:
            raise StatusError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
            ) from None
        if not isinstance(patched, dict):
            raise StatusError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request: "
                "the patched object is not an object",
            )
        meta = patched.get("metadata")
        if isinstance(meta, dict) and "resourceVersion" not in meta:
            meta["resourceVersion"] = current.obj["metadata"]["resourceVersion"]
        record = self.ops.update(
            t.rtype,
            t.namespace,
            t.name,
            patched,
            subresource=sub,
            manager=manager,
            require_rv=False,
            dry_run=dry_run,
        )
        return self._object(record, 200, mode, t.rtype)

    # Delete ----------------------------------------------------------------------------------

    def _delete_options(self, request: Request) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if request.body:
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError as exc:
                raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
            if not isinstance(body, dict):
                raise bad_request("DeleteOptions must be an object")
            opts.update(body)
        q = request.query
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if "orphanDependents" in q:
            opts["orphanDependents"] = _bool(q["orphanDependents"])
        if opts.get("orphanDependents") is True and not opts.get("propagationPolicy"):
            opts["propagationPolicy"] = "Orphan"
        return opts

    def _delete(self, request: Request, t: _Target, mode: str, dry_run: bool) -> Response:
        assert t.name is not None
        opts = self._delete_options(request)
        if opts.get("dryRun") == ["All"]:
            dry_run = True
        record, gone = self.ops.delete(
            t.rtype,
            t.namespace,
            t.name,
            propagation=opts.get("propagationPolicy"),
            preconditions=opts.get("preconditions") if isinstance(opts.get("preconditions"), dict) else None,
            dry_run=dry_run,
        )
        if not gone:
            return self._object(record, 200, mode, t.rtype)
        details: dict[str, Any] = {"name": t.name}
        if t.rtype.group:
            details["group"] = t.rtype.group
        details["kind"] = t.rtype.plural
        uid = (record.obj.get("metadata") or {}).get("uid")
        if uid:
            details["uid"] = uid
        return _json(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _delete_collection(self, request: Request, t: _Target, mode: str) -> Response:
        labels, fields = self._selectors(t, request.query)
        opts = self._delete_options(request)
        coll = self.ops.collection(t.rtype)
        records = coll.snapshot(self.storage.rv, self.storage.rv)
        lo, hi = coll.range_for_namespace(records, t.namespace)
        deleted: list[Record] = []
        for rec in records[lo:hi]:
            if labels.matches(rec.obj) and fields.matches(rec.obj):
                try:
                    out, _ = self.ops.delete(
                        t.rtype, rec.key[0] or None, rec.key[1], propagation=opts.get("propagationPolicy")
                    )
                except StatusError:
                    continue
                deleted.append(out)
        body = (
            b'{"kind":"'
            + t.rtype.list_kind.encode()
            + b'","apiVersion":"'
            + t.rtype.api_version.encode()
            + b'","metadata":'
            + orjson.dumps({"resourceVersion": str(self.storage.rv)})
            + b',"items":['
            + b",".join(r.raw for r in deleted)
            + b"]}"
        )
        return Response(200, body, JSON)
