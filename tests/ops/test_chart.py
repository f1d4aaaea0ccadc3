"""The Helm chart: `helm lint` and `helm template` with real helm, and the rendered objects' contents.

helm is looked up as $HELM, then on PATH, then where scripts/install-helm.sh puts it
(~/.cache/kube-runtime/helm/bin/helm); tests that need it fail, naming it, when none is found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kube-runtime-controller"
RULES = REPO / "monitoring" / "rules" / "kube-runtime.rules.yaml"
DASHBOARD = REPO / "monitoring" / "dashboards" / "kube-runtime.json"
NAMESPACE = "ops"
FULLNAME = "demo-kube-runtime-controller"

SECURE_HA = [
    "--set", "replicaCount=2",
    "--set", "leaderElection.enabled=true",
    "--set", "metrics.secure=true",
    "--set", "metrics.tls.certManager.enabled=true",
]  # fmt: skip
# Verbs that let a controller escalate or read other workloads' secrets; none of its rules may carry them.
DANGEROUS_VERBS = {"*", "escalate", "bind", "impersonate"}

Objects = dict[tuple[str, str], dict[str, Any]]


def helm_binary() -> str:
    candidates = [
        os.environ.get("HELM"),
        shutil.which("helm"),
        str(Path.home() / ".cache" / "kube-runtime" / "helm" / "bin" / "helm"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("helm binary not found ($HELM, PATH, or scripts/install-helm.sh's cache)", pytrace=False)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False)


def render(*values: str) -> Objects:
    proc = helm("template", "demo", str(CHART), "--namespace", NAMESPACE, *values)
    assert proc.returncode == 0, proc.stderr
    objects: Objects = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if doc:
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"rendered twice: {key}"
            objects[key] = doc
    return objects


def container(objects: Objects) -> dict[str, Any]:
    containers = objects[("Deployment", FULLNAME)]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def env(objects: Objects) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container(objects)["env"]}


def rules_of(objects: Objects, kind: str, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = objects[(kind, name)]["rules"]
    return found


def all_rbac_rules(objects: Objects) -> list[dict[str, Any]]:
    return [
        rule for (kind, _), doc in objects.items() if kind in ("Role", "ClusterRole") for rule in doc["rules"]
    ]


# --------------------------------------------------------------------------- single source of truth


def test_chart_files_are_the_monitoring_files() -> None:
    """The PrometheusRule and dashboard ConfigMap render from monitoring/, not from copies."""
    assert (CHART / "files" / "kube-runtime.rules.yaml").read_bytes() == RULES.read_bytes()
    assert (CHART / "files" / "kube-runtime.json").read_bytes() == DASHBOARD.read_bytes()


def test_rendered_rules_and_dashboard_equal_the_source_files() -> None:
    objects = render()
    rule = objects[("PrometheusRule", FULLNAME)]
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    dashboard = objects[("ConfigMap", f"{FULLNAME}-dashboard")]
    assert dashboard["data"]["kube-runtime.json"] == DASHBOARD.read_text().rstrip("\n")
    assert json.loads(dashboard["data"]["kube-runtime.json"])["uid"] == "kube-runtime"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_chart_crd_is_the_example_crd() -> None:
    """crds/ holds the configmapgen example's CRD, so the controller needs no CRD permissions."""
    from examples.configmapgen.crd import CRD

    chart_crd = yaml.safe_load((CHART / "crds" / "configmapgenerators.nullable.se.yaml").read_text())
    assert chart_crd == CRD


def test_chart_takes_crds_generated_from_models(tmp_path: Path) -> None:
    """`python -m kube_runtime crd module:Model` output dropped into a chart's crds/ is what helm
    installs: the typed operator's Website CRD comes out of `helm template --include-crds` as
    generated."""
    from examples.typed_operator.resources import Website
    from kube_runtime.resources import crd

    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    generated = subprocess.run(
        [sys.executable, "-m", "kube_runtime", "crd", "examples.typed_operator.resources:Website"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    (chart / "crds" / "websites.yaml").write_text(generated)
    proc = helm("template", "demo", str(chart), "--namespace", NAMESPACE, "--include-crds")
    assert proc.returncode == 0, proc.stderr
    crds = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "CustomResourceDefinition"]
    assert [d for d in crds if d["spec"]["names"]["kind"] == "Website"] == [crd(Website)]


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize("values", [[], SECURE_HA], ids=["defaults", "secure-metrics-and-leader-election"])
def test_helm_lint_passes(values: list[str]) -> None:
    proc = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout


# --------------------------------------------------------------------------- default render


def test_default_render_has_the_expected_objects() -> None:
    assert set(render()) == {
        ("ServiceAccount", FULLNAME),
        ("ClusterRole", FULLNAME),
        ("ClusterRoleBinding", FULLNAME),
        ("Deployment", FULLNAME),
        ("Service", f"{FULLNAME}-metrics"),
        ("ServiceMonitor", FULLNAME),
        ("PrometheusRule", FULLNAME),
        ("ConfigMap", f"{FULLNAME}-dashboard"),
    }


def test_probes_hit_readyz_and_livez_on_the_health_port() -> None:
    c = container(render())
    ports = {port["name"]: port["containerPort"] for port in c["ports"]}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert f"--health-probe-bind-address=:{ports['health']}" in c["args"]
    assert f"--metrics-bind-address=:{ports['metrics']}" in c["args"]


def test_container_is_locked_down_and_has_resources() -> None:
    objects = render()
    pod = objects[("Deployment", FULLNAME)]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(objects)
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert "memory" in c["resources"]["limits"]
    # The only writable path under the read-only root is an emptyDir on /tmp.
    assert [m["mountPath"] for m in c["volumeMounts"]] == ["/tmp"]


def test_without_leader_election_pods_never_overlap() -> None:
    objects = render()
    assert objects[("Deployment", FULLNAME)]["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(arg.startswith("--leader-elect") for arg in container(objects)["args"])


def test_default_rbac_is_least_privilege() -> None:
    objects = render()
    for rule in all_rbac_rules(objects):
        assert not DANGEROUS_VERBS & set(rule["verbs"]), rule
        assert "*" not in rule.get("resources", []), rule
        assert "*" not in rule.get("apiGroups", []), rule
        assert "secrets" not in rule.get("resources", []), rule
    resources = {res for rule in all_rbac_rules(objects) for res in rule.get("resources", [])}
    # No leases without leader election, no review APIs without secure metrics.
    assert resources == {"configmapgenerators", "configmaps", "events"}
    verbs = {res: set(rule["verbs"]) for rule in all_rbac_rules(objects) for res in rule["resources"]}
    assert verbs["configmapgenerators"] == {"get", "list", "watch", "patch"}
    assert verbs["configmaps"] == {"get", "list", "watch", "create", "patch", "delete"}
    events = [rule for rule in all_rbac_rules(objects) if rule.get("resources") == ["events"]]
    assert events == [{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}]
    binding = objects[("ClusterRoleBinding", FULLNAME)]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert binding["roleRef"]["name"] == FULLNAME


def test_service_and_servicemonitor_reach_the_metrics_port_as_job_kube_runtime() -> None:
    objects = render()
    pod_labels = objects[("Deployment", FULLNAME)]["spec"]["template"]["metadata"]["labels"]
    service = objects[("Service", f"{FULLNAME}-metrics")]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = objects[("ServiceMonitor", FULLNAME)]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["endpoints"][0]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    assert "scheme" not in endpoint
    assert {"action": "replace", "targetLabel": "job", "replacement": "kube-runtime"} in endpoint[
        "relabelings"
    ]


def test_logging_and_tracing_values_reach_the_environment() -> None:
    defaults = env(render())
    assert defaults["KUBE_RUNTIME_LOG_FORMAT"] == "json"
    assert defaults["OTEL_TRACES_EXPORTER"] == "none"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in defaults
    custom = env(
        render(
            "--set", "logging.level=debug",
            "--set", "logging.format=console",
            "--set", "tracing.otlpEndpoint=http://otel-collector:4318",
            "--set", "controller.concurrency=8",
        )
    )  # fmt: skip
    assert custom["KUBE_RUNTIME_LOG"] == "debug"
    assert custom["KUBE_RUNTIME_LOG_FORMAT"] == "console"
    assert custom["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert "OTEL_TRACES_EXPORTER" not in custom


def test_concurrency_value_reaches_the_arguments() -> None:
    assert "--concurrency=8" in container(render("--set", "controller.concurrency=8"))["args"]


def test_graceful_shutdown_timeout_reaches_the_arguments_below_the_grace_period() -> None:
    default = render()
    assert "--graceful-shutdown-timeout=25" in container(default)["args"]
    pod = default[("Deployment", FULLNAME)]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    custom = render(
        "--set", "controller.gracefulShutdownTimeout=50", "--set", "terminationGracePeriodSeconds=60"
    )
    assert "--graceful-shutdown-timeout=50" in container(custom)["args"]
    assert (
        "--graceful-shutdown-timeout=7.5"
        in container(render("--set-json", "controller.gracefulShutdownTimeout=7.5"))["args"]
    )


def test_reconcile_timeout_reaches_the_arguments() -> None:
    assert "--reconcile-timeout=0" in container(render())["args"]  # none, as controller-runtime
    assert "--reconcile-timeout=120" in container(render("--set", "controller.reconcileTimeout=120"))["args"]


def test_monitoring_objects_can_be_turned_off() -> None:
    objects = render(
        "--set", "serviceMonitor.enabled=false",
        "--set", "prometheusRule.enabled=false",
        "--set", "grafanaDashboard.enabled=false",
    )  # fmt: skip
    assert {kind for kind, _ in objects} == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    }


# --------------------------------------------------------------------------- secure metrics + leader election


def test_leader_election_grants_one_lease_and_rolls_without_downtime() -> None:
    objects = render(*SECURE_HA)
    lease = f"{FULLNAME}-leader"
    role = objects[("Role", f"{FULLNAME}-leader-election")]
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease],
            "verbs": ["get", "update"],
        },
    ]
    binding = objects[("RoleBinding", f"{FULLNAME}-leader-election")]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": f"{FULLNAME}-leader-election",
    }
    deployment = objects[("Deployment", FULLNAME)]["spec"]
    assert deployment["replicas"] == 2
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    args = container(objects)["args"]
    assert "--leader-elect" in args
    assert f"--leader-election-id={lease}" in args
    assert f"--leader-election-namespace={NAMESPACE}" in args
    assert "--leader-election-warmup" not in args
    warm = container(render(*SECURE_HA, "--set", "leaderElection.warmup=true"))["args"]
    assert "--leader-election-warmup" in warm


def test_secure_metrics_grant_token_and_access_reviews_only() -> None:
    objects = render(*SECURE_HA)
    assert rules_of(objects, "ClusterRole", f"{FULLNAME}-metrics-auth") == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]
    binding = objects[("ClusterRoleBinding", f"{FULLNAME}-metrics-auth")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert rules_of(objects, "ClusterRole", f"{FULLNAME}-metrics-reader") == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
    ]
    for rule in all_rbac_rules(objects):
        assert not DANGEROUS_VERBS & set(rule["verbs"]), rule


def test_secure_metrics_serve_tls_and_are_scraped_with_a_bearer_token() -> None:
    objects = render(*SECURE_HA)
    c = container(objects)
    assert "--metrics-secure" in c["args"]
    assert "--metrics-cert-file=/etc/kube-runtime/metrics-tls/tls.crt" in c["args"]
    assert "/etc/kube-runtime/metrics-tls" in [m["mountPath"] for m in c["volumeMounts"]]
    volumes = objects[("Deployment", FULLNAME)]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "metrics-tls", "secret": {"secretName": f"{FULLNAME}-metrics-tls"}} in volumes
    certificate = objects[("Certificate", f"{FULLNAME}-metrics")]["spec"]
    assert certificate["secretName"] == f"{FULLNAME}-metrics-tls"
    assert f"{FULLNAME}-metrics.{NAMESPACE}.svc" in certificate["dnsNames"]
    assert ("Issuer", f"{FULLNAME}-selfsigned") in objects
    endpoint = objects[("ServiceMonitor", FULLNAME)]["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"


def test_watching_one_namespace_uses_a_role_there() -> None:
    objects = render("--set", "controller.watchNamespace=apps")
    assert ("ClusterRole", FULLNAME) not in objects
    assert objects[("Role", FULLNAME)]["metadata"]["namespace"] == "apps"
    assert objects[("RoleBinding", FULLNAME)]["metadata"]["namespace"] == "apps"
    assert "--namespace=apps" in container(objects)["args"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=2"], "replicaCount > 1 needs leaderElection.enabled=true"),
        (["--set", "metrics.secure=true"], "metrics.secure=true needs a serving certificate"),
        (["--set", "logging.format=xml"], "at '/logging/format'"),
        (["--set", "controller.concurrency=-1"], "at '/controller/concurrency'"),
        (
            ["--set", "controller.gracefulShutdownTimeout=30"],
            "controller.gracefulShutdownTimeout (30) must be below terminationGracePeriodSeconds (30)",
        ),
        (
            [
                "--set",
                "rbac.rules[0].apiGroups[0]=",
                "--set",
                "rbac.rules[0].resources[0]=*",
                "--set",
                "rbac.rules[0].verbs[0]=get",
            ],
            "at '/rbac/rules/0/resources/0'",
        ),
    ],
    ids=[
        "replicas-without-leader-election",
        "secure-metrics-without-certificate",
        "bad-log-format",
        "negative-concurrency",
        "shutdown-timeout-not-below-grace-period",
        "wildcard-rbac",
    ],
)
def test_unsafe_values_are_refused(values: list[str], message: str) -> None:
    proc = helm("template", "demo", str(CHART), "--namespace", NAMESPACE, *values)
    assert proc.returncode != 0
    assert message in proc.stderr
