"""The Helm chart's webhook objects: Service, serving certificate (cert-manager or a provided Secret),
the Deployment's flags and mount, and webhook configurations and CRD conversion stanzas equal to
what ``kube_runtime.webhooks.config`` generates for the same registrations."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from examples.typed_operator.resources import Website, WebsiteV1Alpha1
from examples.typed_operator.webhooks import CONVERT_PATH, CRD_NAME, build_webhooks
from kube_runtime.resources import crd
from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow
from kube_runtime.webhooks.config import (
    WebhookClientConfig,
    crd_conversion,
    mutating_webhook_configuration,
    validating_webhook_configuration,
    with_conversion,
)
from kube_runtime.webhooks.server import WebhookOptions
from tests.ops.test_chart import CHART, FULLNAME, NAMESPACE, REPO, container, helm, render

VALUES = Path(__file__).parent / "values" / "webhooks-cert-manager.yaml"
CERT_MANAGER = ["-f", str(VALUES)]
CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n...").decode()
PROVIDED_SECRET = [
    "-f", str(VALUES),
    "--set", "webhooks.tls.certManager.enabled=false",
    "--set", "webhooks.tls.secretName=my-webhook-tls",
    "--set", f"webhooks.tls.caBundle={CA}",
]  # fmt: skip


async def always(request: AdmissionRequest) -> Verdict:
    return allow()


def same_registrations() -> Webhooks:
    """What the controller would register for tests/ops/values/webhooks-cert-manager.yaml."""
    hooks = Webhooks(registry=CollectorRegistry())
    rule = WebhookRule(("example.com",), ("*",), ("widgets",))
    hooks.validating("/validate", always, name="vwidget.example.com", rules=[rule], timeout_seconds=5)
    hooks.mutating("/mutate", always, name="mwidget.example.com", rules=[rule], failure_policy="Ignore")
    return hooks


def webhook_entries(objects: dict[tuple[str, str], dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = objects[(kind, FULLNAME)]["webhooks"]
    return found


def test_cert_manager_render_serves_webhooks_on_a_service_with_an_injected_ca() -> None:
    objects = render(*CERT_MANAGER)
    service = objects[("Service", f"{FULLNAME}-webhook")]["spec"]
    assert service["ports"] == [
        {"name": "webhook", "port": 443, "targetPort": "webhook", "protocol": "TCP", "appProtocol": "https"}
    ]
    certificate = objects[("Certificate", f"{FULLNAME}-webhook")]["spec"]
    assert certificate["secretName"] == f"{FULLNAME}-webhook-tls"
    assert f"{FULLNAME}-webhook.{NAMESPACE}.svc" in certificate["dnsNames"]
    assert certificate["issuerRef"] == {"kind": "Issuer", "name": f"{FULLNAME}-selfsigned"}
    assert objects[("Issuer", f"{FULLNAME}-selfsigned")]["spec"] == {"selfSigned": {}}
    c = container(objects)
    options = WebhookOptions()
    assert f"--webhook-cert-file={options.cert_file}" in c["args"]
    assert f"--webhook-key-file={options.key_file}" in c["args"]
    assert "--webhook-bind-address=:9443" in c["args"]
    assert {"name": "webhook", "containerPort": 9443, "protocol": "TCP"} in c["ports"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "webhook-tls")
    assert mount == {
        "name": "webhook-tls",
        "mountPath": str(Path(options.cert_file).parent),
        "readOnly": True,
    }
    volumes = objects[("Deployment", FULLNAME)]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": f"{FULLNAME}-webhook-tls"}} in volumes
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        annotations = objects[(kind, FULLNAME)]["metadata"]["annotations"]
        assert annotations == {"cert-manager.io/inject-ca-from": f"{NAMESPACE}/{FULLNAME}-webhook"}


def test_rendered_configurations_equal_the_generated_ones() -> None:
    """The chart and kube_runtime.webhooks.config agree field for field on the same registrations."""
    objects = render(*PROVIDED_SECRET)
    client = WebhookClientConfig(
        service_name=f"{FULLNAME}-webhook", service_namespace=NAMESPACE, ca_bundle=base64.b64decode(CA)
    )
    hooks = same_registrations()
    generated = {
        "ValidatingWebhookConfiguration": validating_webhook_configuration(
            hooks, name=FULLNAME, client=client
        ),
        "MutatingWebhookConfiguration": mutating_webhook_configuration(hooks, name=FULLNAME, client=client),
    }
    for kind, expected in generated.items():
        assert webhook_entries(objects, kind) == expected["webhooks"], kind
        assert "annotations" not in objects[(kind, FULLNAME)]["metadata"]
    assert ("Certificate", f"{FULLNAME}-webhook") not in objects
    assert ("Issuer", f"{FULLNAME}-selfsigned") not in objects
    volumes = objects[("Deployment", FULLNAME)]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": "my-webhook-tls"}} in volumes


def test_metrics_and_webhooks_share_one_self_signed_issuer() -> None:
    objects = render(
        *CERT_MANAGER, "--set", "metrics.secure=true", "--set", "metrics.tls.certManager.enabled=true"
    )
    assert ("Certificate", f"{FULLNAME}-metrics") in objects
    assert ("Certificate", f"{FULLNAME}-webhook") in objects
    assert [key for key in objects if key[0] == "Issuer"] == [("Issuer", f"{FULLNAME}-selfsigned")]


def test_helm_lint_passes_with_webhooks() -> None:
    proc = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *CERT_MANAGER)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "webhooks.enabled=true"], "webhooks.enabled=true needs a serving certificate"),
        (
            [*PROVIDED_SECRET, "--set", "webhooks.tls.caBundle="],
            "webhooks.tls.secretName needs webhooks.tls.caBundle",
        ),
        ([*CERT_MANAGER, "--set", "webhooks.validating[0].name=short"], "at '/webhooks/validating/0/name'"),
        (
            [*CERT_MANAGER, "--set", "webhooks.validating[0].timeoutSeconds=31"],
            "at '/webhooks/validating/0/timeoutSeconds'",
        ),
        ([*CERT_MANAGER, "--set", "webhooks.failurePolicy=Sometimes"], "at '/webhooks/failurePolicy'"),
    ],
    ids=["no-certificate", "secret-without-ca", "unqualified-name", "timeout-over-30", "bad-failure-policy"],
)
def test_unsafe_webhook_values_are_refused(values: list[str], message: str) -> None:
    proc = helm("template", "demo", str(CHART), "--namespace", NAMESPACE, *values)
    assert proc.returncode != 0
    assert message in proc.stderr


def typed_operator_chart(tmp_path: Path) -> Path:
    """The chart with the typed operator's two-version Website CRD in files/, as its CLI prints it."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    generated = subprocess.run(
        [
            sys.executable, "-m", "kube_runtime", "crd",
            "examples.typed_operator.resources:WebsiteV1Alpha1", "examples.typed_operator.resources:Website",
        ],
        capture_output=True, text=True, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout  # fmt: skip
    (chart / "files" / "crds").mkdir()
    (chart / "files" / "crds" / f"{CRD_NAME}.yaml").write_text(generated)
    return chart


CONVERSION = [
    "--set", f"webhooks.conversion[0].crd={CRD_NAME}",
    "--set", f"webhooks.conversion[0].path={CONVERT_PATH}",
    "--set", f"webhooks.conversion[0].manifest=files/crds/{CRD_NAME}.yaml",
]  # fmt: skip


def render_chart(chart: Path, *values: str) -> dict[tuple[str, str], dict[str, Any]]:
    proc = helm("template", "demo", str(chart), "--namespace", NAMESPACE, *values)
    assert proc.returncode == 0, proc.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(proc.stdout) if d}


def test_a_converting_crd_gets_the_generated_conversion_stanza(tmp_path: Path) -> None:
    """The CRD rendered from files/ equals kube_runtime.webhooks.config.with_conversion of the same
    registrations, through the webhook Service: with the provided CA, or annotated for cert-manager's
    CA injector."""
    chart = typed_operator_chart(tmp_path)
    hooks = build_webhooks(Webhooks(registry=CollectorRegistry()))
    client = WebhookClientConfig(
        service_name=f"{FULLNAME}-webhook", service_namespace=NAMESPACE, ca_bundle=base64.b64decode(CA)
    )
    provided = render_chart(chart, *PROVIDED_SECRET, *CONVERSION)
    rendered = provided[("CustomResourceDefinition", CRD_NAME)]
    assert rendered == with_conversion(crd(WebsiteV1Alpha1, Website), hooks, client=client)
    assert [v["name"] for v in rendered["spec"]["versions"]] == ["v1alpha1", "v1"]

    injected = render_chart(chart, *CERT_MANAGER, *CONVERSION)[("CustomResourceDefinition", CRD_NAME)]
    assert injected["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{FULLNAME}-webhook"
    }
    assert "caBundle" not in injected["spec"]["conversion"]["webhook"]["clientConfig"]
    without_ca = WebhookClientConfig(service_name=f"{FULLNAME}-webhook", service_namespace=NAMESPACE)
    assert injected["spec"]["conversion"] == crd_conversion(hooks, CRD_NAME, client=without_ca)
    # no conversion configured: no CRD rendered from files/
    assert ("CustomResourceDefinition", CRD_NAME) not in render_chart(chart, *CERT_MANAGER)


def test_a_conversion_entry_must_name_a_crd_manifest_of_the_chart(tmp_path: Path) -> None:
    chart = typed_operator_chart(tmp_path)
    wrong_name = [*CONVERSION, "--set", "webhooks.conversion[0].crd=gadgets.example.com"]
    proc = helm("template", "demo", str(chart), "--namespace", NAMESPACE, *CERT_MANAGER, *wrong_name)
    assert proc.returncode != 0
    assert f"defines {CRD_NAME}, not gadgets.example.com" in proc.stderr
    missing = [*CONVERSION, "--set", "webhooks.conversion[0].manifest=files/kube-runtime.rules.yaml"]
    proc = helm("template", "demo", str(chart), "--namespace", NAMESPACE, *CERT_MANAGER, *missing)
    assert proc.returncode != 0
    assert "files/kube-runtime.rules.yaml is not a CustomResourceDefinition manifest" in proc.stderr
