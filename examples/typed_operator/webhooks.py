"""The Website operator's webhooks, typed with its models: a validator, a defaulter and the
``v1alpha1`` <-> ``v1`` converter.

* **validate** (``v1``, create and update): a title is plain text (it goes into ``<title>``), so
  ``<``, ``>`` and ``&`` are refused; a Website at the maximum of 5 replicas is admitted with a
  warning.
* **default** (``v1``, create and update): an empty ``spec.body`` becomes a heading with the title,
  so every page shows something.
* **convert**: ``v1alpha1`` ``spec.html``/``spec.servers`` are ``v1`` ``spec.body``/``spec.replicas``;
  metadata and status are carried over unchanged (the API server refuses a conversion that
  changes metadata other than labels and annotations).

The admission webhooks name only ``v1`` in their rules; with ``matchPolicy: Equivalent`` (the
default) a ``v1alpha1`` write is converted to ``v1`` through the converter before they see it.
:func:`install` creates the CRD (both versions, conversion through this server) and both webhook
configurations for a webhook server reachable at ``client_config``.
"""

from __future__ import annotations

from typing import Any

from examples.typed_operator.resources import Website, WebsiteSpec, WebsiteV1Alpha1, WebsiteV1Alpha1Spec
from kube_runtime.client import Api, ApiError, ApiResource, Client
from kube_runtime.resources import crd
from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow, deny
from kube_runtime.webhooks.config import (
    WebhookClientConfig,
    mutating_webhook_configuration,
    validating_webhook_configuration,
    with_conversion,
)
from kube_runtime.webhooks.typed import ModelCodec

__all__ = [
    "CONVERT_PATH",
    "CRD_NAME",
    "DEFAULT_PATH",
    "MAX_REPLICAS",
    "VALIDATE_PATH",
    "build_webhooks",
    "convert",
    "default",
    "install",
    "validate",
    "website_crd",
]

GROUP = "demo.kube-runtime.dev"
CRD_NAME = f"websites.{GROUP}"
VALIDATE_PATH = "/validate-websites"
DEFAULT_PATH = "/default-websites"
CONVERT_PATH = "/convert-websites"
CONFIGURATION_NAME = "typed-operator"
MAX_REPLICAS = 5
_MARKUP = "<>&"

CRDS = ApiResource.builtin("CustomResourceDefinition")
_ADMISSION = "admissionregistration.k8s.io"
VALIDATING_CONFIGS = ApiResource(
    _ADMISSION, "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", namespaced=False
)
MUTATING_CONFIGS = ApiResource(
    _ADMISSION, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", namespaced=False
)


async def validate(request: AdmissionRequest) -> Verdict:
    """Refuse markup in the title; warn at the replica maximum."""
    site: Website = request.object
    found = sorted({c for c in site.spec.title if c in _MARKUP})
    if found:
        return deny(f"spec.title is plain text: it must not contain {' '.join(found)}")
    if site.spec.replicas == MAX_REPLICAS:
        return allow(f"spec.replicas is at its maximum ({MAX_REPLICAS})")
    return allow()


async def default(request: AdmissionRequest) -> Website:
    """Fill an empty body with a heading of the title."""
    site: Website = request.object
    if not site.spec.body:
        site.spec.body = f"<h1>{site.spec.title}</h1>"
    return site


async def convert(site: Website | WebsiteV1Alpha1, desired_api_version: str) -> Website | WebsiteV1Alpha1:
    """``site`` at ``desired_api_version`` (``ValueError`` for a version this kind does not have)."""
    if desired_api_version == Website.api_resource.api_version and isinstance(site, WebsiteV1Alpha1):
        old = site.spec
        new = WebsiteSpec(title=old.title, body=old.html, replicas=old.servers)
        return Website(metadata=site.metadata, spec=new, **_status(site))
    if desired_api_version == WebsiteV1Alpha1.api_resource.api_version and isinstance(site, Website):
        spec = site.spec
        alpha = WebsiteV1Alpha1Spec(title=spec.title, html=spec.body, servers=spec.replicas)
        return WebsiteV1Alpha1(metadata=site.metadata, spec=alpha, **_status(site))
    raise ValueError(f"cannot convert {site.api_version} Website to {desired_api_version}")


def _status(site: Website | WebsiteV1Alpha1) -> dict[str, Any]:
    return {"status": site.status} if site.status is not None else {}


def build_webhooks(webhooks: Webhooks | None = None) -> Webhooks:
    """The three webhooks registered on ``webhooks`` (a new :class:`Webhooks` by default)."""
    webhooks = webhooks if webhooks is not None else Webhooks()
    rules = [WebhookRule((GROUP,), ("v1",), ("websites",))]
    codec: ModelCodec[Any] = ModelCodec(Website)
    webhooks.validating(
        VALIDATE_PATH, validate, name=f"vwebsite.{GROUP}", rules=rules, codec=codec, timeout_seconds=5
    )
    webhooks.mutating(
        DEFAULT_PATH, default, name=f"mwebsite.{GROUP}", rules=rules, codec=codec, timeout_seconds=5
    )
    webhooks.converter(CONVERT_PATH, convert, crd=CRD_NAME, codec=ModelCodec(WebsiteV1Alpha1, Website))
    return webhooks


def website_crd(webhooks: Webhooks, client_config: WebhookClientConfig) -> dict[str, Any]:
    """The Website CRD with both versions, converting through ``webhooks``' converter."""
    return with_conversion(crd(WebsiteV1Alpha1, Website), webhooks, client=client_config)


async def install(client: Client, webhooks: Webhooks, client_config: WebhookClientConfig) -> None:
    """Create (or replace) the CRD and both webhook configurations, reaching the webhook server
    through ``client_config``. Objects are served once the CRD is established; the API server
    may take a moment to start calling new webhook configurations."""
    objects = [
        (CRDS, website_crd(webhooks, client_config)),
        (
            VALIDATING_CONFIGS,
            validating_webhook_configuration(webhooks, name=CONFIGURATION_NAME, client=client_config),
        ),
        (
            MUTATING_CONFIGS,
            mutating_webhook_configuration(webhooks, name=CONFIGURATION_NAME, client=client_config),
        ),
    ]
    for resource, obj in objects:
        api = Api(client, resource)
        try:
            await api.create(obj)
        except ApiError as err:
            if err.code != 409:
                raise
            current = await api.get(obj["metadata"]["name"])
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await api.replace(obj["metadata"]["name"], obj)
