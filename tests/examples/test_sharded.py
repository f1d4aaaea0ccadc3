"""``python -m examples.sharded``: the acceptance run (three replica processes, one SIGKILLed
midway), and the record checks it relies on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from examples.sharded.check import analyse
from kube_runtime.client import Api
from kube_runtime.sharding import shard_label
from kube_runtime.testing.server import ApiServer
from tests.examples.process import LOCAL_LISTENERS, REPO, WAIT

LAST_LINE = re.compile(
    r"sharding: (\d+) objects, (\d+) replicas, (\d+) killed, (\d+) moves, "
    r"overlapping reconciles (\d+), unreconciled (\d+), converged in (\d+\.\d)s"
)


def test_three_replicas_one_killed_converge_without_overlaps() -> None:
    command = [sys.executable, "-m", "examples.sharded", "--embedded", "--replicas", "3", "--objects", "300"]
    result = subprocess.run(
        [*command, "--kill-one"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    last = result.stdout.strip().splitlines()[-1]
    match = LAST_LINE.fullmatch(last)
    assert match, result.stdout + result.stderr
    objects, replicas, killed, moves, overlaps, unreconciled, _ = match.groups()
    assert (objects, replicas, killed, overlaps, unreconciled) == ("300", "3", "1", "0", "0")
    assert int(moves) > 0  # the killed replica's objects moved
    assert result.returncode == 0


def rec(replica: str, event: str, time: float, version: str = "1", name: str = "o") -> dict[str, object]:
    return {"replica": replica, "object": name, "version": version, "event": event, "time": time}


def test_records_overlap_across_replicas_is_found() -> None:
    report = analyse({"a": [rec("a", "start", 1.0), rec("a", "end", 3.0)], "b": [rec("b", "start", 2.0)]}, {})
    assert len(report.overlaps) == 1
    assert report.moves == 1


def test_a_killed_replicas_open_reconcile_lasts_until_the_kill() -> None:
    records = {"a": [rec("a", "start", 1.0)], "b": [rec("b", "start", 5.0), rec("b", "end", 6.0, "2")]}
    assert analyse(records, {"a": 4.0}).overlaps == []
    assert len(analyse(records, {"a": 5.5}).overlaps) == 1
    assert len(analyse(records, {}).overlaps) == 1  # never killed: it may still be running
    assert analyse(records, {"a": 4.0}).reconciled_versions("o") == {"2"}


def test_sequential_reconciles_on_one_replica_are_no_overlap() -> None:
    records = {
        "a": [rec("a", "start", 1.0), rec("a", "end", 2.0), rec("a", "start", 2.0), rec("a", "end", 3.0)]
    }
    report = analyse(records, {})
    assert report.overlaps == []
    assert report.moves == 0
    assert report.reconciled_versions("o") == {"1"}


async def test_configmapgen_replicas_share_the_generators(api_server: ApiServer, tmp_path: Path) -> None:
    """What the chart runs with sharding.enabled: configmapgen processes with --shard-ring."""
    client = api_server.client
    await install_crd(client)
    generators = Api(client, CONFIG_MAP_GENERATOR, "default")
    body = {"apiVersion": CONFIG_MAP_GENERATOR.api_version, "kind": CONFIG_MAP_GENERATOR.kind}
    for i in range(12):
        await generators.create({**body, "metadata": {"name": f"g{i}"}, "spec": {"content": f"c{i}"}})
    env = {**os.environ, "KUBECONFIG": str(api_server.kubeconfig_path), "POD_NAMESPACE": "default"}
    command = [sys.executable, "-m", "examples.configmapgen", "--shard-ring", "gen", *LOCAL_LISTENERS]
    logs = [(tmp_path / f"r{i}.log").open("wb") for i in range(2)]
    processes = [
        await anyio.open_process(
            [*command, "--shard-identity", f"r{i}"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        for i, log in enumerate(logs)
    ]
    label = shard_label("gen")

    def done() -> bool:
        owners = {
            g["metadata"]["name"]: (g["metadata"].get("labels") or {}).get(label)
            for g in api_server.objects(CONFIG_MAP_GENERATOR)
        }
        maps = {
            c["metadata"]["name"]: (c.get("data") or {}).get("content")
            for c in api_server.objects(CONFIG_MAP, "default")
        }
        return set(owners.values()) == {"r0", "r1"} and all(maps.get(f"g{i}") == f"c{i}" for i in range(12))

    try:
        with anyio.fail_after(WAIT):
            while not done():  # noqa: ASYNC110 (the replicas are other processes)
                await anyio.sleep(0.2)
        for process in processes:
            process.send_signal(signal.SIGTERM)
        with anyio.fail_after(WAIT):
            codes = [await process.wait() for process in processes]
        assert codes == [0, 0], [log.name for log in logs]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
        for log in logs:
            log.close()
