"""One replica of the sharded ConfigMap controller, as its own process.

    python -m examples.sharded replica --identity replica-0 --records replica-0.jsonl [--kubeconfig PATH]

It joins the ring ``configmaps`` with a member Lease named after ``--identity`` and reconciles the
ConfigMaps labelled for it. Each reconcile appends a ``start`` record before it does anything and an
``end`` record when it returns, one JSON line each (``replica``, ``object``, ``version`` = the
resourceVersion it reconciled, ``event``, ``time`` = wall-clock seconds), written with a single
``write`` to a file opened for appending, so a SIGKILL loses at most the record being written. The
records are how :mod:`examples.sharded.main` checks, from the outside, that no object was ever
reconciled by two replicas at overlapping times. SIGTERM leaves the ring gracefully.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import anyio
import orjson
import structlog

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action, Controller

__all__ = ["RING", "Records", "add_arguments", "run_replica"]

RING = "configmaps"
CONFIG_MAP = ApiResource.builtin("ConfigMap")
log = structlog.get_logger("examples.sharded")


class Records:
    """Appends reconcile records to a file (one ``os.write`` per record, no buffering in between)."""

    def __init__(self, path: str, replica: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._replica = replica

    def write(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        record = {
            "replica": self._replica,
            "object": meta["name"],
            "version": meta["resourceVersion"],
            "event": event,
            "time": time.time(),
        }
        os.write(self._fd, orjson.dumps(record) + b"\n")

    def close(self) -> None:
        os.close(self._fd)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--identity", required=True, help="this replica's name (its member Lease)")
    parser.add_argument("--records", required=True, help="file to append reconcile records to")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default: $KUBECONFIG or in-cluster)")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--work", type=float, default=0.02, help="seconds each reconcile takes")
    parser.add_argument("--lease-duration", type=float, default=6.0)
    parser.add_argument("--renew-deadline", type=float, default=4.0)
    parser.add_argument("--retry-period", type=float, default=1.0)


async def run_replica(args: argparse.Namespace) -> None:
    records = Records(args.records, args.identity)
    client = Client.from_kubeconfig(args.kubeconfig) if args.kubeconfig else await Client.infer()

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        records.write("start", obj)
        try:
            await anyio.sleep(args.work)  # the controller's work
        finally:
            records.write("end", obj)
        return Action.await_change()

    async with client:
        sharded = (
            Controller(Api(client, CONFIG_MAP, args.namespace), name="configmaps")
            .with_config(concurrency=8)
            .shutdown_on_signal()
            .sharded(
                ring=RING,
                lease_namespace=args.namespace,
                identity=args.identity,
                lease_duration=args.lease_duration,
                renew_deadline=args.renew_deadline,
                retry_period=args.retry_period,
            )
        )
        log.info("joining", ring=RING, identity=args.identity)
        await sharded.run(reconcile, None, None)
    records.close()
    log.info("left", ring=RING, identity=args.identity)
