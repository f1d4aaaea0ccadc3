"""Cold sync against the real kube-apiserver (envtest: kube-apiserver + etcd) at small N."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from harness.peers import Peer, PeerRun, PeerTimeout
from harness.workload import configmap_template

__all__ = ["envtest_cold_sync"]


def _client(kubeconfig: Path) -> httpx.Client:
    doc = yaml.safe_load(kubeconfig.read_text())
    cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
    verify: ssl.SSLContext | bool = True
    if "certificate-authority-data" in cluster:
        verify = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    elif "certificate-authority" in cluster:
        verify = ssl.create_default_context(cafile=cluster["certificate-authority"])
    cert = None
    if "client-certificate" in user:
        cert = (user["client-certificate"], user["client-key"])
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return httpx.Client(base_url=cluster["server"], verify=verify, cert=cert, headers=headers, timeout=60)


def envtest_cold_sync(peers: list[Peer], n: int) -> tuple[dict[str, Any] | None, str]:
    """S1 (ConfigMaps) against a real kube-apiserver; (None, why) when it cannot run here."""
    from kube_runtime.testing.envtest import EnvtestBinaries, EnvtestError

    try:
        EnvtestBinaries.locate(None)
    except EnvtestError as exc:
        return None, str(exc)
    tmp = tempfile.TemporaryDirectory(prefix="kr-envtest-")
    kubeconfig = Path(tmp.name) / "kubeconfig"
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "kube_runtime.testing.envtest",
            "--kubeconfig",
            str(kubeconfig),
            "--authorization-mode",
            "AlwaysAllow",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.time() + 120
        for line in proc.stdout:
            if line.startswith("KUBECONFIG="):
                break
            if time.time() > deadline:
                return None, "envtest did not start within 120 s"
        else:
            return None, "envtest exited before it was ready"
        ns = "s1-envtest"
        with _client(kubeconfig) as http:
            http.post(
                "/api/v1/namespaces",
                content=orjson.dumps({"metadata": {"name": ns}}),
                headers={"Content-Type": "application/json"},
            )

            def create(i: int) -> None:
                obj = configmap_template()
                obj["metadata"]["name"] = f"obj-{i}"
                http.post(
                    f"/api/v1/namespaces/{ns}/configmaps",
                    content=orjson.dumps(obj),
                    headers={"Content-Type": "application/json"},
                ).raise_for_status()

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(create, range(n)))
        rows: list[dict[str, Any]] = []
        for peer in peers:
            with PeerRun(peer, kubeconfig, ns, env={"KOPF_PEER_EXPECT": str(n)}) as run:
                try:
                    s = run.wait_synced(120)
                except PeerTimeout as exc:
                    rows.append({"peer": peer.name, "error": str(exc)[:300]})
                    continue
                rows.append(
                    {
                        "peer": peer.name,
                        "resource": "configmaps",
                        "n": n,
                        "synced": s["synced"],
                        "seconds": round(s["t"] - run.started, 3),
                        "cpu_s": s["cpu"],
                        "peak_rss_mib": round(s.get("VmHWM", 0) / 1024, 1),
                    }
                )
        return {
            "title": f"S1b cold sync against the real kube-apiserver (envtest, {n} ConfigMaps)",
            "rows": rows,
            "notes": ["kube-apiserver and etcd pinned to CPU 0 (taskset inherited)."],
        }, ""
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        tmp.cleanup()
