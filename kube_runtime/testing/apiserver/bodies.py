"""Request bodies: decoding by Content-Type, and applying merge, JSON and strategic patches.

Guarantees: every malformed body becomes a ``StatusError`` with kube-apiserver's code and wording
(400 for undecodable JSON/YAML, 415 for an unsupported media type, 422 for a patch that cannot apply),
never an exception of the decoder. Pitfall: :func:`parse_body` returns whatever JSON value the body
holds (it may not be an object); callers check the shape.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import yaml

from kube_runtime.testing.apiserver.httpserver import Request
from kube_runtime.testing.apiserver.patch import (
    PatchError,
    PatchFailed,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from kube_runtime.testing.apiserver.protobuf import ProtobufError, decode_object
from kube_runtime.testing.apiserver.status import StatusError, bad_request

__all__ = ["PATCH_TYPES", "content_type", "load_yaml", "parse_body", "patch_document"]

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
_BODY_TYPES = ("", "application/json", "application/yaml", "*/*")


class _KubeYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading numbers as kube-apiserver's YAML reader (go-yaml) does: an
    exponent without a fraction (``1e16``, ``1e-7``, ``5e-324``) is a float too, not a string
    (PyYAML follows YAML 1.1 there, which wants a ``.``). The resolver is added after PyYAML's
    own, so everything those resolve keeps its type."""


_KubeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def load_yaml(body: bytes) -> Any:
    """A YAML (or JSON) request body as kube-apiserver reads it. Raises ``yaml.YAMLError`` or
    ``UnicodeDecodeError`` for a body that is neither."""
    return yaml.load(body.decode("utf-8"), Loader=_KubeYamlLoader)


def content_type(request: Request) -> str:
    """The request's media type, lower case, without parameters."""
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def parse_body(request: Request) -> Any:
    """Decode a create/update body (JSON, YAML, or the protobuf kinds :mod:`.protobuf` knows)."""
    media = content_type(request)
    if media == "application/vnd.kubernetes.protobuf":
        try:
            return decode_object(request.body)
        except ProtobufError as exc:
            raise StatusError(415, "UnsupportedMediaType", str(exc)) from None
    if media not in _BODY_TYPES:
        raise StatusError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
        )
    if not request.body:
        raise bad_request("the request body is empty")
    if media == "application/yaml":
        try:
            return load_yaml(request.body)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"error decoding YAML: {exc}") from None
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


def patch_document(kind: str, doc: dict[str, Any], body: bytes) -> dict[str, Any]:
    """Apply a ``merge``, ``json`` or ``strategic`` patch (raw ``body``) to ``doc``.

    ``doc`` may be modified in place; use the returned object. Server-side apply is not handled here.
    """
    if not body:
        raise bad_request("the request body is empty")
    try:
        patch = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
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
    return patched
