"""Write requests beyond a plain create/update: field validation of bodies, patches, deletes.

Guarantees (as kube-apiserver): a body is checked by ``fieldValidation`` before it reaches the
store (:mod:`.fieldvalidation`); a merge/JSON/strategic patch is applied to the current object and
stored as an update that needs no resourceVersion; server-side apply requires ``fieldManager``;
a delete answers the object while finalizers hold it and a ``Success`` Status once it is gone.
Pitfall: :class:`WriteHandlers` is a mixin of :class:`~kube_runtime.testing.apiserver.app.ApiApp`;
it reads the app's ``storage`` and ``ops``.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from kube_runtime.testing.apiserver.bodies import (
    PATCH_TYPES,
    content_type,
    load_yaml,
    parse_body,
    patch_document,
)
from kube_runtime.testing.apiserver.fieldvalidation import (
    STRICT,
    apply_unknown_field_error,
    check_fields,
    drop_unknown_meta,
    field_validation,
    strict_patch_error,
    strict_write_error,
    warning_headers,
)
from kube_runtime.testing.apiserver.httpserver import Request, Response
from kube_runtime.testing.apiserver.listwatch import request_selectors
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.respond import (
    JSON,
    Headers,
    Target,
    json_response,
    object_response,
    query_bool,
)
from kube_runtime.testing.apiserver.status import StatusError, bad_request
from kube_runtime.testing.apiserver.storage import Record, Storage

__all__ = ["WriteHandlers"]


class WriteHandlers:
    """The body-checking, patch and delete handlers of the API app (a mixin; see the module docstring)."""

    storage: Storage
    ops: ObjectOps

    @staticmethod
    def _checked_body(request: Request, t: Target, options_kind: str) -> tuple[Any, Headers]:
        """The decoded create/update body after field validation, and the warnings to answer with."""
        obj = parse_body(request)  # an unsupported media type (415) is reported first
        directive = field_validation(request.query, options_kind)
        json_body = content_type(request) in ("", "application/json", "*/*")
        findings = check_fields(t.rtype, obj, request.body if json_body else None, directive)
        if findings and directive == STRICT:
            raise strict_write_error(t.rtype, findings)
        drop_unknown_meta(t.rtype, obj)
        return obj, warning_headers(findings)

    # Patch -----------------------------------------------------------------------------------

    def _patch(self, request: Request, t: Target, mode: str, manager: str, dry_run: bool) -> Response:
        assert t.name is not None
        kind = PATCH_TYPES.get(content_type(request))
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
        directive = field_validation(q, "PatchOptions")
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
                applied = load_yaml(request.body) if request.body else None
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise bad_request(f"error decoding YAML: {exc}") from None
            if isinstance(applied, dict):
                undeclared = apply_unknown_field_error(t.rtype, applied)
                if undeclared is not None:
                    raise undeclared
            record, created = self.ops.apply(
                t.rtype,
                t.namespace,
                t.name,
                applied,
                manager=q["fieldManager"],
                force=query_bool(q.get("force")),
                subresource=sub,
                dry_run=dry_run,
            )
            return object_response(record, 201 if created else 200, mode, t.rtype)
        current = self.ops.get(t.rtype, t.namespace, t.name)
        patched = patch_document(kind, current.copy_obj(), request.body)
        meta = patched.get("metadata")
        if isinstance(meta, dict) and "resourceVersion" not in meta:
            meta["resourceVersion"] = current.obj["metadata"]["resourceVersion"]
        findings = check_fields(t.rtype, patched, None, directive)
        if findings and directive == STRICT:
            raise strict_patch_error(patched, findings)
        drop_unknown_meta(t.rtype, patched)
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
        return object_response(record, 200, mode, t.rtype, warning_headers(findings))

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
            opts["orphanDependents"] = query_bool(q["orphanDependents"])
        if opts.get("orphanDependents") is True and not opts.get("propagationPolicy"):
            opts["propagationPolicy"] = "Orphan"
        return opts

    def _delete(self, request: Request, t: Target, mode: str, dry_run: bool) -> Response:
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
            return object_response(record, 200, mode, t.rtype)
        details: dict[str, Any] = {"name": t.name}
        if t.rtype.group:
            details["group"] = t.rtype.group
        details["kind"] = t.rtype.plural
        uid = (record.obj.get("metadata") or {}).get("uid")
        if uid:
            details["uid"] = uid
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def _delete_collection(self, request: Request, t: Target, mode: str) -> Response:
        labels, fields = request_selectors(t, request.query)
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
