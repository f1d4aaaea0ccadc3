"""Admission webhook throughput and latency: the WebhookServer over TLS, pinned to one core.

The server runs in a child process pinned to one CPU (``os.sched_setaffinity``), serving a
validator and a mutator (the runtime computes the JSON patch) exactly as an operator would, with
JSON logs at warning (so per-review debug lines cost nothing) and metrics and spans on (no SDK:
the OpenTelemetry API no-op). The load generator runs in this process, pinned to another CPU when
there is one, with ``--concurrency`` keep-alive HTTPS connections (a bare HTTP/1.1 client on
asyncio streams, so the client's own cost stays small) sending AdmissionReview bodies (a ~1 KiB
Widget) back to back.

Reported per webhook: requests/s, client-observed latency p50/p99 (request written to response
read, so it includes the client's own share), server CPU per review (from /proc), the figure
least disturbed by other load on the machine, and the reviews/s one core serves at that cost. Usage:
``python benches/bench_webhooks.py [--requests N] [--concurrency C] [--uvloop] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import orjson

HERE = Path(__file__).resolve().parent


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def review(replicas: int) -> bytes:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {
            "name": "widget-1",
            "namespace": "default",
            "uid": str(uuid.uuid4()),
            "labels": {f"label-{i}": f"value-{i}" for i in range(8)},
            "annotations": {"note": "x" * 256},
        },
        "spec": {
            "replicas": replicas,
            "image": "registry.example.com/widget:1.2.3",
            "ports": list(range(20)),
        },
    }
    request = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": "example.com", "version": "v1", "kind": "Widget"},
        "resource": {"group": "example.com", "version": "v1", "resource": "widgets"},
        "name": "widget-1",
        "namespace": "default",
        "operation": "CREATE",
        "userInfo": {"username": "bench"},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
    }
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})


# --------------------------------------------------------------------------- server (child process)


async def serve(ready_file: Path) -> None:
    import io

    from kube_runtime.observe.logging import configure_logging
    from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow, deny
    from kube_runtime.webhooks.certs import SelfSignedCA
    from kube_runtime.webhooks.server import WebhookServer

    configure_logging("warning", stream=io.StringIO())

    async def validate(request: AdmissionRequest) -> Verdict:
        if request.object["spec"]["replicas"] > 3:
            return deny("replicas must be at most 3")
        return allow()

    async def mutate(request: AdmissionRequest) -> Any:
        obj = request.object
        obj["metadata"]["labels"]["mutated-by"] = "kube-runtime"
        obj["spec"]["replicas"] = max(1, obj["spec"]["replicas"])
        return obj

    hooks = Webhooks()
    rules = [WebhookRule(("example.com",), ("*",), ("widgets",))]
    hooks.validating("/validate", validate, name="vwidget.example.com", rules=rules)
    hooks.mutating("/mutate", mutate, name="mwidget.example.com", rules=rules)
    with tempfile.TemporaryDirectory() as tmp:
        pair = SelfSignedCA().issue(tmp, hosts=["127.0.0.1"])
        async with WebhookServer(
            hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0"
        ) as server:
            await anyio.Path(ready_file).write_text(
                json.dumps({"url": server.url, "ca": pair.ca_pem.decode()})
            )
            await anyio.sleep_forever()


# --------------------------------------------------------------------------- load generator


async def load(
    url: str, ca: str, path: str, bodies: list[bytes], concurrency: int
) -> tuple[float, list[float]]:
    """Send ``bodies`` over ``concurrency`` keep-alive TLS connections, each request written as
    soon as the previous answer on its connection is read. A bare HTTP/1.1 client on asyncio
    streams: an HTTP library's own per-request cost would be measured instead of the server's."""
    import ssl

    context = ssl.create_default_context(cadata=ca)
    host, port = url.removeprefix("https://").rsplit(":", 1)
    latencies: list[float] = []
    next_index = 0
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        try:
            while next_index < len(bodies):
                body = bodies[next_index]
                next_index += 1
                started = time.perf_counter()
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                headers = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in headers.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not headers.startswith(b"HTTP/1.1 200 "):
                    raise RuntimeError(f"{path}: {headers!r} {answer!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--uvloop", action="store_true", help="run the server's event loop on uvloop")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.serve:
        os.sched_setaffinity(0, {cpus[0]})
        anyio.run(serve, args.serve, backend_options={"use_uvloop": args.uvloop})
        return
    if len(cpus) > 1:
        os.sched_setaffinity(0, set(cpus[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}  # this checkout's kube_runtime
        argv = [sys.executable, __file__, "--serve", str(ready), *(["--uvloop"] if args.uvloop else [])]
        child = subprocess.Popen(argv, cwd=HERE.parent, env=env)
        try:
            deadline = time.monotonic() + 30
            while not ready.exists() or not ready.read_text():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("webhook server did not start")
                time.sleep(0.05)
            info = json.loads(ready.read_text())
            results: dict[str, Any] = {
                "server_cpu": cpus[0],
                "concurrency": args.concurrency,
                "loop": "uvloop" if args.uvloop else "asyncio",
            }
            for path in ("/validate", "/mutate"):
                bodies = [review(i % 6) for i in range(args.requests)]
                asyncio.run(load(info["url"], info["ca"], path, bodies[:500], args.concurrency))  # warm up
                cpu_before = _cpu_seconds(child.pid)
                elapsed, latencies = asyncio.run(
                    load(info["url"], info["ca"], path, bodies, args.concurrency)
                )
                cpu = _cpu_seconds(child.pid) - cpu_before
                results[path] = {
                    "requests": len(latencies),
                    "requests_per_second": round(len(latencies) / elapsed, 1),
                    "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
                    "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
                    "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
                    "server_cpu_us_per_review": round(cpu / len(latencies) * 1e6, 1),
                    # what one core serves when the server has it to itself
                    "one_core_reviews_per_second": round(len(latencies) / cpu, 1) if cpu > 0 else None,
                }
        finally:
            child.terminate()
            child.wait(timeout=30)
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"webhook server pinned to CPU {cpus[0]} ({results['loop']}), "
        f"{args.concurrency} keep-alive TLS connections"
    )
    print(
        f"{'webhook':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'server CPU us/review':>21} "
        f"{'1-core req/s':>13}"
    )
    for path in ("/validate", "/mutate"):
        r = results[path]
        print(
            f"{path:<10} {r['requests_per_second']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['server_cpu_us_per_review']:>21} {r['one_core_reviews_per_second']:>13}"
        )


if __name__ == "__main__":
    main()
