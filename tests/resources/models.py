"""Models shared by the typed-resource tests."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from kube_runtime.resources import (
    Conditions,
    CustomResource,
    IntOrString,
    KubeModel,
    PreserveUnknownFields,
    PrinterColumn,
    Quantity,
    Rule,
)

GROUP = "typed.example.com"


class Size(StrEnum):
    SMALL = "small"
    LARGE = "large"


class Port(KubeModel):
    name: str
    port: IntOrString


class Range(KubeModel, validations=[Rule("self.low <= self.high", message="low must not exceed high")]):
    low: int = 0
    high: int = 10


class WidgetSpec(KubeModel):
    """What a Widget asks for."""

    replicas: Annotated[int, Field(ge=0, le=10)] = 1
    """How many copies."""
    size: Size = Size.SMALL
    mode: Literal["fast", "safe"] = "safe"
    ports: list[Port] = []
    labels: dict[str, str] | None = None
    tags: set[str] | None = None
    memory: Quantity | None = None
    window: Range | None = None
    config: PreserveUnknownFields | None = None
    even: Annotated[int, Rule("self % 2 == 0", message="even must be even")] = 0
    owner_name: Annotated[str, Field(min_length=1, max_length=30, pattern="^[a-z][a-z0-9-]*$")] = "me"


class WidgetStatus(KubeModel):
    ready_replicas: int | None = None
    conditions: Conditions | None = None


class Widget(
    CustomResource,
    group=GROUP,
    version="v1",
    kind="Widget",
    short_names=["wdg"],
    categories=["typed"],
    printer_columns=[PrinterColumn("Replicas", ".spec.replicas", "integer")],
):
    """A widget."""

    spec: WidgetSpec
    status: WidgetStatus | None = None


class ThingSpec(KubeModel):
    replicas: int = 1
    tier: str | None = None


class DoohickeyV1(CustomResource, group=GROUP, version="v1", kind="Doohickey", deprecated="use v2"):
    spec: ThingSpec


class DoohickeyV2(CustomResource, group=GROUP, version="v2", kind="Doohickey", storage=True):
    spec: ThingSpec
    status: dict[str, Any] | None = None


class Gadget(CustomResource, group=GROUP, version="v1", kind="Gadget", scope="Cluster"):
    spec: ThingSpec
