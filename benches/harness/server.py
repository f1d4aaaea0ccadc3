"""The embedded API server in its own process (pinned to one core), driven through its admin API."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson
import yaml

from harness.procfs import cpu_seconds, memory_kib

__all__ = ["BenchServer"]


class BenchServer:
    """``with BenchServer(cpu=0) as server``: runs ``python -m kube_runtime.testing serve``.

    ``history_size`` is the number of events kept for watch resumption: a client away longer
    than that many writes gets 410 Gone and must relist (the recovery scenario relies on it).
    """

    def __init__(self, *, cpu: int | None = 0, history_size: int = 2_000) -> None:
        self.cpu = cpu
        self.history_size = history_size
        self._tmp = tempfile.TemporaryDirectory(prefix="kr-bench-")
        self.kubeconfig = Path(self._tmp.name) / "kubeconfig"
        self._proc: subprocess.Popen[str] | None = None
        self._http: httpx.Client | None = None

    def __enter__(self) -> BenchServer:
        argv = [
            sys.executable,
            "-m",
            "kube_runtime.testing",
            "serve",
            "--port",
            "0",
            "--kubeconfig",
            str(self.kubeconfig),
            "--history-size",
            str(self.history_size),
            "--bookmark-interval",
            "5",
            "--benchmark",  # loop-stall figures in the stats; heap frozen after bulk creation
        ]
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("serving"):
            raise RuntimeError(f"the API server did not start: {line!r}")
        doc = yaml.safe_load(self.kubeconfig.read_text())
        cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
        verify: ssl.SSLContext | bool = True
        if "certificate-authority-data" in cluster:
            verify = ssl.create_default_context(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        self.url = cluster["server"]
        self._http = httpx.Client(
            base_url=self.url,
            verify=verify,
            timeout=600,
            headers={"Authorization": f"Bearer {user['token']}"},
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            self._http.close()
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._tmp.cleanup()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def memory_kib(self) -> dict[str, int]:
        return memory_kib(self.pid)

    # Admin API ------------------------------------------------------------------------------

    def _admin(self, op: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self._http is not None
        for attempt in range(20):  # the listener may be down (restart) or a pooled connection stale
            try:
                if body is None and op == "stats":
                    resp = self._http.get(f"/admin/{op}")
                else:
                    resp = self._http.post(f"/admin/{op}", content=orjson.dumps(body or {}))
                break
            except httpx.TransportError:
                if attempt == 19:
                    raise
                time.sleep(0.25)
        resp.raise_for_status()
        return orjson.loads(resp.content)  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._admin("stats")

    def ensure_namespace(self, name: str) -> None:
        assert self._http is not None
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        resp = self._http.post(
            "/api/v1/namespaces", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        if resp.status_code not in (201, 409):
            resp.raise_for_status()

    def bulk_create(
        self, resource: str, namespace: str, count: int, template: dict[str, Any], *, prefix: str = "obj-"
    ) -> int:
        self.ensure_namespace(namespace)
        body = {
            "resource": resource,
            "namespace": namespace,
            "count": count,
            "template": template,
            "namePrefix": prefix,
        }
        return int(self._admin("bulk-create", body)["created"])

    def churn(
        self, resource: str, namespace: str, count: int, rate: float, *, prefix: str | None = None
    ) -> int:
        """Start a server-side churn of ``count`` MODIFIED writes at ``rate``/s; returns its index."""
        body: dict[str, Any] = {"resource": resource, "namespace": namespace, "count": count, "rate": rate}
        if prefix:
            body["namePrefix"] = prefix
        index = int(self._admin("churn", body)["index"])
        while len(self.stats()["churns"]) <= index:  # the churn registers itself once it starts
            time.sleep(0.01)
        return index

    def churn_status(self, index: int) -> dict[str, Any]:
        return self.stats()["churns"][index]  # type: ignore[no-any-return]

    def wait_churn(self, index: int, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.churn_status(index)
            if not status["running"] or time.monotonic() > deadline:
                return status
            time.sleep(0.1)

    def reset_stalls(self) -> None:
        self._admin("reset-stalls")

    def stall_max_ms(self) -> float:
        """The server event loop's longest late wake-up since :meth:`reset_stalls` (ms)."""
        return round(float(self.stats()["loopStalls"]["maxSeconds"]) * 1e3, 1)

    def close_watches(self) -> int:
        return int(self._admin("close-watches")["closed"])

    def compact(self) -> None:
        self._admin("compact")

    def set_latency(self, seconds: float) -> None:
        """Delay every API request (not the admin ones) by ``seconds``."""
        self._admin("latency", {"seconds": seconds})

    def restart(self, down_seconds: float) -> None:
        self._admin("restart", {"downSeconds": down_seconds})

    def versions(self, resource: str, namespace: str) -> dict[str, str]:
        """``{"namespace/name": resourceVersion}`` of the server's objects (paged list)."""
        assert self._http is not None
        out: dict[str, str] = {}
        params: dict[str, Any] = {"limit": 5000}
        while True:
            resp = self._http.get(f"/api/v1/namespaces/{namespace}/{resource}", params=params)
            resp.raise_for_status()
            page = orjson.loads(resp.content)
            for obj in page["items"]:
                meta = obj["metadata"]
                out[f"{meta['namespace']}/{meta['name']}"] = meta["resourceVersion"]
            cont = page["metadata"].get("continue")
            if not cont:
                return out
            params = {"limit": 5000, "continue": cont}

    def json_size(self, resource: str, namespace: str, sample: int = 50) -> float:
        """Mean JSON size (bytes) of the objects in ``namespace`` as the server sends them."""
        assert self._http is not None
        resp = self._http.get(f"/api/v1/namespaces/{namespace}/{resource}", params={"limit": sample})
        resp.raise_for_status()
        items = orjson.loads(resp.content)["items"]
        return sum(len(orjson.dumps(o)) for o in items) / max(1, len(items))
