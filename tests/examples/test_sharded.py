"""``python -m examples.sharded``: the acceptance run (three replica processes, one SIGKILLed
midway), and the record checks it relies on."""

from __future__ import annotations

import re
import subprocess
import sys

from examples.sharded.check import analyse
from tests.examples.process import REPO

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
