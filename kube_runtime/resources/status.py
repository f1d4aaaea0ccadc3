"""Writing status: server-side apply of the status subresource, and Kubernetes conditions.

:func:`apply_status` applies only ``status`` (plus the object's identity) through the status
subresource with a field manager, ``force`` on by default (a controller owns its status). Because
it is an apply, writing the same status twice is a no-op on the server: no new
``resourceVersion``, no watch event, no reconcile it triggers.

:func:`set_condition` keeps ``metav1.Condition`` semantics: ``lastTransitionTime`` changes only
when the condition's ``status`` changes, ``observedGeneration`` records the generation the
condition was computed from. So a reconciler may set its conditions on every pass: unchanged
conditions produce an identical status, and the apply above writes nothing. Declare the list as
``Conditions`` so server-side apply merges it by ``type``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field

from kube_runtime.resources.api import TypedApi
from kube_runtime.resources.model import KubeModel, Resource, to_dict
from kube_runtime.resources.types import ListType

__all__ = ["Condition", "Conditions", "apply_status", "find_condition", "now", "set_condition"]

M = TypeVar("M", bound=Resource)


class Condition(KubeModel):
    """A ``metav1.Condition``."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """CamelCase kind of condition (``Ready``)."""
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[str, Field(min_length=1, max_length=1024)]
    """CamelCase reason for the last transition."""
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: str
    """When ``status`` last changed (RFC 3339)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None


#: A list of conditions merged by ``type`` under server-side apply.
Conditions = Annotated[list[Condition], ListType.map("type")]


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find_condition(conditions: list[Condition] | None, type_: str) -> Condition | None:
    for condition in conditions or ():
        if condition.type == type_:
            return condition
    return None


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: Literal["True", "False", "Unknown"] | bool,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    timestamp: str | None = None,
) -> list[Condition]:
    """A new list with condition ``type_`` set (others kept, order kept, new ones appended).

    ``lastTransitionTime`` is kept from the existing condition when ``status`` is unchanged, else
    ``timestamp`` (default :func:`now`). ``status`` may be a bool.
    """
    value: Literal["True", "False", "Unknown"] = (
        ("True" if status else "False") if isinstance(status, bool) else status
    )
    existing = find_condition(conditions, type_)
    transition = (
        existing.last_transition_time
        if existing is not None and existing.status == value
        else timestamp or now()
    )
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=observed_generation,
    )
    out = [new if condition.type == type_ else condition for condition in conditions or ()]
    if existing is None:
        out.append(new)
    return out


async def apply_status(
    api: TypedApi[M], obj: M, status: BaseModel | dict[str, Any], *, field_manager: str, force: bool = True
) -> M:
    """Server-side apply ``status`` as ``obj``'s status (the status subresource); returns the
    object as stored. ``field_manager`` owns exactly the status fields sent (``None`` fields are
    left out). The same status applied again writes nothing."""
    name = obj.metadata.name
    if not name:
        raise ValueError("apply_status needs an object with metadata.name")
    body_status = to_dict(status) if isinstance(status, BaseModel) else status
    metadata: dict[str, Any] = {"name": name}
    if obj.metadata.namespace:
        metadata["namespace"] = obj.metadata.namespace
    body = {"apiVersion": obj.api_version, "kind": obj.kind, "metadata": metadata, "status": body_status}
    return await api.patch_status(name, body, patch_type="apply", field_manager=field_manager, force=force)
