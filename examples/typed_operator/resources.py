"""The ``Website`` custom resource, declared once as a model per version: its CRD is generated
from them (``python -m kube_runtime crd examples.typed_operator.resources:WebsiteV1Alpha1
examples.typed_operator.resources:Website``) and the controller reads and writes it typed.

``v1`` is the stored version. ``v1alpha1`` is still served: it named ``body`` ``html`` and
``replicas`` ``servers``; the conversion webhook (:mod:`examples.typed_operator.webhooks`) maps
between the two."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kube_runtime.resources import Conditions, CustomResource, KubeModel, PrinterColumn, Rule

__all__ = ["Website", "WebsiteSpec", "WebsiteStatus", "WebsiteV1Alpha1", "WebsiteV1Alpha1Spec"]


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
    storage=True,
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


class WebsiteV1Alpha1Spec(KubeModel):
    """What the site serves, as ``v1alpha1`` spelled it."""

    title: Annotated[str, Field(min_length=1, max_length=64)]
    """The page title."""
    html: str = ""
    """The page body (``spec.body`` in v1)."""
    servers: Annotated[int, Field(ge=1, le=5)] = 1
    """How many servers would serve it (``spec.replicas`` in v1)."""


class WebsiteV1Alpha1(
    CustomResource,
    group="demo.kube-runtime.dev",
    version="v1alpha1",
    kind="Website",
    deprecated="demo.kube-runtime.dev/v1alpha1 Website is deprecated; use v1",
):
    """The first version of ``Website``, served for old clients and converted to ``v1``."""

    spec: WebsiteV1Alpha1Spec
    status: WebsiteStatus | None = None
