"""Memory of a no-op controller under object churn: resident set size over time.

A soak: the embedded API server (its own process) creates uniquely named ConfigMaps at ``--rate``
objects per second and deletes each once ``--live`` newer ones exist, so ``--live`` of them are
alive at any time, each for ``live / rate`` seconds (its admin ``lifecycle`` operation: no HTTP
request per object). This process runs a
no-op ``Controller`` on them and consumes its results plainly (``--results plain``) or through a
``ResultRecorder`` with hot-loop detection on, its default (``--results observe``); unless
``--no-deletion-hook`` (and where the controller has ``on_object_deleted``) the recorder is told
of every delete, as ``Observability`` and ``observe_results(deletions=controller)`` do.
Every ``--interval`` seconds it prints its RSS (``VmRSS``), the reconciles so far and the objects
the hot-loop detector tracks; at the end, the growth from the first sample to the last.

    python benches/bench_churn.py                          # 150 s, sampled every 10 s
    python benches/bench_churn.py --quick                  # 40 s, sampled every 5 s
    python benches/bench_churn.py --results plain --duration 60

It measures the kube_runtime it imports: run it as ``PYTHONPATH=<checkout> python
benches/bench_churn.py`` to pick the revision (the server always runs from this bench's checkout).
The server shares the machine: the churn rate it reaches is printed with each sample.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import structlog
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.controller.controller import Controller
from kube_runtime.observe.metrics import ResultRecorder

CM = ApiResource.builtin("ConfigMap")
NAMESPACE = "default"
#: The server runs from this bench's checkout, whichever kube_runtime the controller measures.
SERVER_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the controller process -----------------------------------------------------------------------


async def soak(args: argparse.Namespace, kubeconfig: str) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    async with Client.from_kubeconfig(kubeconfig) as client:
        api = Api(client, CM, NAMESPACE)
        controller = Controller(api, name="churn", registry=CollectorRegistry())
        recorder: ResultRecorder | None = None
        if args.results == "observe":
            recorder = ResultRecorder("churn", registry=CollectorRegistry())
            hook = getattr(controller, "on_object_deleted", None)
            if args.deletion_hook and hook is not None:
                hook(recorder.forget)
        hooked = recorder is not None and args.deletion_hook and hasattr(controller, "on_object_deleted")
        reconciles = 0

        async def reconcile(_obj: dict[str, Any], _ctx: None) -> Action:
            return Action.await_change()

        cycles = int(args.rate * (args.duration + 2 * args.interval))
        lifecycle = {"resource": "configmaps", "namespace": NAMESPACE, "count": cycles, "rate": args.rate}
        lifecycle["linger"] = args.live
        churn_index = 0

        async def churned() -> int:
            stats = await client.request("get", "GET", "/admin/stats")
            return int(stats["churns"][churn_index]["done"])

        samples: list[tuple[float, float]] = []

        async def sample() -> None:
            nonlocal churn_index
            await controller.store.wait_until_ready()
            started = await client.request("create", "POST", "/admin/lifecycle", body=lifecycle)
            churn_index = int(started["index"])
            t0, base = time.monotonic(), await churned()
            print(f"results={args.results} deletion_hook={hooked} rate={args.rate}/s live={args.live}")
            print(f"{'t (s)':>6} {'RSS MiB':>8} {'reconciles':>10} {'churn/s':>8} {'tracked':>8}")
            while True:
                elapsed = time.monotonic() - t0
                mib = rss_mib()
                samples.append((elapsed, mib))
                tracked = "-" if recorder is None or recorder.hot_loops is None else len(recorder.hot_loops)
                rate = (await churned() - base) / elapsed if elapsed >= 1 else 0.0
                print(f"{elapsed:6.0f} {mib:8.1f} {reconciles:10d} {rate:8.0f} {tracked!s:>8}", flush=True)
                if elapsed >= args.duration:
                    return
                await anyio.sleep(args.interval - (time.monotonic() - t0) % args.interval)

        run = controller.run(reconcile, None, None)
        async with run as results, anyio.create_task_group() as tg:

            async def sample_then_stop() -> None:
                await sample()
                run.shutdown()

            tg.start_soon(sample_then_stop)
            stream = recorder.observe(results) if recorder is not None else results
            async for _ in stream:
                reconciles += 1
        first, last = samples[0][1], samples[-1][1]
        peak = max(mib for _, mib in samples)
        print(f"RSS first {first:.1f} MiB, last {last:.1f} MiB, peak {peak:.1f} MiB")
        print(f"growth {last - first:+.1f} MiB over {samples[-1][0]:.0f} s")


def serve(directory: str) -> tuple[subprocess.Popen[str], str]:
    """Start the embedded API server in its own process; returns it and its kubeconfig path."""
    kubeconfig = os.path.join(directory, "kubeconfig")
    server = subprocess.Popen(
        [sys.executable, "-m", "kube_runtime.testing", "serve", "--kubeconfig", kubeconfig],
        stdout=subprocess.PIPE,
        text=True,
        env=SERVER_ENV,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("serving"):
        server.kill()
        raise SystemExit(f"the API server did not start: {line!r}")
    return server, kubeconfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", choices=("observe", "plain"), default="observe")
    parser.add_argument("--no-deletion-hook", dest="deletion_hook", action="store_false")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of churn")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--quick", action="store_true", help="40 s, sampled every 5 s")
    parser.add_argument("--rate", type=float, default=700.0, help="objects created and deleted per second")
    parser.add_argument("--live", type=int, default=300, help="objects alive at a time")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.interval = 40.0, 5.0
    with tempfile.TemporaryDirectory(prefix="bench-churn-") as directory:
        server, kubeconfig = serve(directory)
        try:
            anyio.run(soak, args, kubeconfig)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
