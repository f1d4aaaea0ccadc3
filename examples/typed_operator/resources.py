"""The ``Website`` custom resource, declared once as a model: its CRD is generated from it
(``python -m kube_runtime crd examples.typed_operator.resources:Website``) and the controller
reads and writes it typed."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kube_runtime.resources import Conditions, CustomResource, KubeModel, PrinterColumn, Rule

__all__ = ["Website", "WebsiteSpec", "WebsiteStatus"]


class WebsiteSpec(KubeModel, validations=[Rule("!self.title.startsWith(' ')", message="no leading space")]):
    """What the site serves."""

    title: Annotated[str, Field(min_length=1, max_length=64)]
    """The page title."""
    body: str = ""
    """The page body (HTML)."""
    replicas: Annotated[int, Field(ge=1, le=5)] = 1
    """How many servers would serve it (recorded in the generated ConfigMap)."""


class WebsiteStatus(KubeModel):
    """What the operator observed."""

    pages: int | None = None
    """Bytes of the rendered page."""
    conditions: Conditions | None = None


class Website(
    CustomResource,
    group="demo.kube-runtime.dev",
    version="v1",
    kind="Website",
    short_names=["ws"],
    categories=["demo"],
    printer_columns=[
        PrinterColumn("Title", ".spec.title"),
        PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
    ],
):
    """A website rendered into a ConfigMap it owns."""

    spec: WebsiteSpec
    status: WebsiteStatus | None = None
