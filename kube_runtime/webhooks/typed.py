"""A :class:`~kube_runtime.webhooks.handlers.Codec` for typed resource models, so validators,
mutators and converters take and return :mod:`kube_runtime.resources` models instead of dicts.

``ModelCodec(Website)`` decodes every object as a ``Website``; ``ModelCodec(WebsiteV1Alpha1,
Website)`` (versions of one kind, as a converter sees them) decodes each object with the model of
its ``apiVersion``.

A mutator's result is written as the object the API server sent plus what the handler changed
(:meth:`ModelCodec.encode_change`): the model is compared with a snapshot taken before the handler
ran, field by field as Python values, so the patch holds exactly the handler's changes, in place or
assigned (appending to a defaulted list included), and nothing else: a ``set`` field's order, a
timestamp's precision or ``1.0`` for a float field the handler left alone are not rewritten, and
defaults the model fills in are not added unless the handler changes them. A converter's result is
``encode``: ``model_dump(mode="json", by_alias=True, exclude_unset=True)`` (fields the converter
set, and unknown fields, which models keep).

Objects are validated strictly, as the API server's schema will (pydantic's strict JSON mode):
``"5"`` does not fit an ``int`` field. In lax mode it would become ``5``, and the mutator's patch
would write the conversion back as if the handler had made it.

Errors: an object that does not fit its model raises
:class:`~kube_runtime.resources.errors.InvalidObject` from ``decode`` and an ``apiVersion`` no
model declares raises ``ValueError``; the webhook turns either into a denial (admission) or a
``Failure`` (conversion) naming the fields, counted as a handler error.

Pitfall: a converter that builds a new model must pass every field it means to keep, ``metadata``
included; fields left at their defaults are not written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

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

    def snapshot(self, value: M) -> dict[str, Any]:
        """Every field of ``value`` as Python values (new containers: later in-place changes of
        the model do not reach it)."""
        return value.model_dump(by_alias=True)

    def encode_change(self, original: dict[str, Any], snapshot: Any, value: M) -> dict[str, Any]:
        """``original`` with every field whose value differs between ``snapshot`` and ``value``
        replaced by ``value``'s (JSON form), and fields ``value`` no longer has removed."""
        if not isinstance(value, BaseModel):
            raise TypeError(f"a mutator with a ModelCodec must return a model, got {type(value).__name__}")
        after = value.model_dump(by_alias=True)
        changed: dict[str, Any] = _overlay(
            original, snapshot, after, value.model_dump(mode="json", by_alias=True)
        )
        return changed


def _overlay(original: Any, before: Any, after: Any, after_json: Any) -> Any:
    """``original`` (wire form) changed where ``before`` and ``after`` (Python forms of the same
    object) differ; ``after_json`` is ``after`` in JSON form, key for key."""
    if not (isinstance(original, dict) and isinstance(before, dict) and isinstance(after, dict)):
        return after_json
    out = dict(original)
    for key, value in after.items():
        if key in before and before[key] == value:
            continue  # untouched: the wire form stays (or stays absent)
        if key in original and key in before:
            out[key] = _overlay(original[key], before[key], value, after_json[key])
        else:
            out[key] = after_json[key]
    for key in before:
        if key not in after:
            out.pop(key, None)
    return out
