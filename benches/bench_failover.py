"""Leader failover with ``--objects`` ConfigMaps: a cold standby against a warm one (EnableWarmup).

Two replica processes (this file with ``replica``) elect a leader on one Lease. Once the leader
reconciles and the standby is settled (a warm one has synced its store), the leader is SIGKILLed,
so it cannot release the Lease and the standby takes over when the lease expires. Measured from
the kill: when the standby acquired the Lease, and when it started its first reconcile. The
difference of the two is what warm-up removes (a cold standby lists every object first); the lease
expiry is the same for both and shortened here (``--lease-duration``) to keep the run short.

    python benches/bench_failover.py                       # embedded API server, 10,000 objects
    python benches/bench_failover.py --server envtest      # the real kube-apiserver (envtest binaries)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # the harness, and this checkout's kube_runtime

NAMESPACE = "bench-failover"


# -- a replica ------------------------------------------------------------------------------------


def replica(args: argparse.Namespace) -> None:
    import anyio
    from prometheus_client import CollectorRegistry

    from kube_runtime.client import Api, Client
    from kube_runtime.client.resource import ApiResource
    from kube_runtime.controller import Action, Controller
    from kube_runtime.leader import LeaderElector

    def say(what: str) -> None:
        print(f"{what} {time.time():.6f}", flush=True)

    async def main() -> None:
        async with Client.from_kubeconfig(args.kubeconfig) as client:
            elector = LeaderElector(
                client,
                args.lease,
                NAMESPACE,
                identity=args.identity,
                lease_duration=args.lease_duration,
                renew_deadline=args.lease_duration * 0.75,
                retry_period=args.lease_duration / 8,
                registry=CollectorRegistry(),
            )
            api: Api = Api(client, ApiResource.builtin("ConfigMap"), NAMESPACE)
            controller = Controller(api, registry=CollectorRegistry()).with_leader_election(
                elector, warmup=args.warm
            )
            reconciled = False

            async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
                nonlocal reconciled
                if not reconciled:
                    reconciled = True
                    say("reconciled")
                await anyio.sleep(args.work)
                return Action.await_change()

            async def report(what: str, event: Any) -> None:
                await event()
                say(what)

            async with (
                elector,
                controller.run(reconcile, None, None) as results,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(report, "synced", controller.store.wait_until_ready)
                tg.start_soon(report, "leading", elector.leading.wait)
                say("started")
                async for _ in results:
                    pass

    anyio.run(main)


# -- the measurement ------------------------------------------------------------------------------


class Replica:
    """A replica process and the timestamps it reported."""

    def __init__(self, args: argparse.Namespace, kubeconfig: Path, identity: str, lease: str) -> None:
        argv = [
            sys.executable,
            __file__,
            "replica",
            "--kubeconfig",
            str(kubeconfig),
            "--identity",
            identity,
            "--lease",
            lease,
            "--lease-duration",
            str(args.lease_duration),
            "--work",
            str(args.work),
        ]
        if args.warm:
            argv.append("--warm")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.events: dict[str, float] = {}
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def wait_for(self, what: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while what not in self.events:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{what!r} not reported within {timeout} s") from None
            name, _, stamp = line.strip().partition(" ")
            self.events[name] = float(stamp)
        return self.events[what]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def failover(args: argparse.Namespace, kubeconfig: Path, round_: int) -> dict[str, float]:
    lease = f"failover-{'warm' if args.warm else 'cold'}-{round_}"
    leader = Replica(args, kubeconfig, "leader", lease)
    try:
        leader.wait_for("reconciled", 300)
        standby = Replica(args, kubeconfig, "standby", lease)
        try:
            standby.wait_for("started", 60)
            if args.warm:
                standby.wait_for("synced", 300)
            time.sleep(args.settle)
            assert "leading" not in standby.events
            killed = time.time()
            os.kill(leader.proc.pid, signal.SIGKILL)
            leader.proc.wait()
            acquired = standby.wait_for("leading", 120) - killed
            first = standby.wait_for("reconciled", 300) - killed
            return {"acquired": acquired, "reconciled": first}
        finally:
            standby.stop()
    finally:
        leader.stop()


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[Path]:
    from harness.server import BenchServer
    from harness.workload import configmap_template

    if args.server == "embedded":
        with BenchServer(cpu=0) as bench_server:
            bench_server.bulk_create("configmaps", NAMESPACE, args.objects, configmap_template())
            yield bench_server.kubeconfig
        return
    with tempfile.TemporaryDirectory(prefix="kr-failover-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        proc = subprocess.Popen(
            [sys.executable, "-m", "kube_runtime.testing.envtest", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("KUBECONFIG="):
                    break
            else:
                raise RuntimeError("envtest did not start")
            _create_objects(kubeconfig, args.objects)
            yield kubeconfig
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def _create_objects(kubeconfig: Path, count: int) -> None:
    import anyio
    from harness.workload import configmap_template

    from kube_runtime.client import Api, Client
    from kube_runtime.client.resource import ApiResource

    async def main() -> None:
        async with Client.from_kubeconfig(str(kubeconfig)) as client:
            namespaces: Api = Api(client, ApiResource.builtin("Namespace"))
            await namespaces.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            )
            api: Api = Api(client, ApiResource.builtin("ConfigMap"), NAMESPACE)
            limiter = anyio.Semaphore(32)

            async def create(i: int) -> None:
                async with limiter:
                    obj = configmap_template()
                    obj["metadata"]["name"] = f"obj-{i}"
                    await api.create(obj)

            async with anyio.create_task_group() as tg:
                for i in range(count):
                    tg.start_soon(create, i)

    anyio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    rep = sub.add_parser("replica")
    rep.add_argument("--kubeconfig", required=True)
    rep.add_argument("--identity", required=True)
    rep.add_argument("--lease", required=True)
    rep.add_argument("--lease-duration", type=float, required=True)
    rep.add_argument("--work", type=float, required=True)
    rep.add_argument("--warm", action="store_true")
    parser.add_argument("--server", choices=["embedded", "envtest"], default="embedded")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease-duration", type=float, default=4.0, help="seconds (controller-runtime: 15)")
    parser.add_argument("--work", type=float, default=0.001, help="seconds each reconcile awaits")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds the standby runs before the kill")
    args = parser.parse_args()
    if args.command == "replica":
        replica(args)
        return
    print(
        f"{args.server} API server, {args.objects:,} ConfigMaps, lease duration {args.lease_duration:g} s, "
        f"{args.rounds} failovers per mode; seconds from SIGKILL of the leader"
    )
    with server(args) as kubeconfig:
        for warm in (False, True):
            args.warm = warm
            runs = [failover(args, kubeconfig, i) for i in range(args.rounds)]
            acquired = statistics.median(r["acquired"] for r in runs)
            first = statistics.median(r["reconciled"] for r in runs)
            print(
                f"{'warm' if warm else 'cold'} standby: Lease acquired after {acquired:6.2f} s, "
                f"first reconcile after {first:6.2f} s "
                f"(acquired -> reconcile {first - acquired:6.3f} s; median of {args.rounds})"
            )


if __name__ == "__main__":
    main()
