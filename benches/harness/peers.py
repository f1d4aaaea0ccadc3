"""The peers (benches/peers/) and one running peer process speaking the peer protocol."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.procfs import cpu_seconds, memory_kib, reset_peak

__all__ = ["PEERS", "Peer", "PeerRun", "PeerTimeout", "available_peers"]

BENCHES = Path(__file__).resolve().parent.parent
PY_PEERS = BENCHES / "peers" / "python"
PEERS_DIR = Path(os.environ.get("KR_PEERS_DIR", Path.home() / ".cache" / "kube-runtime" / "peers"))


@dataclass(frozen=True)
class Peer:
    """One program under test. ``controller``: it has a controller mode; ``variants``: cache variants."""

    name: str
    argv: tuple[str, ...]
    controller: bool = False
    variants: tuple[str, ...] = ("full",)
    env: tuple[tuple[str, str], ...] = ()
    library: str = ""
    #: A source tree whose ``kube_runtime`` the peer imports instead of the installed one (a baseline).
    source: str | None = None

    def missing(self) -> str | None:
        """Why the peer cannot run here (None when it can)."""
        exe = self.argv[0]
        if exe == sys.executable:
            mod = {
                "kopf": "kopf",
                "official": "kubernetes",
                "kubernetes_asyncio": "kubernetes_asyncio",
                "kr8s": "kr8s",
                "raw (streams)": "uvloop",
            }.get(self.name)
            if mod is not None:
                try:
                    __import__(mod)
                except ImportError as exc:
                    return f"python package not installed ({exc}); pip install -r benches/requirements.txt"
            return None
        if not Path(exe).exists():
            return f"binary {exe} not built (run benches/build_peers.sh)"
        return None

    def version(self) -> str:
        if self.library.startswith("py:"):
            from importlib.metadata import PackageNotFoundError, version

            dist = self.library[3:]
            try:
                return f"{dist} {version(dist)}"
            except PackageNotFoundError:
                return f"{dist} (not installed)"
        return self.library


def _py(script: str) -> tuple[str, ...]:
    return (sys.executable, str(PY_PEERS / script))


PEERS: dict[str, Peer] = {
    p.name: p
    for p in [
        Peer(
            "kube-runtime",
            _py("kube_runtime_peer.py"),
            controller=True,
            # full/strip: the default (compact) store; dict/dict-strip: the opt-out shared-dict store
            variants=("full", "strip", "metadata", "dict", "dict-strip"),
            library="py:kube-runtime",
        ),
        Peer(
            "kube-runtime (uvloop)",
            _py("kube_runtime_peer.py"),
            controller=True,
            variants=("full", "strip", "metadata", "dict", "dict-strip"),
            env=(("KR_PEER_LOOP", "uvloop"),),
            library="py:uvloop",
        ),
        Peer(
            "kube-rs",
            (str(PEERS_DIR / "kube-rs-target" / "release" / "kube-rs-peer"),),
            controller=True,
            variants=("full", "strip", "metadata"),
            library="kube 5.0.0 (crates.io), k8s-openapi 0.29.0",
        ),
        Peer(
            "controller-runtime",
            (str(PEERS_DIR / "controller-runtime-peer"),),
            controller=True,
            variants=("full", "strip", "metadata"),
            env=(("GOMAXPROCS", "1"),),
            library="controller-runtime v0.25.2, client-go v0.37.0 (Go module proxy)",
        ),
        Peer("kopf", _py("kopf_peer.py"), controller=True, library="py:kopf"),
        Peer("official", _py("official_peer.py"), library="py:kubernetes"),
        Peer("kubernetes_asyncio", _py("k8s_asyncio_peer.py"), library="py:kubernetes_asyncio"),
        Peer("kr8s", _py("kr8s_peer.py"), library="py:kr8s"),
        Peer("raw (gc off)", _py("raw_peer.py"), True, env=(("RAW_PEER_GC", "off"),), library="py:httpx"),
        Peer("raw (gc on)", _py("raw_peer.py"), True, env=(("RAW_PEER_GC", "on"),), library="py:httpx"),
        Peer(
            "raw (streams)",
            _py("raw_peer.py"),
            True,
            env=(("RAW_PEER_GC", "on"), ("RAW_PEER_HTTP", "streams"), ("RAW_PEER_LOOP", "uvloop")),
            library="py:uvloop",
        ),
    ]
}

RAW = ("raw (gc off)", "raw (gc on)", "raw (streams)")


def available_peers(names: list[str]) -> tuple[list[Peer], dict[str, str]]:
    """The peers that can run here, and why each other one cannot."""
    ok: list[Peer] = []
    missing: dict[str, str] = {}
    for name in names:
        peer = PEERS[name]
        why = peer.missing()
        if why is None:
            ok.append(peer)
        else:
            missing[name] = why
    if shutil.which("taskset") is None:
        missing["(pinning)"] = "taskset not found: processes are not pinned to cores"
    return ok, missing


class PeerTimeout(Exception):
    pass


@dataclass
class PeerRun:
    """A running peer: ``with PeerRun(peer, ...) as run``; reports arrive on a reader thread."""

    peer: Peer
    kubeconfig: Path
    namespace: str
    resource: str = "configmaps"
    mode: str = "watch"
    concurrency: int = 1
    reconcile_ms: float = 0.0
    variant: str = "full"
    cpu: int | None = 1
    env: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    synced: dict[str, Any] | None = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()
        self._tmp = tempfile.TemporaryDirectory(prefix="kr-peer-")
        self.dump_path = Path(self._tmp.name) / "dump.json"
        self.stderr_path = Path(self._tmp.name) / "stderr.log"

    def __enter__(self) -> PeerRun:
        argv = [
            *self.peer.argv,
            "--kubeconfig",
            str(self.kubeconfig),
            "--namespace",
            self.namespace,
            "--resource",
            self.resource,
            "--mode",
            self.mode,
            "--concurrency",
            str(self.concurrency),
            "--reconcile-ms",
            str(self.reconcile_ms),
            "--variant",
            self.variant,
        ]
        if self.cpu is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", str(self.cpu), *argv]
        env = {
            **os.environ,
            **dict(self.peer.env),
            **self.env,
            "BENCH_DUMP": str(self.dump_path),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PY_PEERS), self.peer.source, os.environ.get("PYTHONPATH")])
            ),
        }
        self._stderr = open(self.stderr_path, "w")
        self.started = time.time()
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env, cwd=str(PY_PEERS)
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._stderr.close()
        self._tmp.cleanup()

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            rec["recv"] = time.time()
            with self._cond:
                if "synced" in rec:
                    self.synced = rec
                    rec["cpu"] = cpu_seconds(self.pid)
                    rec.update(memory_kib(self.pid))
                elif rec.get("final"):
                    self.final = rec
                else:
                    self.reports.append(rec)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_synced(self, timeout: float) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: self.synced is not None or not self.alive(), timeout):
                raise PeerTimeout(f"{self.peer.name}: no store-ready within {timeout:.0f}s")
        if self.synced is None:
            raise PeerTimeout(f"{self.peer.name} exited before store-ready: {self.stderr_tail()}")
        return self.synced

    def events(self) -> int:
        with self._cond:
            return int(self.reports[-1]["events"]) if self.reports else 0

    def wait_events(self, count: int, timeout: float) -> bool:
        """Wait until the peer has reported at least ``count`` events."""
        with self._cond:
            return (
                self._cond.wait_for(lambda: self.events_unlocked() >= count or not self.alive(), timeout)
                and self.events_unlocked() >= count
            )

    def events_unlocked(self) -> int:
        return int(self.reports[-1]["events"]) if self.reports else 0

    def wait_quiet(self, quiet: float = 1.5, timeout: float = 30.0) -> int:
        """Wait until the event count has not moved for ``quiet`` seconds; returns it."""
        deadline = time.time() + timeout
        last, since = self.events(), time.time()
        while time.time() < deadline:
            time.sleep(0.25)
            now = self.events()
            if now != last:
                last, since = now, time.time()
            elif time.time() - since >= quiet:
                break
        return last

    def windows(self, start: float, end: float | None = None) -> list[dict[str, Any]]:
        """Reports whose one-second window ended in ``[start, end]``."""
        with self._cond:
            return [r for r in self.reports if r["t"] >= start and (end is None or r["t"] <= end)]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def memory_kib(self) -> dict[str, int]:
        return memory_kib(self.pid)

    def reset_peak(self) -> bool:
        return reset_peak(self.pid)

    def stop(self, timeout: float = 15.0) -> dict[str, str] | None:
        """SIGTERM; returns the peer's cache dump ({"ns/name": rv}) when it wrote one."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        try:
            return json.loads(self.dump_path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None
