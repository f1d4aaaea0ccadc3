"""API server configuration generated from the registered webhooks, so what is served and what
the API server calls cannot drift apart.

* :func:`validating_webhook_configuration` / :func:`mutating_webhook_configuration`: one
  ``admissionregistration.k8s.io/v1`` object holding every registered webhook of that kind (name,
  rules, ``failurePolicy``, ``sideEffects``, ``matchPolicy``, ``timeoutSeconds``, selectors,
  ``admissionReviewVersions: [v1]``);
* :func:`crd_conversion` : the ``spec.conversion`` stanza of a CRD whose converter is registered,
  and :func:`with_conversion` a copy of a CRD manifest with it set.

Each webhook is reached through a :class:`WebhookClientConfig`: a Service (in-cluster) or a URL (a
webhook outside the cluster, or a loopback URL in tests); ``ca_bundle`` is the PEM bundle
(base64-encoded here) that verifies the serving certificate. With cert-manager's CA injector, leave
``ca_bundle`` empty and annotate the object instead (the Helm chart does).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kube_runtime.webhooks.handlers import AdmissionWebhook
from kube_runtime.webhooks.registry import Webhooks

__all__ = [
    "WebhookClientConfig",
    "crd_conversion",
    "mutating_webhook_configuration",
    "validating_webhook_configuration",
    "with_conversion",
]


@dataclass(frozen=True)
class WebhookClientConfig:
    """How the API server reaches the webhook server: ``url`` (``https://host:port``, no path) or
    the Service ``service_namespace``/``service_name`` on ``service_port``; ``ca_bundle`` is PEM."""

    url: str | None = None
    service_name: str | None = None
    service_namespace: str | None = None
    service_port: int = 443
    ca_bundle: bytes | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.service_name is None):
            raise ValueError("give exactly one of url and service_name")
        if self.service_name is not None and not self.service_namespace:
            raise ValueError("a service needs service_namespace")
        if self.url is not None and not self.url.startswith("https://"):
            raise ValueError(f"webhook URLs must be https, got {self.url!r}")

    def for_path(self, path: str) -> dict[str, Any]:
        """The ``clientConfig`` of the webhook served at ``path``."""
        config: dict[str, Any]
        if self.url is not None:
            config = {"url": self.url.rstrip("/") + path}
        else:
            config = {
                "service": {
                    "namespace": self.service_namespace,
                    "name": self.service_name,
                    "path": path,
                    "port": self.service_port,
                }
            }
        if self.ca_bundle:
            config["caBundle"] = base64.b64encode(self.ca_bundle).decode()
        return config


def _webhook(hook: AdmissionWebhook, client: WebhookClientConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": hook.name,
        "clientConfig": client.for_path(hook.path),
        "rules": [rule.to_dict() for rule in hook.rules],
        "failurePolicy": hook.failure_policy,
        "sideEffects": hook.side_effects,
        "matchPolicy": hook.match_policy,
        "timeoutSeconds": hook.timeout_seconds,
        "admissionReviewVersions": ["v1"],
    }
    if hook.namespace_selector is not None:
        entry["namespaceSelector"] = hook.namespace_selector
    if hook.object_selector is not None:
        entry["objectSelector"] = hook.object_selector
    if hook.kind == "mutating":
        entry["reinvocationPolicy"] = "Never"
    return entry


def _configuration(
    webhooks: Webhooks, kind: str, name: str, client: WebhookClientConfig, labels: Mapping[str, str] | None
) -> dict[str, Any]:
    hooks = [h for h in webhooks.admission if h.kind == kind]
    if not hooks:
        raise ValueError(f"no {kind} webhooks are registered")
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": f"{kind.capitalize()}WebhookConfiguration",
        "metadata": metadata,
        "webhooks": [_webhook(h, client) for h in hooks],
    }


def validating_webhook_configuration(
    webhooks: Webhooks, *, name: str, client: WebhookClientConfig, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``ValidatingWebhookConfiguration`` named ``name`` for every registered validator.
    Raises ``ValueError`` when none is registered."""
    return _configuration(webhooks, "validating", name, client, labels)


def mutating_webhook_configuration(
    webhooks: Webhooks, *, name: str, client: WebhookClientConfig, labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``MutatingWebhookConfiguration`` named ``name`` for every registered mutator.
    Raises ``ValueError`` when none is registered."""
    return _configuration(webhooks, "mutating", name, client, labels)


def crd_conversion(webhooks: Webhooks, crd: str, *, client: WebhookClientConfig) -> dict[str, Any]:
    """``spec.conversion`` of the CRD named ``crd`` (``<plural>.<group>``): strategy ``Webhook``
    pointing at its registered converter. Raises ``KeyError`` when none is registered for it."""
    hook = next((h for h in webhooks.conversion if h.crd == crd), None)
    if hook is None:
        raise KeyError(f"no converter is registered for {crd!r}")
    return {
        "strategy": "Webhook",
        "webhook": {"clientConfig": client.for_path(hook.path), "conversionReviewVersions": ["v1"]},
    }


def with_conversion(
    crd_manifest: Mapping[str, Any], webhooks: Webhooks, *, client: WebhookClientConfig
) -> dict[str, Any]:
    """A copy of ``crd_manifest`` with ``spec.conversion`` from its registered converter."""
    manifest = copy.deepcopy(dict(crd_manifest))
    manifest["spec"]["conversion"] = crd_conversion(webhooks, manifest["metadata"]["name"], client=client)
    return manifest
