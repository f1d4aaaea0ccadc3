"""A :class:`~kube_runtime.webhooks.handlers.Codec` for typed resource models, so validators,
mutators and converters take and return :mod:`kube_runtime.resources` models instead of dicts.

``ModelCodec(Website)`` decodes every object as a ``Website``; ``ModelCodec(WebsiteV1Alpha1,
Website)`` (versions of one kind, as a converter sees them) decodes each object with the model of
its ``apiVersion``. ``encode`` writes a model back as it came plus what the handler set:
``model_dump(mode="json", by_alias=True, exclude_unset=True)``, so a mutator's patch holds only its
own changes (defaults the model would fill in are not added unless the handler assigns them) and
unknown fields survive (models keep them).

Objects are validated strictly, as the API server's schema will (pydantic's strict JSON mode):
``"5"`` does not fit an ``int`` field. In lax mode it would become ``5``, and the mutator's patch
would write the conversion back as if the handler had made it.

Errors: an object that does not fit its model raises
:class:`~kube_runtime.resources.errors.InvalidObject` from ``decode`` and an ``apiVersion`` no
model declares raises ``ValueError``; the webhook turns either into a denial (admission) or a
``Failure`` (conversion) naming the fields, counted as a handler error.

Pitfall: a handler that builds a new model (a converter usually does) must pass every field it
means to keep, ``metadata`` included; fields left at their defaults are not written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from kube_runtime.resources import decoder
from kube_runtime.resources.model import Resource

__all__ = ["ModelCodec"]

M = TypeVar("M", bound=Resource)


class ModelCodec(Generic[M]):
    """Decodes wire dicts into ``models`` (chosen by ``apiVersion`` when there are several) and
    encodes models back (see the module docs). Raises ``ValueError`` for no models, or two with
    the same ``apiVersion``."""

    def __init__(self, *models: type[M]) -> None:
        if not models:
            raise ValueError("ModelCodec needs at least one model")
        self._by_version: dict[str, Callable[[dict[str, Any]], M]] = {}
        for model in models:
            api_version = model.api_resource.api_version
            if api_version in self._by_version:
                raise ValueError(f"two models for {api_version}")
            self._by_version[api_version] = decoder(model, strict=True)
        self._only = decoder(models[0], strict=True) if len(models) == 1 else None

    def decode(self, obj: dict[str, Any]) -> M:
        if self._only is not None:
            return self._only(obj)
        api_version = obj.get("apiVersion")
        decode = self._by_version.get(api_version) if isinstance(api_version, str) else None
        if decode is None:
            raise ValueError(f"no model for apiVersion {api_version!r} (known: {sorted(self._by_version)})")
        return decode(obj)

    def encode(self, value: M) -> dict[str, Any]:
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
