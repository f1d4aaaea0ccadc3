"""A sharded ConfigMap controller, several replicas as separate processes, checked from outside.

    python -m examples.sharded --embedded --replicas 3 --objects 300 --kill-one
    python -m examples.sharded replica --identity NAME --records FILE [--kubeconfig PATH]

``--embedded`` starts an embedded API server in this process, starts ``--replicas`` replica
processes (:mod:`examples.sharded.replica`) on it, creates ``--objects`` ConfigMaps, then updates
each of them once. With ``--kill-one``, halfway through the updates it SIGKILLs the replica that
runs the assigner (so both the assigner and that replica's objects fail over). It waits until every
object is labelled for a live replica and its last version was reconciled, stops the replicas with
SIGTERM and reads their reconcile records (:mod:`examples.sharded.check`). The last line it prints:

    sharding: <objects> objects, <replicas> replicas, <killed> killed, <moves> moves,
    overlapping reconciles <n>, unreconciled <m>, converged in <s>s

(one line).
``moves`` counts the times an object's next reconcile ran on another replica than its previous one;
``converged in`` is the time from the last update to the moment every last version was
reconciled. The exit status is 0 only when ``unreconciled`` and ``overlapping reconciles`` are 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson

from examples.sharded.check import Report, analyse
from examples.sharded.replica import CONFIG_MAP, RING, add_arguments, run_replica
from kube_runtime.client import Api
from kube_runtime.leader import LEASE_RESOURCE
from kube_runtime.sharding import RING_LABEL, shard_label
from kube_runtime.testing import ApiServer

__all__ = ["main"]

#: Longest the demo waits for convergence before it reports what is left unreconciled.
CONVERGE_TIMEOUT = 180.0


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class Demo:
    def __init__(self, args: argparse.Namespace, server: ApiServer, workdir: Path) -> None:
        self.args = args
        self.server = server
        self.workdir = workdir
        self.api = Api(server.client, CONFIG_MAP, "default")
        self.processes: dict[str, anyio.abc.Process] = {}
        self.killed_at: dict[str, float] = {}
        self._logs: list[Any] = []

    def records_path(self, replica: str) -> Path:
        return self.workdir / f"{replica}.jsonl"

    async def start_replica(self, identity: str) -> None:
        command = [sys.executable, "-m", "examples.sharded", "replica", "--identity", identity]
        command += [
            "--records",
            str(self.records_path(identity)),
            "--kubeconfig",
            str(self.server.kubeconfig_path),
        ]
        log = self._log_file(identity)
        self.processes[identity] = await anyio.open_process(
            command, stdout=log, stderr=log, env={**os.environ, "KUBE_RUNTIME_LOG_FORMAT": "json"}
        )

    def _log_file(self, identity: str) -> Any:
        log = open(self.workdir / f"{identity}.log", "wb")  # noqa: SIM115 (closed in stop())
        self._logs.append(log)
        return log

    def assigner_holder(self) -> str | None:
        for lease in self.server.objects(LEASE_RESOURCE, "default"):
            if lease["metadata"]["name"] == f"{RING}-assigner":
                return str(lease["spec"].get("holderIdentity") or "") or None
        return None

    def members(self) -> list[str]:
        """Replicas whose member Lease names them as holder."""
        return [
            lease["metadata"]["name"]
            for lease in self.server.objects(LEASE_RESOURCE, "default")
            if (lease["metadata"].get("labels") or {}).get(RING_LABEL) == RING
            and lease["spec"].get("holderIdentity") == lease["metadata"]["name"]
        ]

    def live(self) -> list[str]:
        return [name for name in self.processes if name not in self.killed_at]

    def reconciled(self) -> dict[str, set[str]]:
        done: dict[str, set[str]] = {}
        for name in self.processes:
            for rec in _read_records(self.records_path(name)):
                if rec["event"] == "end":
                    done.setdefault(rec["object"], set()).add(rec["version"])
        return done

    def unreconciled(self) -> list[str]:
        done = self.reconciled()
        live = set(self.live())
        label = shard_label(RING)
        left = []
        for obj in self.server.objects(CONFIG_MAP, "default"):
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get(label) not in live or meta["resourceVersion"] not in done.get(
                meta["name"], ()
            ):
                left.append(meta["name"])
        return left

    async def wait_converged(self) -> None:
        with anyio.move_on_after(CONVERGE_TIMEOUT):
            while self.unreconciled():  # noqa: ASYNC110 (the records are files written by other processes)
                await anyio.sleep(0.25)

    async def kill(self, identity: str) -> None:
        self.processes[identity].send_signal(signal.SIGKILL)
        await self.processes[identity].wait()
        self.killed_at[identity] = time.time()

    async def stop(self) -> None:
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(30):
            for process in running:
                await process.wait()
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    async def scenario(self) -> tuple[Report, float]:
        args = self.args
        for i in range(args.replicas):
            await self.start_replica(f"replica-{i}")
        # Objects are created once every replica holds its member Lease, so they are placed once.
        with anyio.move_on_after(CONVERGE_TIMEOUT):
            while len(self.members()) < args.replicas:  # noqa: ASYNC110 (see wait_converged)
                await anyio.sleep(0.1)
        names = [f"cm-{i:05d}" for i in range(args.objects)]
        for name in names:
            await self.api.create({"metadata": {"name": name}, "data": {"version": "0"}})
        # Updates begin once the ring has taken every object on (so they race reconciles and moves).
        with anyio.move_on_after(CONVERGE_TIMEOUT):
            while self.unreconciled():  # noqa: ASYNC110 (see wait_converged)
                await anyio.sleep(0.25)
        for i, name in enumerate(names):
            if args.kill_one and i == len(names) // 2:
                victim = self.assigner_holder() or self.live()[0]
                await self.kill(victim)
                print(
                    f"killed {victim} (it ran the assigner: {victim == self.assigner_holder()})", flush=True
                )
            await self.api.patch(name, {"data": {"version": "1"}})
        last_update = time.monotonic()
        await self.wait_converged()
        converged = time.monotonic() - last_update
        await self.stop()
        records = {name: _read_records(self.records_path(name)) for name in self.processes}
        return analyse(records, self.killed_at), converged


async def run_embedded(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="sharded-") as tmp:
        async with ApiServer() as server:
            demo = Demo(args, server, Path(tmp))
            try:
                report, converged = await demo.scenario()
            finally:
                with anyio.CancelScope(shield=True):
                    await demo.stop()
            final = {
                o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in server.objects(CONFIG_MAP)
            }
        unreconciled = [
            name for name, version in final.items() if version not in report.reconciled_versions(name)
        ]
        for first, second in report.overlaps[:10]:
            print(f"overlap: {first} and {second}", flush=True)
        print(
            f"sharding: {args.objects} objects, {args.replicas} replicas, {len(demo.killed_at)} killed, "
            f"{report.moves} moves, overlapping reconciles {len(report.overlaps)}, "
            f"unreconciled {len(unreconciled)}, converged in {converged:.1f}s",
            flush=True,
        )
        return 0 if not unreconciled and not report.overlaps else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replica"]:
        replica = argparse.ArgumentParser(prog="sharded replica")
        add_arguments(replica)
        anyio.run(run_replica, replica.parse_args(argv[1:]))
        return 0
    parser = argparse.ArgumentParser(prog="sharded", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--embedded", action="store_true", help="run everything against an embedded API server"
    )
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--kill-one", action="store_true", help="SIGKILL the assigner's replica midway")
    args = parser.parse_args(argv)
    if not args.embedded:
        parser.error("only --embedded is supported: in a cluster, deploy the chart with sharding.enabled")
    return anyio.run(run_embedded, args)
