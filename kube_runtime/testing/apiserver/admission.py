"""Admission webhooks in the embedded API server, called as kube-apiserver calls them.

The stored ``admissionregistration.k8s.io/v1`` Mutating- and ValidatingWebhookConfigurations are
matched against each write (rules: operations, groups, versions, resources and subresources,
scope; ``namespaceSelector``/``objectSelector``; never for webhook configurations themselves) and
called over HTTPS with ``AdmissionReview`` v1 (:mod:`~kube_runtime.testing.apiserver.webhookcall`).
Mutating webhooks run first, one after the other, each seeing the previous one's JSON patch
applied; validating webhooks then run concurrently on the final object. A denial is
kube-apiserver's Status (``admission webhook "<name>" denied the request: <message>``, the
webhook's code, at least 400); a webhook that cannot be called, times out, or answers nonsense is
``failurePolicy``: ``Fail`` refuses the write with a 500 ``failed calling webhook "<name>"``,
``Ignore`` lets it through. Dry-run requests reach webhooks with ``dryRun: true``.

``matchPolicy: Equivalent`` (the default) applies across the versions of a custom resource: a
webhook whose rules name only another version of the written resource is called with the objects
converted to that version (through the CRD's conversion webhook, or by rewriting ``apiVersion``
with strategy ``None``), ``kind``/``resource`` naming that version and ``requestKind``/
``requestResource`` the request's; a patch it returns is applied there and converted back.

How it fits the server: the write is first run as a dry run (all the server's own defaulting and
validation), the result goes to the webhooks, and the (possibly patched) object is then written for
real; a PUT or PATCH whose object changed meanwhile starts again, as kube-apiserver's
GuaranteedUpdate. Differences from kube-apiserver kept on purpose: warnings from webhooks are not
passed to the client; the dry-run preview of a create carries a ``uid`` that differs from the one
finally stored.
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from kube_runtime.testing.apiserver.conversion import Conversion
from kube_runtime.testing.apiserver.discovery import Registry, version_priority
from kube_runtime.testing.apiserver.httpserver import Request, Response
from kube_runtime.testing.apiserver.patch import PatchError, PatchFailed, json_patch
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.respond import object_response
from kube_runtime.testing.apiserver.selectors import SelectorError, parse_label_selector
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import Storage
from kube_runtime.testing.apiserver.webhookcall import CallFailed, post_review

if TYPE_CHECKING:
    from kube_runtime.testing.apiserver.app import ApiApp
    from kube_runtime.testing.apiserver.respond import Target

__all__ = ["Admission"]

GROUP = "admissionregistration.k8s.io"
MUTATING = (GROUP, "mutatingwebhookconfigurations")
VALIDATING = (GROUP, "validatingwebhookconfigurations")
_OPERATIONS = {"POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE", "DELETE": "DELETE"}
# Fields the server sets on create: a mutated create is written again without them.
_SERVER_SET = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields")


def _selector_text(selector: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), ",".join(expr.get("values") or ())
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": f"{key}"}.get(
                op, f"!{key}"
            )
        )
    return ",".join(parts)


def _selects(selector: Any, labels: dict[str, Any]) -> bool:
    if not isinstance(selector, dict) or not selector:
        return True
    try:
        return parse_label_selector(_selector_text(selector)).matches({"metadata": {"labels": labels}})
    except SelectorError:
        return False


def _rule_matches(rule: dict[str, Any], rtype: ResourceType, operation: str, sub: str | None) -> bool:
    def has(key: str, value: str) -> bool:
        values = rule.get(key) or ()
        return "*" in values or value in values

    if not (has("operations", operation) and has("apiGroups", rtype.group)):
        return False
    if not has("apiVersions", rtype.version):
        return False
    resources = rule.get("resources") or ()
    if sub:
        wanted = {f"{rtype.plural}/{sub}", f"{rtype.plural}/*", f"*/{sub}", "*/*"}
    else:
        wanted = {rtype.plural, "*", "*/*"}
    if not wanted & set(resources):
        return False
    scope = rule.get("scope") or "*"
    return scope == "*" or (scope == "Namespaced") == rtype.namespaced


class Admission:
    """The webhooks of one embedded server (see the module docs)."""

    def __init__(self, storage: Storage, registry: Registry, conversion: Conversion) -> None:
        self.storage = storage
        self.registry = registry
        self.conversion = conversion

    # -- matching ----------------------------------------------------------------------------------

    def _webhooks(self, key: tuple[str, str]) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = []
        for record in sorted(self.storage.records(key), key=lambda r: r.key):
            hooks.extend(h for h in record.obj.get("webhooks") or () if isinstance(h, dict))
        return hooks

    def _target(
        self, hook: dict[str, Any], rtype: ResourceType, operation: str, sub: str | None
    ) -> ResourceType | None:
        """The version ``hook`` is called at for a write of ``rtype``: ``rtype`` when a rule names
        it, else (``matchPolicy: Equivalent``) the first other served version of the same custom
        resource, by version priority, that a rule names; ``None`` when the hook does not apply."""
        rules = hook.get("rules") or ()
        if any(_rule_matches(rule, rtype, operation, sub) for rule in rules):
            return rtype
        if hook.get("matchPolicy", "Equivalent") == "Exact" or not rtype.custom:
            return None
        versions = self.registry.crd_types(f"{rtype.plural}.{rtype.group}")
        for other in sorted(versions, key=lambda t: version_priority(t.version)):
            if other.version != rtype.version and any(_rule_matches(r, other, operation, sub) for r in rules):
                return other
        return None

    def _matching(
        self, key: tuple[str, str], rtype: ResourceType, operation: str, sub: str | None
    ) -> list[tuple[dict[str, Any], ResourceType]]:
        """The webhooks of ``key`` that apply, each with the version it is called at."""
        if rtype.group == GROUP:  # kube-apiserver never calls webhooks about webhook configurations
            return []
        found = ((hook, self._target(hook, rtype, operation, sub)) for hook in self._webhooks(key))
        return [(hook, target) for hook, target in found if target is not None]

    async def _at(self, target: ResourceType, obj: Any) -> Any:
        """``obj`` at ``target``'s version (unchanged when it is already, or not an object)."""
        if not isinstance(obj, dict) or obj.get("apiVersion") == target.api_version:
            return obj
        (converted,) = await self.conversion.convert(target, [obj])
        if converted.get("apiVersion") != target.api_version:  # strategy None: only apiVersion changes
            converted = {**converted, "apiVersion": target.api_version}
        return converted

    def wants(self, rtype: ResourceType, method: str, sub: str | None) -> bool:
        """Whether a write ``method`` on ``rtype`` may reach a webhook."""
        operation = _OPERATIONS.get(method)
        if operation is None:
            return False
        ops = (operation, "CREATE") if method == "PATCH" else (operation,)  # an apply may create
        return any(self._matching(key, rtype, op, sub) for key in (MUTATING, VALIDATING) for op in ops)

    def _selected(self, hook: dict[str, Any], namespace: str, obj: Any, old: Any) -> bool:
        labels: dict[str, Any] = {}
        for candidate in (old, obj):
            if isinstance(candidate, dict):
                labels = (candidate.get("metadata") or {}).get("labels") or {}
        if not _selects(hook.get("objectSelector"), labels):
            return False
        if namespace and hook.get("namespaceSelector"):
            ns = self.storage.collection(("", "namespaces")).get("", namespace)
            ns_labels = ((ns.obj.get("metadata") or {}).get("labels") or {}) if ns else {}
            return _selects(hook["namespaceSelector"], ns_labels)
        return True

    # -- calling -----------------------------------------------------------------------------------

    async def _review(
        self,
        hook: dict[str, Any],
        *,
        operation: str,
        rtype: ResourceType,
        target: ResourceType,
        namespace: str,
        name: str,
        sub: str | None,
        obj: Any,
        old: Any,
        dry_run: bool,
    ) -> dict[str, Any] | None:
        """The webhook's response, or ``None`` when it failed and its policy is ``Ignore``. ``obj``
        and ``old`` are at ``target``'s version; ``rtype`` is the version of the request."""

        def gvk(t: ResourceType) -> dict[str, str]:
            return {"group": t.group, "version": t.version, "kind": t.kind}

        def gvr(t: ResourceType) -> dict[str, str]:
            return {"group": t.group, "version": t.version, "resource": t.plural}

        request: dict[str, Any] = {
            "uid": str(uuid.uuid4()),
            "kind": gvk(target),
            "resource": gvr(target),
            "requestKind": gvk(rtype),
            "requestResource": gvr(rtype),
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
        }
        if sub:
            request["subResource"] = request["requestSubResource"] = sub
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
        try:
            return await post_review(
                hook.get("clientConfig") or {}, float(hook.get("timeoutSeconds") or 10), body
            )
        except CallFailed as exc:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                return None
            raise StatusError(
                500,
                "InternalError",
                f'Internal error occurred: failed calling webhook "{hook.get("name")}": '
                f"failed to call webhook: {exc}",
            ) from None

    @staticmethod
    def _denial(hook: dict[str, Any], result: dict[str, Any]) -> StatusError:
        status = result.get("status") or {}
        denied_by = f'admission webhook "{hook.get("name")}" denied the request'
        if status.get("message"):
            message = f"{denied_by}: {status['message']}"
        elif status.get("reason"):
            message = f"{denied_by}: {status['reason']}"
        else:
            message = f"{denied_by} without explanation"
        code = max(int(status.get("code") or 0), 400)
        return StatusError(code, str(status.get("reason") or ""), message)

    async def _admit(
        self,
        *,
        operation: str,
        rtype: ResourceType,
        namespace: str,
        name: str,
        sub: str | None,
        obj: Any,
        old: Any,
        dry_run: bool,
        preview: Callable[[dict[str, Any]], dict[str, Any]] | None,
    ) -> dict[str, Any] | None:
        """Mutate (sequentially), then validate (concurrently); returns the patched object when a
        mutating webhook changed it, ``None`` otherwise. ``preview`` turns a patched object into
        the object that would be stored (the server's defaulting and validation applied)."""
        common: dict[str, Any] = {
            "operation": operation, "rtype": rtype, "namespace": namespace, "name": name, "sub": sub,
            "dry_run": dry_run,
        }  # fmt: skip
        patched: dict[str, Any] | None = None
        current = obj
        for hook, target in self._matching(MUTATING, rtype, operation, sub):
            if not self._selected(hook, namespace, current, old):
                continue
            sent = await self._at(target, current)
            sent_old = await self._at(target, old)
            result = await self._review(hook, target=target, obj=sent, old=sent_old, **common)
            if result is None:
                continue
            if not result.get("allowed"):
                raise self._denial(hook, result)
            if result.get("patch") and sent is not None:
                if result.get("patchType") != "JSONPatch":
                    kind = result.get("patchType")
                    raise StatusError(500, "InternalError", f"unsupported patchType {kind!r}")
                try:
                    ops = orjson.loads(base64.b64decode(result["patch"]))
                    patched = json_patch(copy.deepcopy(sent), ops)
                except (ValueError, PatchError, PatchFailed) as exc:
                    raise StatusError(
                        500,
                        "InternalError",
                        f'Internal error occurred: admission webhook "{hook.get("name")}" '
                        f"returned an invalid patch: {exc}",
                    ) from None
                patched = await self._at(rtype, patched)
                current = preview(patched) if preview is not None else patched
        validators = [
            (hook, target)
            for hook, target in self._matching(VALIDATING, rtype, operation, sub)
            if self._selected(hook, namespace, current, old)
        ]
        denials: list[StatusError] = []

        async def validate(hook: dict[str, Any], target: ResourceType) -> None:
            try:  # errors are collected, not raised: a task group would wrap them in a group
                sent = await self._at(target, current)
                sent_old = await self._at(target, old)
                result = await self._review(hook, target=target, obj=sent, old=sent_old, **common)
            except StatusError as exc:
                denials.append(exc)
                return
            if result is not None and not result.get("allowed"):
                denials.append(self._denial(hook, result))

        async with anyio.create_task_group() as tg:
            for hook, target in validators:
                tg.start_soon(validate, hook, target)
        if denials:
            raise denials[0]
        return patched

    # -- the write path ----------------------------------------------------------------------------

    async def write(
        self, app: ApiApp, request: Request, t: Target, mode: str, manager: str, dry_run: bool
    ) -> Response:
        """Serve a write through the webhooks (called by the app instead of its own write path)."""
        from kube_runtime.testing.apiserver.bodies import parse_body as _parse_body

        rtype, ns, method = t.rtype, t.namespace or "", request.method
        sub = t.subresource if t.subresource == "status" else None

        def dry_create(obj: dict[str, Any]) -> dict[str, Any]:
            meta = obj.setdefault("metadata", {})
            for field in _SERVER_SET:
                meta.pop(field, None)
            return app.ops.create(rtype, t.namespace, copy.deepcopy(obj), manager=manager, dry_run=True).obj

        if method == "POST":
            body = _parse_body(request)
            if not isinstance(body, dict):
                raise StatusError(400, "BadRequest", "the body of the request must be a JSON object")
            previewed = dry_create(copy.deepcopy(body))
            patched = await self._admit(
                operation="CREATE", rtype=rtype, namespace=ns, name=previewed["metadata"]["name"], sub=None,
                obj=previewed, old=None, dry_run=dry_run, preview=dry_create,
            )  # fmt: skip
            if patched is not None:
                body = patched
                for field in _SERVER_SET:
                    body["metadata"].pop(field, None)
            record = app.ops.create(rtype, t.namespace, body, manager=manager, dry_run=dry_run)
            return object_response(record, 201, mode, rtype)
        name = t.name
        assert name is not None
        if method == "DELETE":
            current = app.ops.get(rtype, t.namespace, name)
            await self._admit(
                operation="DELETE", rtype=rtype, namespace=ns, name=name, sub=None,
                obj=None, old=current.obj, dry_run=dry_run, preview=None,
            )  # fmt: skip
            return app._delete(request, t, mode, dry_run)
        body = _parse_body(request) if method == "PUT" else None
        for _ in range(5):  # the object changed while the webhooks ran: start again (GuaranteedUpdate)
            cur = app.ops.collection(rtype).get(ns, name)
            seen_rv = cur.obj["metadata"]["resourceVersion"] if cur is not None else None

            def dry_update(obj: dict[str, Any], rv: str | None = seen_rv) -> dict[str, Any]:
                obj["metadata"]["resourceVersion"] = rv
                return app.ops.update(
                    rtype,
                    t.namespace,
                    name,
                    copy.deepcopy(obj),
                    subresource=sub,
                    manager=manager,
                    dry_run=True,
                ).obj

            if method == "PUT":
                if not isinstance(body, dict):
                    raise StatusError(400, "BadRequest", "the body of the request must be a JSON object")
                previewed = app.ops.update(
                    rtype,
                    t.namespace,
                    name,
                    copy.deepcopy(body),
                    subresource=sub,
                    manager=manager,
                    dry_run=True,
                ).obj
                code = 200
            else:
                answer = app._patch(request, t, "json", manager, True)
                previewed, code = orjson.loads(answer.body), answer.status
            operation = "CREATE" if code == 201 else "UPDATE"
            patched = await self._admit(
                operation=operation, rtype=rtype, namespace=ns, name=name, sub=sub, obj=previewed,
                old=cur.obj if cur is not None else None, dry_run=dry_run,
                preview=dry_update if operation == "UPDATE" else dry_create,
            )  # fmt: skip
            after = app.ops.collection(rtype).get(ns, name)
            if (after.obj["metadata"]["resourceVersion"] if after is not None else None) != seen_rv:
                continue
            if patched is None:
                if method == "PATCH":
                    return app._patch(request, t, mode, manager, dry_run)
                assert isinstance(body, dict)
                record = app.ops.update(
                    rtype, t.namespace, name, body, subresource=sub, manager=manager, dry_run=dry_run
                )
            elif operation == "CREATE":
                for field in _SERVER_SET:
                    patched["metadata"].pop(field, None)
                record = app.ops.create(rtype, t.namespace, patched, manager=manager, dry_run=dry_run)
            else:
                patched["metadata"]["resourceVersion"] = seen_rv
                record = app.ops.update(
                    rtype, t.namespace, name, patched, subresource=sub, manager=manager, dry_run=dry_run
                )
            return object_response(record, code, mode, rtype)
        raise StatusError(409, "Conflict", "the object kept changing while its admission webhooks ran")
