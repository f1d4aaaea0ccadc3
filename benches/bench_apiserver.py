"""How fast the embedded API server serves lists and watch streams, and what it costs itself.

The server runs in its own process (the CLI, or uvicorn with the same app for comparison); the
client side is a minimal raw-socket HTTP/1.1 reader so the figures describe the server. Reported:
wall time, objects or events per second, MB/s, and the server's own CPU seconds (from its
``/admin/stats``), per phase.

    python benches/bench_apiserver.py                       # 100k x 1 KiB objects, 200k watch events
    python benches/bench_apiserver.py --objects 20000 --events 50000 --compare-uvicorn
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import yaml


class RawClient:
    """One keep-alive HTTP/1.1 connection with just enough parsing to read whole bodies."""

    def __init__(self, host: str, port: int, token: str, tls: ssl.SSLContext | None) -> None:
        self.host, self.port, self.token, self.tls = host, port, token, tls
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, ssl=self.tls, limit=1 << 24
        )

    def _request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
            "Accept: application/json\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def _head(self) -> tuple[int, dict[str, str]]:
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    async def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(self._request(method, path, body))
        status, headers = await self._head()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, data

    async def watch_count(self, path: str, count: int) -> tuple[int, int]:
        """Read a chunked watch stream until ``count`` lines arrived; returns (lines, bytes)."""
        self.writer.write(self._request("GET", path))
        status, _ = await self._head()
        assert status == 200, status
        lines = received = 0
        while lines < count:
            size_line = await self.reader.readline()
            size = int(size_line.strip(), 16)
            if size == 0:
                break
            chunk = await self.reader.readexactly(size + 2)
            received += size
            lines += chunk.count(b"\n") - 1
        return lines, received

    async def close(self) -> None:
        self.writer.close()


def _read_kubeconfig(path: Path) -> tuple[str, int, str, ssl.SSLContext | None]:
    doc = yaml.safe_load(path.read_text())
    cluster = doc["clusters"][0]["cluster"]
    server = cluster["server"]
    scheme, _, rest = server.partition("://")
    host, _, port = rest.partition(":")
    tls = None
    if scheme == "https":
        tls = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
    return host, int(port), doc["users"][0]["user"]["token"], tls


def _start_cli(tmp: Path, tls: bool) -> tuple[subprocess.Popen[bytes], Path]:
    kubeconfig = tmp / "kubeconfig"
    cmd = [
        sys.executable,
        "-m",
        "kube_runtime.testing",
        "serve",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
    ]
    if not tls:
        cmd.append("--no-tls")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(b"serving"), line
    return proc, kubeconfig


def _start_uvicorn(tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    kubeconfig = tmp / "kubeconfig"
    proc = subprocess.Popen([sys.executable, __file__, "_uvicorn", str(kubeconfig)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(b"serving"), line
    return proc, kubeconfig


def _serve_uvicorn(kubeconfig: str) -> None:
    """Child process: the same API app served by uvicorn (httptools, plain HTTP)."""
    import socket

    import uvicorn

    from kube_runtime.testing import ApiServer
    from kube_runtime.testing.apiserver.asgi import asgi_app
    from kube_runtime.testing.server import kubeconfig_document

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    server = ApiServer(tls=False, create_client=False)
    server.port = port
    Path(kubeconfig).write_text(yaml.safe_dump(kubeconfig_document(server.url, server.token)))
    config = uvicorn.Config(
        asgi_app(server.app.handle),
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=3600,
    )
    import anyio

    async def serve() -> None:
        async with anyio.create_task_group() as tg:
            server._tg = tg  # the admin endpoint runs churn in this task group
            print("serving", server.url, flush=True)
            await uvicorn.Server(config).serve(sockets=[sock])
            tg.cancel_scope.cancel()

    anyio.run(serve)


async def _stats(client: RawClient) -> dict[str, Any]:
    _, body = await client.call("GET", "/admin/stats")
    return dict(json.loads(body))


async def run_phases(kubeconfig: Path, objects: int, size: int, events: int, small: int) -> dict[str, Any]:
    host, port, token, tls = _read_kubeconfig(kubeconfig)
    client = RawClient(host, port, token, tls)
    await client.connect()
    results: dict[str, Any] = {}
    ns = "/api/v1/namespaces/default/configmaps"

    before = await _stats(client)
    start = time.perf_counter()
    body = json.dumps(
        {"resource": "configmaps", "namespace": "default", "count": objects, "size": size}
    ).encode()
    status, _ = await client.call("POST", "/admin/bulk-create", body)
    assert status == 200
    after = await _stats(client)
    print("  ...bulk create done", flush=True)
    results["bulk_create"] = {
        "objects": objects,
        "seconds": time.perf_counter() - start,
        "server_cpu_s": after["cpuSeconds"] - before["cpuSeconds"],
    }

    for limit in (500, 0):
        before = await _stats(client)
        start = time.perf_counter()
        total = nbytes = pages = 0
        token_param = ""
        while True:
            path = (
                f"{ns}?limit={limit}" + (f"&continue={token_param}" if token_param else "") if limit else ns
            )
            status, data = await client.call("GET", path)
            assert status == 200, data[:200]
            nbytes += len(data)
            pages += 1
            doc = orjson.loads(data)
            total += len(doc["items"])
            token_param = doc["metadata"].get("continue", "")
            if not token_param:
                break
        wall = time.perf_counter() - start
        after = await _stats(client)
        results[f"list_limit_{limit or 'none'}"] = {
            "objects": total,
            "pages": pages,
            "seconds": wall,
            "objects_per_s": total / wall,
            "MB_per_s": nbytes / wall / 1e6,
            "server_cpu_s": after["cpuSeconds"] - before["cpuSeconds"],
        }

    before = await _stats(client)
    start = time.perf_counter()
    for _ in range(small):
        status, _ = await client.call("GET", f"{ns}/obj-1")
        assert status == 200
    wall = time.perf_counter() - start
    after = await _stats(client)
    results["get_one_sequential"] = {
        "requests": small,
        "seconds": wall,
        "requests_per_s": small / wall,
        "server_cpu_us_per_request": (after["cpuSeconds"] - before["cpuSeconds"]) / small * 1e6,
    }

    watcher = RawClient(host, port, token, tls)
    await watcher.connect()
    _, data = await client.call("GET", f"{ns}?limit=1")
    rv = json.loads(data)["metadata"]["resourceVersion"]
    before = await _stats(client)
    start = time.perf_counter()
    churn = json.dumps(
        {"resource": "configmaps", "namespace": "default", "count": events, "rate": 0}
    ).encode()
    watch_task = asyncio.create_task(watcher.watch_count(f"{ns}?watch=1&resourceVersion={rv}", events))
    await client.call("POST", "/admin/churn", churn)
    lines, nbytes = await watch_task
    wall = time.perf_counter() - start
    after = await _stats(client)
    cpu = after["cpuSeconds"] - before["cpuSeconds"]
    results["watch_churn"] = {
        "events": lines,
        "seconds": wall,
        "events_per_s": lines / wall,
        "MB_per_s": nbytes / wall / 1e6,
        "server_cpu_s": cpu,
        "server_cpu_us_per_event": cpu / max(lines, 1) * 1e6,
    }
    await watcher.close()
    await client.close()
    return results


def _print(title: str, results: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for phase, figures in results.items():
        shown = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
        print(f"  {phase:20s} {shown}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_uvicorn":
        _serve_uvicorn(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024, help="payload bytes per object")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=5_000, help="sequential single-object GETs")
    parser.add_argument(
        "--compare-uvicorn", action="store_true", help="also serve the app with uvicorn (plain HTTP)"
    )
    parser.add_argument("--only-uvicorn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    runs: dict[str, Any] = {}
    variants = [("embedded server, TLS", "cli", True), ("embedded server, plain HTTP", "cli", False)]
    if args.only_uvicorn:
        variants = []
    if args.compare_uvicorn or args.only_uvicorn:
        variants.append(("uvicorn+httptools, plain HTTP", "uvicorn", False))
    for title, kind, tls in variants:
        with tempfile.TemporaryDirectory() as tmp:
            proc, kubeconfig = _start_uvicorn(Path(tmp)) if kind == "uvicorn" else _start_cli(Path(tmp), tls)
            try:
                results = asyncio.run(
                    run_phases(kubeconfig, args.objects, args.size, args.events, args.requests)
                )
            finally:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        _print(title, results)
        runs[title] = results
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
