"""Decoding server objects into models, and the error when one does not fit.

:func:`decoder` turns a dict into a model instance, raising :class:`InvalidObject` (never
pydantic's ``ValidationError``) so every caller sees one typed error that names the object and
each failing field by its wire path (``spec.replicas``). Objects that fail are usually written by
something that bypassed the schema (an older CRD version, a ``kubectl edit`` on a CRD without the
constraint) or by a model stricter than the CRD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from kube_runtime.client.errors import KubeError

__all__ = ["FieldError", "InvalidObject", "decoder"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing field: its wire path (``spec.ports[0].port``) and pydantic's message."""

    path: str
    message: str


class InvalidObject(KubeError):
    """An object read from the server does not fit its model.

    ``kind``, ``namespace``, ``name`` identify it; ``fields`` lists what failed; ``object`` is the
    raw dict (for logging or a repair). The message names the object and the first fields.
    """

    def __init__(
        self, kind: str, namespace: str | None, name: str | None, fields: list[FieldError], obj: Any
    ) -> None:
        where = f"{namespace}/{name}" if namespace else str(name)
        detail = "; ".join(f"{field.path}: {field.message}" for field in fields[:3])
        more = f" (+{len(fields) - 3} more)" if len(fields) > 3 else ""
        super().__init__(f"{kind} {where} does not fit its model: {detail}{more}")
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.fields = fields
        self.object = obj

    @property
    def paths(self) -> list[str]:
        """The failing fields' paths."""
        return [field.path for field in self.fields]


def decoder(model: type[M], *, strict: bool = False) -> Callable[[dict[str, Any]], M]:
    """``decode(obj)``: ``model.model_validate(obj)``, raising :class:`InvalidObject` on failure.

    ``strict``: validate as the API server's schema does, in pydantic's strict JSON mode (``"5"``
    does not fit an ``int`` field, ``"true"`` not a ``bool``; lax mode converts both). For objects
    not yet validated by the API server (an admission review's), whose converted values would
    otherwise be written back as if the handler had set them."""
    kind = getattr(getattr(model, "api_resource", None), "kind", model.__name__)
    if strict:
        validate_json = model.model_validate_json

        def validate(obj: dict[str, Any]) -> M:
            return validate_json(orjson.dumps(obj), strict=True)

    else:
        validate = model.model_validate

    def decode(obj: dict[str, Any]) -> M:
        try:
            return validate(obj)
        except ValidationError as exc:
            raise invalid_object(kind, obj, exc) from exc

    return decode


def invalid_object(kind: str, obj: Any, error: ValidationError) -> InvalidObject:
    """The :class:`InvalidObject` for ``obj`` failing with ``error``."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    fields = [FieldError(_path(detail["loc"]), detail["msg"]) for detail in error.errors()]
    return InvalidObject(kind, metadata.get("namespace"), metadata.get("name"), fields, obj)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "<object>"
