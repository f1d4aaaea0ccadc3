"""Objects as pydantic models: :class:`KubeModel` for nested parts, :class:`Resource` for a kind.

::

    class WidgetSpec(KubeModel):
        replicas: Annotated[int, Field(ge=0, le=10)] = 1
        size: Literal["small", "large"] = "small"

    class Widget(CustomResource, group="example.com", version="v1", kind="Widget"):
        spec: WidgetSpec
        status: WidgetStatus | None = None

Guarantees:

* Python names are snake_case, the wire is camelCase (``min_replicas`` <-> ``minReplicas``;
  an explicit ``Field(alias=...)`` wins); objects accept either when built in Python.
* Unknown fields are kept (``extra="allow"``): an object read from a newer server, or with fields
  the model does not declare, is written back with them (:func:`to_dict`). Pitfall: in a
  non-compact store the values of unknown fields may be shared with the cache; do not mutate
  them in place.
* :func:`to_dict` writes the wire form: aliases, JSON types, declared ``None`` fields left out (so
  an apply does not claim fields it does not set; an undeclared field read as ``null`` is written
  back as ``null``), ``apiVersion``/``kind`` always present.
* Field docstrings become schema descriptions (``use_attribute_docstrings``).

The class keywords of :class:`Resource` say where the kind lives; those of :class:`CustomResource`
also describe its CRD (see :func:`~kube_runtime.resources.crd.crd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from kube_runtime.client.resource import ApiResource
from kube_runtime.resources.meta import ObjectMeta, wire_name
from kube_runtime.resources.types import Rule

__all__ = ["CrdSettings", "CustomResource", "KubeModel", "PrinterColumn", "Resource", "to_dict"]


class KubeModel(BaseModel):
    """Base of every model part: camelCase on the wire, unknown fields kept.

    Class keywords: ``validations=[Rule(...)]`` (CEL rules on this object, e.g. comparing two of
    its fields), ``preserve_unknown_fields=True`` (the API server keeps fields the schema does not
    declare instead of pruning them).
    """

    model_config = ConfigDict(
        extra="allow",
        alias_generator=wire_name,
        validate_by_name=True,
        validate_by_alias=True,
        use_attribute_docstrings=True,
    )

    __kube_validations__: ClassVar[tuple[Rule, ...]] = ()
    __kube_preserve_unknown__: ClassVar[bool] = False

    def __init_subclass__(
        cls,
        *,
        validations: Sequence[Rule] | None = None,
        preserve_unknown_fields: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if validations is not None:  # else a subclass keeps its parent's rules (it has its fields)
            cls.__kube_validations__ = tuple(validations)
        if preserve_unknown_fields is not None:
            cls.__kube_preserve_unknown__ = preserve_unknown_fields

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target.pop("additionalProperties", None)  # extra="allow" is about round trips, not the schema
        if cls.__kube_validations__:
            target["x-kubernetes-validations"] = [rule.to_schema() for rule in cls.__kube_validations__]
        if cls.__kube_preserve_unknown__:
            target["x-kubernetes-preserve-unknown-fields"] = True
        return schema


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    """An ``additionalPrinterColumns`` entry: what ``kubectl get`` shows.

    ``json_path`` is relative to the object (``.spec.replicas``); ``type`` one of ``string``,
    ``integer``, ``number``, ``boolean``, ``date``; ``priority`` > 0 hides it outside ``-o wide``.
    """

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"] = "string"
    description: str | None = None
    format: str | None = None
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.format:
            out["format"] = self.format
        if self.priority:
            out["priority"] = self.priority
        return out


class Resource(KubeModel):
    """A Kubernetes object of one kind: ``apiVersion``, ``kind``, ``metadata`` and the kind's fields.

    Class keywords (required on a concrete kind): ``group`` (``""`` for the core group),
    ``version``, ``kind``; optional ``plural`` (default: lowercase kind + ``s``) and ``scope``
    (``"Namespaced"``, the default, or ``"Cluster"``). ``api_resource`` is the client's
    :class:`~kube_runtime.client.resource.ApiResource` for the kind.

    ``api_version``/``kind`` default to the class's own, so ``Widget(metadata=..., spec=...)`` is a
    complete object.
    """

    api_version: str = ""
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    api_resource: ClassVar[ApiResource]

    def __init_subclass__(
        cls,
        *,
        group: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        plural: str | None = None,
        scope: Literal["Namespaced", "Cluster"] = "Namespaced",
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if group is None and version is None and kind is None:
            return  # an intermediate base class
        if group is None or not version or not kind:
            raise TypeError(f"{cls.__name__}: a resource needs group, version and kind")
        cls.api_resource = ApiResource(
            group, version, kind, plural or f"{kind.lower()}s", namespaced=scope == "Namespaced"
        )

    def model_post_init(self, context: Any, /) -> None:
        if not self.api_version or not self.kind:
            resource = type(self).api_resource
            self.api_version = self.api_version or resource.api_version
            self.kind = self.kind or resource.kind

    @property
    def name(self) -> str:
        """``metadata.name`` (``""`` if unset)."""
        return self.metadata.name or ""

    @property
    def namespace(self) -> str | None:
        """``metadata.namespace``."""
        return self.metadata.namespace


class CustomResource(Resource):
    """A kind defined by a CustomResourceDefinition that :func:`~kube_runtime.resources.crd.crd`
    generates from the model.

    Class keywords beyond :class:`Resource`'s: ``short_names``, ``categories``, ``singular``
    (default: lowercase kind), ``printer_columns`` (:class:`PrinterColumn`), ``validations``
    (CEL rules on the whole object), ``storage`` (the stored version, when several models declare
    versions of one kind; a single version is always stored), ``served`` (default ``True``),
    ``deprecated`` (``True`` or a warning message), and ``status_subresource`` (default: whether
    the model has a ``status`` field). Pitfall: with the status subresource on, writes of the
    main resource ignore ``status``: write it with
    :func:`~kube_runtime.resources.status.apply_status`.
    """

    crd_settings: ClassVar[CrdSettings]

    def __init_subclass__(
        cls,
        *,
        short_names: Sequence[str] = (),
        categories: Sequence[str] = (),
        singular: str | None = None,
        printer_columns: Sequence[PrinterColumn] = (),
        storage: bool | None = None,
        served: bool = True,
        deprecated: bool | str = False,
        status_subresource: bool | None = None,
        **kwargs: Any,
    ) -> None:
        declares_kind = "kind" in kwargs
        super().__init_subclass__(**kwargs)
        settings = CrdSettings(
            tuple(short_names),
            tuple(categories),
            singular,
            tuple(printer_columns),
            storage,
            served,
            deprecated,
            status_subresource,
        )
        if not declares_kind and settings == CrdSettings() and hasattr(cls, "crd_settings"):
            return  # a plain subclass of a declared kind keeps its CRD settings
        cls.crd_settings = settings

    @classmethod
    def has_status_subresource(cls) -> bool:
        """Whether the CRD enables the status subresource for this version."""
        explicit = cls.crd_settings.status_subresource
        return "status" in cls.model_fields if explicit is None else explicit


@dataclass(frozen=True, slots=True)
class CrdSettings:
    """The CRD-only class keywords of a :class:`CustomResource` (see there)."""

    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular: str | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    storage: bool | None = None
    served: bool = True
    deprecated: bool | str = False
    status_subresource: bool | None = None


def to_dict(obj: BaseModel) -> dict[str, Any]:
    """The wire form of ``obj`` (see the module docs): what the typed Api sends. Declared fields
    that are ``None`` are left out; an undeclared field is written as read, ``null`` included, so
    a read-modify-write keeps it."""
    dumped: dict[str, Any] = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    _put_back_null_extras(obj, dumped)
    return dumped


def _put_back_null_extras(model: BaseModel, dumped: dict[str, Any]) -> None:
    """Put into ``dumped`` (``model``'s dump) the undeclared fields of ``model`` and of the models
    inside it whose value is ``None`` (``exclude_none`` drops them with the declared ones)."""
    for key, value in (model.model_extra or {}).items():
        if value is None:
            dumped[key] = None
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        child = dumped.get(field.serialization_alias or field.alias or name)
        _put_back_in(value, child)


def _put_back_in(value: Any, dumped: Any) -> None:
    """:func:`_put_back_null_extras` for a field's ``value`` (a model, or a list or dict of them)."""
    if isinstance(value, BaseModel):
        if isinstance(dumped, dict):
            _put_back_null_extras(value, dumped)
    elif isinstance(value, list | tuple):
        if isinstance(dumped, list) and len(dumped) == len(value):
            for item, item_dumped in zip(value, dumped, strict=True):
                _put_back_in(item, item_dumped)
    elif isinstance(value, dict) and isinstance(dumped, dict):
        for key, item in value.items():
            _put_back_in(item, dumped.get(key))
