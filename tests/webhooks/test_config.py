"""Configurations generated from the registered webhooks: every field the API server reads."""

from __future__ import annotations

import base64

import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow
from kube_runtime.webhooks.config import (
    WebhookClientConfig,
    crd_conversion,
    mutating_webhook_configuration,
    validating_webhook_configuration,
    with_conversion,
)


async def always(request: AdmissionRequest) -> Verdict:
    return allow()


async def identity(obj: dict[str, object], desired: str) -> dict[str, object]:
    return obj


def registered() -> Webhooks:
    hooks = Webhooks(registry=CollectorRegistry())
    rule = WebhookRule(("apps",), ("v1",), ("deployments", "deployments/scale"), ("CREATE",), "Namespaced")
    hooks.validating(
        "/validate-deployments",
        always,
        name="vdeploy.example.com",
        rules=[rule],
        failure_policy="Ignore",
        side_effects="NoneOnDryRun",
        match_policy="Exact",
        timeout_seconds=5,
        namespace_selector={"matchLabels": {"webhooks": "on"}},
    )
    hooks.mutating("/mutate-deployments", always, name="mdeploy.example.com", rules=[rule])
    hooks.converter("/convert-widgets", identity, crd="widgets.example.com")
    return hooks


def test_validating_configuration_with_a_service_client() -> None:
    client = WebhookClientConfig(service_name="op-webhooks", service_namespace="ops", ca_bundle=b"PEM")
    config = validating_webhook_configuration(registered(), name="op", client=client, labels={"app": "op"})
    assert config == {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "op", "labels": {"app": "op"}},
        "webhooks": [
            {
                "name": "vdeploy.example.com",
                "clientConfig": {
                    "service": {
                        "namespace": "ops",
                        "name": "op-webhooks",
                        "path": "/validate-deployments",
                        "port": 443,
                    },
                    "caBundle": base64.b64encode(b"PEM").decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "resources": ["deployments", "deployments/scale"],
                        "operations": ["CREATE"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "NoneOnDryRun",
                "matchPolicy": "Exact",
                "timeoutSeconds": 5,
                "admissionReviewVersions": ["v1"],
                "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
            }
        ],
    }


def test_mutating_configuration_with_a_url_client() -> None:
    config = mutating_webhook_configuration(
        registered(), name="op", client=WebhookClientConfig(url="https://127.0.0.1:9443/")
    )
    (hook,) = config["webhooks"]
    assert config["kind"] == "MutatingWebhookConfiguration"
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:9443/mutate-deployments"}
    assert (hook["failurePolicy"], hook["sideEffects"], hook["matchPolicy"], hook["timeoutSeconds"]) == (
        "Fail", "None", "Equivalent", 10,
    )  # fmt: skip
    assert hook["reinvocationPolicy"] == "Never"


def test_crd_conversion_stanza() -> None:
    hooks = registered()
    client = WebhookClientConfig(url="https://h:1", ca_bundle=b"CA")
    assert crd_conversion(hooks, "widgets.example.com", client=client) == {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {
                "url": "https://h:1/convert-widgets",
                "caBundle": base64.b64encode(b"CA").decode(),
            },
            "conversionReviewVersions": ["v1"],
        },
    }
    manifest = {"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com"}}
    converted = with_conversion(manifest, hooks, client=client)
    assert converted["spec"]["conversion"]["strategy"] == "Webhook"
    assert "conversion" not in manifest["spec"]
    with pytest.raises(KeyError, match="gadgets"):
        crd_conversion(hooks, "gadgets.example.com", client=client)


def test_client_config_and_missing_webhooks_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        WebhookClientConfig()
    with pytest.raises(ValueError, match="https"):
        WebhookClientConfig(url="http://insecure")
    with pytest.raises(ValueError, match="service_namespace"):
        WebhookClientConfig(service_name="svc")
    with pytest.raises(ValueError, match="no validating webhooks"):
        validating_webhook_configuration(
            Webhooks(registry=CollectorRegistry()), name="x", client=WebhookClientConfig(url="https://h")
        )


def test_webhook_options_are_command_line_flags() -> None:
    import argparse

    from kube_runtime.webhooks.server import WebhookOptions

    parser = argparse.ArgumentParser()
    WebhookOptions.add_arguments(parser)
    assert WebhookOptions.from_arguments(parser.parse_args([])) == WebhookOptions()
    args = parser.parse_args(
        [
            "--webhook-bind-address=127.0.0.1:0",
            "--webhook-cert-file=/c/tls.crt",
            "--webhook-key-file=/c/tls.key",
        ]
    )
    assert WebhookOptions.from_arguments(args) == WebhookOptions("127.0.0.1:0", "/c/tls.crt", "/c/tls.key")
