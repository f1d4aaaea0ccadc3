"""End-to-end fixtures: real control planes shared per module, and the recovery-time report.

Every test module here is marked ``envtest``; its tests need the binaries of scripts/build-envtest.sh
(without them the fixtures skip, naming what is missing). Each control plane runs in its own thread
(:class:`ThreadedEnvtest`), so a module shares one while every test keeps its own event loop.

Recovery times measured by the fault scenarios go into each test's report properties and onto stdout
(``-s``); with ``KUBE_RUNTIME_E2E_RESULTS=1`` set, also into ``benches/results/e2e-recovery.md`` at
the end of the session (a normal test run leaves the checkout untouched).
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kube_runtime.testing.envtest import EnvtestBinaries, ThreadedEnvtest, locate_or_skip

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benches" / "results" / "e2e-recovery.md"


@pytest.fixture(scope="module")
def fault_env() -> Iterator[ThreadedEnvtest]:
    """etcd + kube-apiserver without the watch cache (a resumed watch goes to etcd, so compaction gives
    410), RBAC on; shared by the fault scenarios of a module, each in its own namespace."""
    with ThreadedEnvtest(locate_or_skip(), watch_cache=False) as hosted:
        yield hosted


@pytest.fixture(scope="module")
def cluster_env() -> Iterator[ThreadedEnvtest]:
    """etcd + kube-apiserver + kube-controller-manager (garbage collector, namespace controller, ...)
    shared by a module. The root CA publisher is off, so a namespace holds only what a test puts in."""
    controllers = ("*", "-root-ca-certificate-publisher-controller")
    with ThreadedEnvtest(
        locate_or_skip(controller_manager=True), controller_manager=True, controllers=controllers
    ) as h:
        yield h


#: The type of pytest's ``record_property`` fixture.
RecordProperty = Callable[[str, object], None]


@dataclass
class Recovery:
    scenario: str
    seconds: float
    detail: str


@dataclass
class RecoveryLog:
    rows: list[Recovery] = field(default_factory=list)

    def add(self, scenario: str, seconds: float, detail: str) -> None:
        self.rows.append(Recovery(scenario, seconds, detail))


@pytest.fixture(scope="session")
def recovery_log() -> Iterator[RecoveryLog]:
    log = RecoveryLog()
    yield log
    if log.rows and os.environ.get("KUBE_RUNTIME_E2E_RESULTS", "") not in ("", "0"):
        write_summary(log)


def write_summary(log: RecoveryLog) -> None:
    """benches/results/e2e-recovery.md: one row per scenario measured in this session."""
    versions: dict[str, str] = {}
    listing = EnvtestBinaries.locate().kube_apiserver.parent / "versions.txt"
    if listing.is_file():
        for line in listing.read_text().splitlines():
            key, _, version = line.partition("=")
            versions.setdefault(key, version)  # the first entry per name is its version
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reflector recovery against a real kube-apiserver",
        "",
        f"Measured by tests/e2e/test_reflector_faults.py on {now}: "
        f"kube-apiserver {versions.get('kubernetes', '?')}, etcd {versions.get('etcd', '?')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs.",
        "",
        "A watcher + reflector (kube-rs default backoff) caches one namespace's ConfigMaps while a writer "
        "keeps changing them. Recovery is the time from the fault's repair (server back, history "
        "reachable again, permission restored) until the store holds exactly the server's objects "
        "(same uid and resourceVersion set), with the writer stopped after 10 more successful writes.",
        "",
        "| scenario | recovery (s) | what the reflector saw |",
        "|---|---:|---|",
        *(f"| {r.scenario} | {r.seconds:.2f} | {r.detail} |" for r in log.rows),
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
