"""kubectl, a client nobody here wrote, against both servers: the same commands, the same outcomes.

Reuses the ``Kubectl`` runner of tests/testing/test_kubectl.py (own cache and HOME per test). Both
servers are asked for the same things; the assertions are on what any cluster must answer, not on
server-specific text such as timestamps or resourceVersions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.testing.test_kubectl import Kubectl
from tests.witnesses.conftest import Crd, Target, served_crd

pytestmark = pytest.mark.kubectl

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}, labels: {{app: demo}}}}
data: {{mode: {mode}}}
"""


TYPED_SCHEMA = {
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {"size": {"type": "string"}}}},
}


@pytest.fixture
def typed_crd(target: Target) -> Iterator[Crd]:
    yield from served_crd(target, schema=TYPED_SCHEMA)


@pytest.fixture
def kubectl(target: Target, tmp_path: Path) -> Kubectl:
    return Kubectl(target.kubeconfig, tmp_path / "cache")


async def test_create_apply_patch_get(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(CONFIGMAP.format(ns=namespace, mode="fast"))
    assert "configmap/settings created" in await kubectl("create", "-f", str(manifest))
    assert "already exists" in await kubectl("create", "-f", str(manifest), check=False)
    manifest.write_text(CONFIGMAP.format(ns=namespace, mode="slow"))
    assert "configmap/settings configured" in await kubectl("apply", "-f", str(manifest))
    assert "configmap/settings unchanged" in await kubectl("apply", "-f", str(manifest))
    assert await kubectl("apply", "--server-side", "-f", str(manifest))
    get = ("get", "configmap", "settings", "-n", namespace, "-o")
    assert await kubectl(*get, "jsonpath={.data.mode}") == "slow"
    await kubectl(
        "patch", "configmap", "settings", "-n", namespace, "--type=merge", "-p", '{"data":{"a":"1"}}'
    )
    await kubectl("patch", "configmap", "settings", "-n", namespace, "-p", '{"data":{"b":"2"}}')
    ops = '[{"op":"remove","path":"/data/mode"}]'
    await kubectl("patch", "configmap", "settings", "-n", namespace, "--type=json", "-p", ops)
    assert json.loads(await kubectl(*get, "jsonpath={.data}")) == {"a": "1", "b": "2"}
    listed = await kubectl("get", "configmaps", "-n", namespace, "-l", "app=demo", "-o", "name")
    assert listed.split() == ["configmap/settings"]
    raw = json.loads(await kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/configmaps/settings"))
    assert (raw["kind"], raw["data"]) == ("ConfigMap", {"a": "1", "b": "2"})
    missing = await kubectl("get", "configmap", "nope", "-n", namespace, check=False)
    assert 'Error from server (NotFound): configmaps "nope" not found' in missing


async def test_get_watch(kubectl: Kubectl, namespace: str) -> None:
    await kubectl("create", "configmap", "watched", "-n", namespace, "--from-literal=k=1")
    template = '{.type} {.object.metadata.name} {.object.data.k}{"\\n"}'
    argv = kubectl.argv(
        "get",
        "configmap",
        "watched",
        "-n",
        namespace,
        "-w",
        "--output-watch-events",
        "-o",
        f"jsonpath={template}",
    )
    lines: list[str] = []
    async with await anyio.open_process(argv, env=kubectl.env) as process:
        assert process.stdout is not None
        buffer = b""
        with anyio.fail_after(30):
            while len(lines) < 3:
                buffer += await process.stdout.receive()
                *done, rest = buffer.split(b"\n")
                buffer = rest
                for line in done:
                    lines.append(line.decode().strip())
                    if len(lines) == 1:
                        await kubectl(
                            "patch", "configmap", "watched", "-n", namespace, "-p", '{"data":{"k":"2"}}'
                        )
                    elif len(lines) == 2:
                        await kubectl("delete", "configmap", "watched", "-n", namespace)
        process.terminate()
    assert lines == ["ADDED watched 1", "MODIFIED watched 2", "DELETED watched 2"]


async def test_delete_held_by_a_finalizer(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "held.yaml"
    manifest.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: held, namespace: {namespace}, "
        "finalizers: [example.com/hold]}\n"
    )
    await kubectl("create", "-f", str(manifest))
    assert 'configmap "held" deleted' in await kubectl(
        "delete", "configmap", "held", "-n", namespace, "--wait=false"
    )
    get = ("get", "configmap", "held", "-n", namespace, "-o")
    assert await kubectl(*get, "jsonpath={.metadata.deletionTimestamp}")
    assert await kubectl(*get, "jsonpath={.metadata.finalizers}") == '["example.com/hold"]'
    await kubectl(
        "patch",
        "configmap",
        "held",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    assert "NotFound" in await kubectl("get", "configmap", "held", "-n", namespace, check=False)


async def test_create_and_scale_a_deployment(kubectl: Kubectl, namespace: str) -> None:
    # kubectl's typed client sends this Deployment as protobuf
    image = "--image=registry.invalid/none:1"
    out = await kubectl("create", "deployment", "web", "-n", namespace, image, "--port=8080", "--replicas=2")
    assert "deployment.apps/web created" in out
    get = ("get", "deployment", "web", "-n", namespace, "-o")
    created = json.loads(await kubectl(*get, "json"))
    assert created["spec"]["replicas"] == 2
    assert created["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert created["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert (container["name"], container["image"]) == ("none", "registry.invalid/none:1")
    assert container["ports"][0]["containerPort"] == 8080
    scale = ("scale", "deployment", "web", "-n", namespace)
    assert "deployment.apps/web scaled" in await kubectl(*scale, "--replicas=3")
    assert await kubectl(*get, "jsonpath={.spec.replicas}") == "3"
    assert "deployment.apps/web scaled" in await kubectl(*scale, "--replicas=0", "--current-replicas=3")
    assert await kubectl(*get, "jsonpath={.spec.replicas}") == "0"
    refused = await kubectl(*scale, "--replicas=1", "--current-replicas=3", check=False)
    assert "Expected replicas to be 3, was 0" in refused


async def test_describe_shows_events_of_both_event_apis(
    kubectl: Kubectl, namespace: str, target: Target
) -> None:
    await kubectl("create", "configmap", "described", "-n", namespace, "--from-literal=k=1")
    uid = await kubectl("get", "configmap", "described", "-n", namespace, "-o", "jsonpath={.metadata.uid}")
    regarding = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "described",
        "namespace": namespace,
        "uid": uid,
    }
    new_api = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "described.new", "namespace": namespace},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "witness.kube-runtime.dev/test",
        "reportingInstance": "witness-1",
        "action": "Check",
        "reason": "NewApiReason",
        "note": "written through events.k8s.io/v1",
        "type": "Normal",
        "regarding": regarding,
    }
    with target.http() as http:
        resp = http.post(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", json=new_api)
        assert resp.status_code == 201, resp.text
        core = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "described.core", "namespace": namespace},
            "involvedObject": regarding,
            "reason": "CoreApiReason",
            "message": "written through core/v1",
            "type": "Warning",
            "source": {"component": "witness"},
            "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z",
            "count": 1,
        }
        resp = http.post(f"/api/v1/namespaces/{namespace}/events", json=core)
        assert resp.status_code == 201, resp.text
        as_core = http.get(f"/api/v1/namespaces/{namespace}/events/described.new").json()
        assert as_core["involvedObject"]["name"] == "described"
        assert as_core["message"] == "written through events.k8s.io/v1"
        as_new = http.get(f"/apis/events.k8s.io/v1/namespaces/{namespace}/events/described.core").json()
        assert as_new["regarding"]["name"] == "described"
        assert as_new["note"] == "written through core/v1"
    described = await kubectl("describe", "configmap", "described", "-n", namespace)
    assert "NewApiReason" in described
    assert "CoreApiReason" in described


async def test_label_annotate_diff_and_delete_by_selector(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        await kubectl("create", "configmap", name, "-n", namespace, "--from-literal=k=1")
    assert "configmap/one labeled" in await kubectl("label", "configmap", "one", "-n", namespace, "tier=web")
    assert "configmap/two annotated" in await kubectl(
        "annotate", "configmap", "two", "-n", namespace, "note=x"
    )
    assert await kubectl("get", "cm", "-n", namespace, "-l", "tier=web", "-o", "name") == "configmap/one\n"
    manifest = tmp_path / "one.yaml"
    manifest.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: one, namespace: {namespace}}}\n"
        "data: {k: '2'}\n"
    )
    diff = await kubectl("diff", "-f", str(manifest), check=False)
    assert '-  k: "1"' in diff
    assert '+  k: "2"' in diff
    assert await kubectl("get", "cm", "one", "-n", namespace, "-o", "jsonpath={.data.k}") == "1"
    out = await kubectl("delete", "configmap", "-n", namespace, "-l", "tier=web", "--cascade=foreground")
    assert 'configmap "one" deleted' in out
    await kubectl("wait", "--for=delete", "configmap/one", "-n", namespace, "--timeout=20s")
    names = await kubectl("get", "cm", "-n", namespace, "-o", "name")
    assert "configmap/two" in names.split()
    assert "configmap/one" not in names.split()
    resources = await kubectl("api-resources", "--api-group=apps", "-o", "name")
    assert {"deployments.apps", "replicasets.apps", "statefulsets.apps"} <= set(resources.split())


async def test_apply_of_a_manifest_with_a_typo_fails(
    kubectl: Kubectl, namespace: str, typed_crd: Crd, tmp_path: Path
) -> None:
    # kubectl create/apply ask for fieldValidation=Strict: the server refuses unknown fields
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: typo, namespace: {namespace}}}\ndta: {{a: b}}\n"
    )
    out = await kubectl("apply", "-f", str(manifest), check=False)
    assert 'Error from server (BadRequest): error when creating "' in out, out
    assert 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: ' in out
    assert 'unknown field "dta"' in out
    assert "NotFound" in await kubectl("get", "configmap", "typo", "-n", namespace, check=False)

    widget = "apiVersion: {api}\nkind: Widget\nmetadata: {{name: w, namespace: {ns}}}\nspec: {{{spec}}}\n"
    manifest.write_text(widget.format(api=typed_crd.api_version, ns=namespace, spec="sise: small"))
    out = await kubectl("apply", "-f", str(manifest), check=False)
    assert 'Widget in version "v1" cannot be handled as a Widget: strict decoding error: ' in out, out
    assert 'unknown field "spec.sise"' in out
    # --validate=warn: created, the unknown field dropped and reported
    out = await kubectl("apply", "--validate=warn", "-f", str(manifest))
    assert 'Warning: unknown field "spec.sise"' in out, out
    assert "widget.t" in out
    assert "created" in out
    get = ("get", "widgets." + typed_crd.group, "w", "-n", namespace, "-o", "jsonpath={.spec}")
    assert await kubectl(*get) == "{}"
    # an update through apply (a merge patch) is refused too
    manifest.write_text(widget.format(api=typed_crd.api_version, ns=namespace, spec="size: big, colour: red"))
    out = await kubectl("apply", "-f", str(manifest), check=False)
    assert "The request is invalid: patch: Invalid value: " in out, out
    assert 'strict decoding error: unknown field "spec.colour"' in out
    assert await kubectl(*get) == "{}"
