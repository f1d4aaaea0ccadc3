"""Field types and annotations that carry Kubernetes schema semantics.

Use them in :class:`~kube_runtime.resources.model.KubeModel` fields; the CRD generator
(:mod:`~kube_runtime.resources.schema`) turns them into the OpenAPI extensions Kubernetes knows:

* :data:`IntOrString` (``x-kubernetes-int-or-string``): a port name or number, a percentage.
* :data:`Quantity`: a resource quantity (``"500m"``, ``"1Gi"``, ``2``) checked against
  Kubernetes' quantity grammar on both sides.
* :class:`Rule`: a CEL validation rule (``x-kubernetes-validations``), on a field through
  ``Annotated[int, Rule("self % 2 == 0")]`` or on a model through ``validations=[...]``. The API
  server evaluates it; Python does not (pitfall: an object built in Python that breaks a rule is
  only rejected when written).
* :class:`ListType`: how server-side apply merges a list (``x-kubernetes-list-type``, and the
  ``x-kubernetes-list-map-keys`` of a ``map`` list).
* :data:`PreserveUnknownFields`: an arbitrary JSON object kept as is
  (``x-kubernetes-preserve-unknown-fields``); a model asks for the same with
  ``preserve_unknown_fields=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import GetJsonSchemaHandler, StringConstraints, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "QUANTITY_PATTERN",
    "IntOrString",
    "ListType",
    "PreserveUnknownFields",
    "Quantity",
    "Rule",
]

#: Kubernetes' resource quantity grammar (``apimachinery/pkg/api/resource``), as controller-gen emits it.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

_INT_OR_STRING: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}

#: An integer or a string (``intstr.IntOrString``): ``8080`` or ``"http"``, ``"25%"``.
IntOrString = Annotated[int | str, WithJsonSchema(_INT_OR_STRING)]

#: A resource quantity: an integer or a string in Kubernetes' quantity grammar (``"250m"``, ``"1Gi"``).
Quantity = Annotated[
    int | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)],
    WithJsonSchema({**_INT_OR_STRING, "pattern": QUANTITY_PATTERN}),
]

#: Any JSON object, kept as sent (``x-kubernetes-preserve-unknown-fields: true``).
PreserveUnknownFields = Annotated[
    dict[str, Any], WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
]


@dataclass(frozen=True, slots=True)
class Rule:
    """A CEL validation rule (``x-kubernetes-validations`` entry), checked by the API server.

    ``rule`` sees the annotated value as ``self`` (and the previous one as ``oldSelf`` in
    transition rules). ``message``/``message_expression`` shape the error, ``reason`` its HTTP
    reason (``FieldValueInvalid``...), ``field_path`` the field it is reported on.
    """

    rule: str
    message: str | None = None
    message_expression: str | None = None
    reason: str | None = None
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        """The ``x-kubernetes-validations`` entry."""
        out = {"rule": self.rule}
        for key, value in (
            ("message", self.message),
            ("messageExpression", self.message_expression),
            ("reason", self.reason),
            ("fieldPath", self.field_path),
        ):
            if value is not None:
                out[key] = value
        return out

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("x-kubernetes-validations", []).append(self.to_schema())
        return schema


@dataclass(frozen=True, slots=True)
class ListType:
    """How server-side apply merges a list field: ``Annotated[list[X], ListType.map("type")]``.

    ``atomic`` (the default for CRD lists): replaced as a whole by each applier; ``set``: scalar
    items merged as a set; ``map``: object items merged by ``keys`` (each must be a required
    field or have a default). Conditions are a ``map`` keyed by ``type``.
    """

    kind: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()

    @classmethod
    def map(cls, *keys: str) -> ListType:
        if not keys:
            raise ValueError("a map list needs at least one key")
        return cls("map", keys)

    @classmethod
    def set(cls) -> ListType:
        return cls("set")

    @classmethod
    def atomic(cls) -> ListType:
        return cls("atomic")

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["x-kubernetes-list-type"] = self.kind
        if self.keys:
            schema["x-kubernetes-list-map-keys"] = list(self.keys)
        return schema
