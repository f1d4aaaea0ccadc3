"""What a webhook handler is, what it returns, and how it is registered.

Handlers are coroutines:

* a **validator** ``async def (request: AdmissionRequest) -> Verdict`` returns :func:`allow` or
  :func:`deny` (a reason, an HTTP-like code, warnings);
* a **mutator** ``async def (request: AdmissionRequest) -> Any`` returns the changed object (the
  runtime computes the JSON patch) or a :class:`Verdict` (to deny, or allow unchanged with
  warnings), or :class:`Mutation` for both a changed object and warnings;
* a **converter** ``async def (obj: Any, desired_api_version: str) -> Any`` returns the object in
  ``desired_api_version``.

Handlers see plain dicts unless registered with a :class:`Codec` (``decode``/``encode``), the hook
for typed resource models: ``request.object``/``old_object`` are then ``codec.decode(obj)`` and a
mutator's or converter's result goes through ``codec.encode`` before diffing or answering (a
:class:`ChangeCodec`, such as the typed models' codec, writes a mutator's result as the original
plus what the handler changed instead). A mutator may change ``request.object`` in place and
return it: the runtime diffs against its own copy of the original.

Every webhook has a ``timeout_seconds`` (the value written in its configuration, 1-30 as the API
server allows); the runtime answers before it passes (see :mod:`kube_runtime.webhooks.app`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from kube_runtime.webhooks.review import AdmissionRequest

__all__ = [
    "AdmissionWebhook",
    "ChangeCodec",
    "Codec",
    "ConversionWebhook",
    "Converter",
    "FailurePolicy",
    "MatchPolicy",
    "Mutation",
    "Mutator",
    "SideEffects",
    "Validator",
    "Verdict",
    "WebhookRule",
    "allow",
    "deny",
]

T = TypeVar("T")
FailurePolicy = Literal["Fail", "Ignore"]
SideEffects = Literal["None", "NoneOnDryRun"]
MatchPolicy = Literal["Exact", "Equivalent"]


class Codec(Protocol[T]):
    """Turns the wire dict into a handler's type and back (e.g. a pydantic model's
    ``model_validate``/``model_dump(mode="json", by_alias=True, exclude_unset=True)``).
    ``encode(decode(d))`` should equal ``d`` for fields the handler did not touch, or the patch
    will carry spurious changes (a model that drops unknown fields removes them)."""

    def decode(self, obj: dict[str, Any]) -> T: ...

    def encode(self, value: T) -> dict[str, Any]: ...


@runtime_checkable
class ChangeCodec(Codec[T], Protocol[T]):
    """A codec that writes a mutator's result as the wire original plus what the handler
    changed, so the patch holds exactly the handler's changes, however ``encode`` would
    normalise untouched values (a set's order, a timestamp's precision, ``1.0`` for ``1``).

    ``snapshot(decoded)`` is taken before the handler runs (it may change the object in place);
    ``encode_change(original, snapshot, result)`` is the object to diff ``original`` against."""

    def snapshot(self, value: T) -> Any: ...

    def encode_change(self, original: dict[str, Any], snapshot: Any, value: T) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Verdict:
    """An admission decision. ``code`` is the ``status.code`` the API server reports with a
    denial (403 by default); ``reason`` becomes ``status.message``, the text the client sees."""

    allowed: bool
    reason: str = ""
    code: int = 403
    warnings: tuple[str, ...] = ()


def allow(*warnings: str) -> Verdict:
    """Admit, optionally with warnings (``kubectl`` prints them as ``Warning: ...``)."""
    return Verdict(True, warnings=tuple(warnings))


def deny(reason: str, *, code: int = 403, warnings: Sequence[str] = ()) -> Verdict:
    """Refuse with ``reason``, shown to the client as ``admission webhook "..." denied the
    request: <reason>``."""
    return Verdict(False, reason, code, tuple(warnings))


@dataclass(frozen=True)
class Mutation(Generic[T]):
    """A mutator's result with warnings as well as the changed object."""

    object: T
    warnings: tuple[str, ...] = ()


Validator = Callable[[AdmissionRequest], Awaitable[Verdict]]
Mutator = Callable[[AdmissionRequest], Awaitable[Any]]
Converter = Callable[[Any, str], Awaitable[Any]]


@dataclass(frozen=True)
class WebhookRule:
    """One ``rules[]`` entry of a webhook configuration: which operations on which resources."""

    api_groups: tuple[str, ...]
    api_versions: tuple[str, ...]
    resources: tuple[str, ...]
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    scope: Literal["*", "Cluster", "Namespaced"] = "*"

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiGroups": list(self.api_groups),
            "apiVersions": list(self.api_versions),
            "resources": list(self.resources),
            "operations": list(self.operations),
            "scope": self.scope,
        }


@dataclass(frozen=True)
class AdmissionWebhook:
    """A registered validating or mutating webhook, served at ``path``.

    ``name`` is the webhook's name in its configuration (a DNS name with at least three
    segments, e.g. ``vwidget.example.com``), which the API server quotes in denials.
    """

    name: str
    path: str
    kind: Literal["validating", "mutating"]
    handler: Callable[[AdmissionRequest], Awaitable[Any]]
    rules: tuple[WebhookRule, ...]
    failure_policy: FailurePolicy = "Fail"
    side_effects: SideEffects = "None"
    match_policy: MatchPolicy = "Equivalent"
    timeout_seconds: int = 10
    namespace_selector: dict[str, Any] | None = None
    object_selector: dict[str, Any] | None = None
    codec: Codec[Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ConversionWebhook:
    """A registered CRD conversion webhook for ``crd`` (``<plural>.<group>``), served at ``path``."""

    crd: str
    path: str
    handler: Converter
    timeout_seconds: int = 10
    codec: Codec[Any] | None = field(default=None, compare=False)
