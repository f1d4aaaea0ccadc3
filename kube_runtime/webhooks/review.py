"""AdmissionReview v1 and ConversionReview v1: parsing requests and building responses exactly.

Guarantees:

* :func:`parse_admission_review` / :func:`parse_conversion_review` accept only the ``v1``
  envelopes (``admission.k8s.io/v1`` ``AdmissionReview``, ``apiextensions.k8s.io/v1``
  ``ConversionReview``) with a ``request`` carrying a non-empty string ``uid``; anything else
  raises :class:`ReviewError` with a stable ``reason`` (``MalformedJSON``, ``WrongKind``,
  ``MissingRequest``, ``MissingUID``, ``InvalidField``) the server turns into a 400.
* Response builders echo the request's ``uid`` and the envelope's ``apiVersion``/``kind``, and
  never emit a field the API server does not know (``patch`` only with ``patchType``).

Pitfall: the API server sends ``object: null`` on DELETE and ``oldObject: null`` on CREATE and
CONNECT; both are ``None`` here, never ``{}``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

__all__ = [
    "ADMISSION_API_VERSION",
    "CONVERSION_API_VERSION",
    "AdmissionRequest",
    "ConversionRequest",
    "ReviewError",
    "admission_response",
    "conversion_response",
    "parse_admission_review",
    "parse_conversion_review",
]

ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
CONVERSION_API_VERSION: Final = "apiextensions.k8s.io/v1"

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
_OPERATIONS: Final = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})


class ReviewError(ValueError):
    """A review body the webhook cannot answer; served as HTTP 400 with ``reason`` and the message.

    ``reason`` is one of ``MalformedJSON``, ``WrongKind``, ``MissingRequest``, ``MissingUID``,
    ``InvalidField`` and (from the endpoint) ``UnsupportedMediaType``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def to_body(self) -> dict[str, Any]:
        """The 400 body: a ``metav1.Status`` so ``kubectl``-style tooling can print it."""
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "reason": self.reason,
            "message": self.message,
            "code": 400,
        }


@dataclass(frozen=True)
class AdmissionRequest:
    """One ``AdmissionReview.request``. ``object``/``old_object`` are the decoded objects (plain
    dicts unless the webhook was registered with a codec); ``raw`` is the whole request as sent.

    ``dry_run`` is true when the API server will not persist the result: a handler with side
    effects must not perform them (and should be registered with ``sideEffects: NoneOnDryRun``).
    """

    uid: str
    operation: Operation
    kind: Mapping[str, str]
    resource: Mapping[str, str]
    sub_resource: str
    request_kind: Mapping[str, str] | None
    request_resource: Mapping[str, str] | None
    request_sub_resource: str
    name: str
    namespace: str
    user_info: Mapping[str, Any]
    object: Any
    old_object: Any
    dry_run: bool
    options: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False)

    def replace_objects(self, obj: Any, old_object: Any) -> AdmissionRequest:
        """A copy with the objects swapped (used to hand decoded models to handlers)."""
        return AdmissionRequest(**{**self.__dict__, "object": obj, "old_object": old_object})


@dataclass(frozen=True)
class ConversionRequest:
    """One ``ConversionReview.request``: convert every object to ``desired_api_version``."""

    uid: str
    desired_api_version: str
    objects: Sequence[dict[str, Any]]


def _load(body: bytes, api_version: str, kind: str) -> dict[str, Any]:
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReviewError("MalformedJSON", f"request body is not JSON: {exc}") from None
    if not isinstance(review, dict):
        raise ReviewError("MalformedJSON", f"request body must be a JSON object, got {type(review).__name__}")
    got = (review.get("apiVersion"), review.get("kind"))
    if got != (api_version, kind):
        raise ReviewError(
            "WrongKind", f"expected apiVersion {api_version!r} kind {kind!r}, got {got[0]!r} {got[1]!r}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("MissingRequest", f"{kind} has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("MissingUID", f"{kind}.request.uid must be a non-empty string")
    return request


def _mapping(request: Mapping[str, Any], key: str, *, required: bool) -> dict[str, Any] | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise ReviewError("InvalidField", f"request.{key} must be an object")
    return value


def _string(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError("InvalidField", f"request.{key} must be a string")
    return value


def parse_admission_review(body: bytes) -> AdmissionRequest:
    """Parse an ``admission.k8s.io/v1`` ``AdmissionReview``. Raises :class:`ReviewError`."""
    request = _load(body, ADMISSION_API_VERSION, "AdmissionReview")
    operation = request.get("operation")
    if operation not in _OPERATIONS:
        raise ReviewError("InvalidField", f"request.operation must be one of {sorted(_OPERATIONS)}")
    obj = request.get("object")
    old = request.get("oldObject")
    for key, value in (("object", obj), ("oldObject", old)):
        if value is not None and not isinstance(value, dict):
            raise ReviewError("InvalidField", f"request.{key} must be an object or null")
    kind = _mapping(request, "kind", required=True)
    resource = _mapping(request, "resource", required=True)
    assert kind is not None
    assert resource is not None
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ReviewError("InvalidField", "request.dryRun must be a boolean")
    return AdmissionRequest(
        uid=request["uid"],
        operation=operation,
        kind=kind,
        resource=resource,
        sub_resource=_string(request, "subResource"),
        request_kind=_mapping(request, "requestKind", required=False),
        request_resource=_mapping(request, "requestResource", required=False),
        request_sub_resource=_string(request, "requestSubResource"),
        name=_string(request, "name"),
        namespace=_string(request, "namespace"),
        user_info=_mapping(request, "userInfo", required=False) or {},
        object=obj,
        old_object=old,
        dry_run=dry_run,
        options=_mapping(request, "options", required=False),
        raw=request,
    )


def parse_conversion_review(body: bytes) -> ConversionRequest:
    """Parse an ``apiextensions.k8s.io/v1`` ``ConversionReview``. Raises :class:`ReviewError`."""
    request = _load(body, CONVERSION_API_VERSION, "ConversionReview")
    desired = request.get("desiredAPIVersion")
    if not isinstance(desired, str) or "/" not in desired:
        raise ReviewError("InvalidField", "request.desiredAPIVersion must be a group/version string")
    objects = request.get("objects")
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise ReviewError("InvalidField", "request.objects must be a list of objects")
    return ConversionRequest(uid=request["uid"], desired_api_version=desired, objects=objects)


def admission_response(
    uid: str,
    *,
    allowed: bool,
    message: str = "",
    code: int | None = None,
    reason: str = "",
    warnings: Sequence[str] = (),
    patch: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An ``AdmissionReview`` answering ``uid``. A denial carries ``status.code`` (403 unless
    given) and ``status.message``, which the API server puts in the error the client sees; a
    non-empty ``patch`` is serialized and base64-encoded with ``patchType: JSONPatch``."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed or message or code is not None:
        status: dict[str, Any] = {"code": code if code is not None else (200 if allowed else 403)}
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        response["status"] = status
    if warnings:
        response["warnings"] = list(warnings)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(list(patch))).decode()
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


def conversion_response(
    uid: str, *, converted: Sequence[Mapping[str, Any]] | None = None, failure: str | None = None
) -> dict[str, Any]:
    """A ``ConversionReview`` answering ``uid``: ``Success`` with the converted objects, or a
    ``Failure`` status (``metav1.StatusFailure``) with ``failure`` as the message; the API server
    then fails the request with that message."""
    response: dict[str, Any] = {"uid": uid}
    if failure is not None:
        response["convertedObjects"] = []
        response["result"] = {"status": "Failure", "message": failure}
    else:
        response["convertedObjects"] = list(converted or [])
        response["result"] = {"status": "Success"}
    return {"apiVersion": CONVERSION_API_VERSION, "kind": "ConversionReview", "response": response}
