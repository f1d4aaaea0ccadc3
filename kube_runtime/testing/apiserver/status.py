"""Failure ``Status`` objects with the codes, reasons and messages kube-apiserver uses."""

from __future__ import annotations

from typing import Any

import orjson

from kube_runtime.testing.apiserver.resources import ResourceType

__all__ = [
    "StatusError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "invalid",
    "not_found",
    "status_body",
]


class StatusError(Exception):
    """Raised by server operations; the HTTP layer turns it into a Status response."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # omitted when empty, as Go's omitempty does
            out["reason"] = self.reason
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def status_body(err: StatusError) -> bytes:
    return orjson.dumps(err.status())


def _details(rtype: ResourceType | None, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if rtype is not None:
        if rtype.group:
            out["group"] = rtype.group
        out["kind"] = rtype.plural
    return out


def not_found(rtype: ResourceType, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{rtype.qualified_plural} "{name}" not found', _details(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{rtype.qualified_plural} "{name}" already exists', _details(rtype, name)
    )


def conflict(rtype: ResourceType, name: str, why: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.qualified_plural} "{name}": {why}',
        _details(rtype, name),
    )


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> StatusError:
    """422 Invalid; ``causes`` are ``(field, reason, message)`` like ``("metadata.name", ...)``."""
    kind = f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind
    parts = "; ".join(f"{f}: {m}" for f, _, m in causes)
    if len(causes) > 1:
        parts = "[" + ", ".join(f"{f}: {m}" for f, _, m in causes) + "]"
    details = _details(rtype, name)
    details["kind"] = rtype.kind
    details["causes"] = [{"reason": r, "message": m, "field": f} for f, r, m in causes]
    return StatusError(422, "Invalid", f'{kind} "{name}" is invalid: {parts}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(rtype: ResourceType, name: str, why: str) -> StatusError:
    return StatusError(
        403, "Forbidden", f'{rtype.qualified_plural} "{name}" is forbidden: {why}', _details(rtype, name)
    )


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)
