"""The ``scale`` subresource: an ``autoscaling/v1`` Scale view of a resource's replica count.

Served for the built-in Deployments, ReplicaSets and StatefulSets and for every CRD version with
``subresources.scale``. GET shows the Scale; PUT and PATCH (merge, JSON, strategic) change only the
replicas at the spec path, through the ordinary update path, so the write bumps
``metadata.generation``, gets a new resourceVersion and a watch event, and honours a
``metadata.resourceVersion`` precondition in the Scale (409 when stale), as kube-apiserver does.

Pitfalls: ``spec.replicas`` is left out of the Scale when it is 0 (Go's ``omitempty``, so clients
read it as unset, as with a real server). Server-side apply to ``/scale`` is refused with 415 (a
deliberate difference, see docs/embedded-apiserver.md).
"""

from __future__ import annotations

from typing import Any

import orjson

from kube_runtime.testing.apiserver.bodies import PATCH_TYPES, content_type, parse_body, patch_document
from kube_runtime.testing.apiserver.httpserver import Request, Response
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.resources import ResourceType, ScalePaths
from kube_runtime.testing.apiserver.status import StatusError, bad_request, invalid

__all__ = ["format_label_selector", "scale_view", "serve_scale"]


def _path(dotted: str) -> list[str]:
    return [p for p in dotted.split(".") if p]


def _read(obj: Any, dotted: str) -> Any:
    for key in _path(dotted):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _write(obj: dict[str, Any], dotted: str, value: Any) -> None:
    keys = _path(dotted)
    for key in keys[:-1]:
        child = obj.get(key)
        if not isinstance(child, dict):
            child = obj[key] = {}
        obj = child
    obj[keys[-1]] = value


def format_label_selector(selector: Any) -> str:
    """A LabelSelector as its string form (``app=web,tier in (a,b)``), keys sorted like Go's."""
    if not isinstance(selector, dict):
        return ""
    parts: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        parts.append((str(key), f"{key}={value}"))
    for expr in selector.get("matchExpressions") or ():
        if not isinstance(expr, dict):
            continue
        key, op = str(expr.get("key", "")), expr.get("operator")
        values = ",".join(sorted(str(v) for v in expr.get("values") or ()))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
            str(op), f"!{key}"
        )
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts))


def scale_view(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale object kube-apiserver shows for ``obj``."""
    paths = rtype.scale
    assert paths is not None
    meta = obj["metadata"]
    scale_meta = {
        k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
    }
    spec: dict[str, Any] = {}
    replicas = _read(obj, paths.spec_replicas)
    if paths.selector_from_spec and replicas is None:
        replicas = 1  # the built-in kinds default spec.replicas to 1
    if replicas:
        spec["replicas"] = replicas
    status: dict[str, Any] = {"replicas": _read(obj, paths.status_replicas) or 0}
    selector = _selector(paths, obj)
    if selector:
        status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": spec,
        "status": status,
    }


def _selector(paths: ScalePaths, obj: dict[str, Any]) -> str:
    if paths.selector_from_spec:
        return format_label_selector((obj.get("spec") or {}).get("selector"))
    if paths.label_selector:
        value = _read(obj, paths.label_selector)
        return value if isinstance(value, str) else ""
    return ""


def _replicas(rtype: ResourceType, name: str, scale: Any) -> int:
    if not isinstance(scale, dict):
        raise bad_request("the body of the request must be a JSON object")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if replicas is None:
        replicas = 0
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise invalid(
            rtype,
            name,
            [
                (
                    "spec.replicas",
                    "FieldValueInvalid",
                    f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                )
            ],
        )
    return replicas


def serve_scale(
    ops: ObjectOps,
    request: Request,
    rtype: ResourceType,
    namespace: str | None,
    name: str,
    *,
    manager: str,
    dry_run: bool,
) -> Response:
    """Answer GET, PUT or PATCH on ``.../<name>/scale``."""
    assert rtype.scale is not None
    current = ops.get(rtype, namespace, name)
    if request.method == "GET":
        return Response(200, orjson.dumps(scale_view(rtype, current.obj)), "application/json")
    if request.method == "PUT":
        scale = parse_body(request)
    elif request.method == "PATCH":
        kind = PATCH_TYPES.get(content_type(request))
        if kind is None or kind == "apply":
            raise StatusError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/strategic-merge-patch+json",
            )
        scale = patch_document(kind, scale_view(rtype, current.obj), request.body)
    else:
        raise StatusError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )
    replicas = _replicas(rtype, name, scale)
    scale_meta = scale.get("metadata") if isinstance(scale.get("metadata"), dict) else {}
    if scale_meta.get("name") not in (None, "", name):
        raise bad_request(
            f"the name of the object ({scale_meta['name']}) does not match the name on the URL ({name})"
        )
    new = current.copy_obj()
    _write(new, rtype.scale.spec_replicas, replicas)
    new["metadata"]["resourceVersion"] = (
        scale_meta.get("resourceVersion") or current.obj["metadata"]["resourceVersion"]
    )
    record = ops.update(
        rtype, namespace, name, new, subresource="scale", manager=manager, require_rv=False, dry_run=dry_run
    )
    return Response(200, orjson.dumps(scale_view(rtype, record.obj)), "application/json")
