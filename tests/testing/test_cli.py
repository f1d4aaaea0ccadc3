"""The CLI server process and its admin endpoint (faults, load generation, CPU stats)."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import httpx
import yaml

from tests.testing.cli import serve_cli

CM = "/api/v1/namespaces/default/configmaps"


def _client(kubeconfig: Path) -> httpx.AsyncClient:
    import base64

    doc = yaml.safe_load(kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    token = doc["users"][0]["user"]["token"]
    return httpx.AsyncClient(
        base_url=cluster["server"],
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cadata=ca),
        timeout=30,
    )


async def test_cli_admin_endpoint(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_cli(kubeconfig), _client(kubeconfig) as http:
        stats = (await http.get("/admin/stats")).json()
        assert stats["cpuSeconds"] > 0
        resp = await http.post(
            "/admin/bulk-create",
            json={"resource": "configmaps", "namespace": "default", "count": 50, "size": 10},
        )
        assert resp.json()["created"] == 50
        listed = (await http.get(CM, params={"limit": "20"})).json()
        assert len(listed["items"]) == 20
        assert listed["metadata"]["remainingItemCount"] == 30
        rv = listed["metadata"]["resourceVersion"]
        async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": rv}) as watch:
            await http.post(
                "/admin/churn",
                json={"resource": "configmaps", "namespace": "default", "count": 100, "rate": 0},
            )
            seen = 0
            async for line in watch.aiter_lines():
                if line:
                    seen += 1
                    if seen == 100:
                        break
        stats = (await http.get("/admin/stats")).json()
        assert stats["churns"][0]["done"] == 100
        assert stats["objects"]["configmaps"] == 50

        await http.post("/admin/fail", json={"count": 1, "code": 429, "retryAfter": 2})
        resp = await http.get(CM)
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "2"
        assert (await http.get(CM)).status_code == 200

        await http.post("/admin/expire-token")
        assert (await http.get(CM)).status_code == 401
        await http.post("/admin/restore-token")

        rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
        await http.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
        await http.post("/admin/compact")
        async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": rv}) as watch:
            lines = [line async for line in watch.aiter_lines() if line]
        assert '"code":410' in lines[-1]

        assert (await http.post("/admin/restart", json={"downSeconds": 0.3})).status_code == 200
        with anyio.fail_after(20):
            while True:
                try:
                    resp = await http.get(CM)
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.05)
        assert len(resp.json()["items"]) == 51
        assert (await http.post("/admin/nothing")).status_code == 404
        http.headers["Authorization"] = "Bearer wrong"
        assert (await http.get("/admin/stats")).status_code == 401


async def test_cli_benchmark_mode_reports_loop_stalls(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_cli(kubeconfig, "--benchmark"), _client(kubeconfig) as http:
        await anyio.sleep(0.1)
        stalls = (await http.get("/admin/stats")).json()["loopStalls"]
        assert stalls["maxSeconds"] >= 0
        resp = await http.post(
            "/admin/bulk-create",
            json={"resource": "configmaps", "namespace": "default", "count": 3000, "size": 10},
        )
        assert resp.status_code == 200
        # Creating 3,000 objects keeps the loop busy far longer than the 5 ms ticker period.
        during = (await http.get("/admin/stats")).json()["loopStalls"]["maxSeconds"]
        assert during > 0.01
        assert (await http.post("/admin/reset-stalls")).status_code == 200
        assert (await http.get("/admin/stats")).json()["loopStalls"]["maxSeconds"] < during
    async with serve_cli(kubeconfig), _client(kubeconfig) as http:
        assert "loopStalls" not in (await http.get("/admin/stats")).json()
