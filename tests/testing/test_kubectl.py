"""kubectl, a client nobody here wrote, against the CLI server (scripts/test installs it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import pytest

from tests.testing.cli import serve_cli

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.kubectl

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: demo}
spec: {size: 3}
"""
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo}
data: {mode: fast}
"""


class Kubectl:
    def __init__(self, kubeconfig: Path, cache: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(cache)}
        self.cache = cache

    def argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None, "kubectl is not installed (scripts/test installs it)"
        return [KUBECTL, f"--cache-dir={self.cache}", *args]

    async def __call__(self, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
        result = await anyio.run_process(self.argv(*args), env=self.env, check=False, input=stdin)
        out = result.stdout.decode() + result.stderr.decode()
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)} failed: {out}"
        return out


async def test_kubectl_end_to_end(tmp_path: Path) -> None:
    async with serve_cli(tmp_path / "kubeconfig"):
        kubectl = Kubectl(tmp_path / "kubeconfig", tmp_path / "cache")
        assert "namespace/demo created" in await kubectl("create", "namespace", "demo")
        (tmp_path / "cm.yaml").write_text(CONFIGMAP)
        (tmp_path / "crd.yaml").write_text(CRD)
        (tmp_path / "widget.yaml").write_text(WIDGET)
        assert "configmap/settings created" in await kubectl("apply", "-f", str(tmp_path / "cm.yaml"))
        (tmp_path / "cm.yaml").write_text(CONFIGMAP.replace("fast", "slow"))
        assert "configmap/settings configured" in await kubectl("apply", "-f", str(tmp_path / "cm.yaml"))
        assert "slow" in await kubectl(
            "get", "configmap", "settings", "-n", "demo", "-o", "jsonpath={.data.mode}"
        )
        assert "created" in await kubectl("apply", "-f", str(tmp_path / "crd.yaml"))
        assert "widget.example.com/w1 created" in await kubectl("apply", "-f", str(tmp_path / "widget.yaml"))
        listing = await kubectl("get", "widgets", "-A")
        assert "demo" in listing
        assert "w1" in listing
        assert "settings" in await kubectl("get", "configmaps", "-A")

        # get -w sees a change made meanwhile
        watch_args = kubectl.argv("get", "widgets", "-n", "demo", "-w", "-o", "jsonpath={.spec.size}{'\\n'}")
        async with await anyio.open_process(watch_args, env=kubectl.env) as watch:
            assert watch.stdout is not None
            seen = b""
            with anyio.fail_after(30):
                while b"3\n" not in seen:
                    seen += await watch.stdout.receive()
                await kubectl(
                    "patch", "widget", "w1", "-n", "demo", "--type=merge", "-p", '{"spec":{"size":5}}'
                )
                while b"5\n" not in seen:
                    seen += await watch.stdout.receive()
            watch.terminate()

        test_and_replace = (
            '[{"op":"test","path":"/spec/size","value":5},{"op":"replace","path":"/spec/size","value":6}]'
        )
        await kubectl("patch", "widget", "w1", "-n", "demo", "--type=json", "-p", test_and_replace)
        assert await kubectl("get", "widget", "w1", "-n", "demo", "-o", "jsonpath={.spec.size}") == "6"
        failed = await kubectl(
            "patch", "widget", "w1", "-n", "demo", "--type=json",
            "-p", '[{"op":"test","path":"/spec/size","value":99}]', check=False,
        )  # fmt: skip
        assert "invalid" in failed.lower()

        # a finalizer holds the object in Terminating until it is patched away
        finalizer = '{"metadata":{"finalizers":["example.com/hold"]}}'
        await kubectl("patch", "widget", "w1", "-n", "demo", "--type=merge", "-p", finalizer)
        assert "deleted" in await kubectl("delete", "widget", "w1", "-n", "demo", "--wait=false")
        stamp = await kubectl(
            "get", "widget", "w1", "-n", "demo", "-o", "jsonpath={.metadata.deletionTimestamp}"
        )
        assert stamp.endswith("Z")
        await kubectl(
            "patch",
            "widget",
            "w1",
            "-n",
            "demo",
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        gone = await kubectl("get", "widget", "w1", "-n", "demo", check=False)
        assert "NotFound" in gone
        assert "deleted" in await kubectl("delete", "configmap", "settings", "-n", "demo")
