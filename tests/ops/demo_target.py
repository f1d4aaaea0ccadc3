"""The configmapgen demo as a /metrics target: ``python -m examples.configmapgen --embedded
--keep-running`` in a subprocess (Prometheus scrapes it over loopback like any other target), with
its metrics and health listeners on free loopback ports. It runs its scripted scenario, then keeps
serving; the embedded API server's kubeconfig it writes lets :meth:`DemoController.churn` create
and change generators so that reconciles keep happening.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio

from tests.ops.prometheus_server import free_port

__all__ = ["DemoController"]

REPO = Path(__file__).resolve().parents[2]


def python_module(module: str, *args: str) -> list[str]:
    """The command running ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def _wait(
    condition: Any, what: str, log: Path, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `condition` (another process's state: real time) until true; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"exited with {proc.returncode} while waiting for {what}\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


class DemoController:
    """``with DemoController(tmp_path) as demo:`` serves the demo's metrics on ``demo.metrics_address``.

    ``log`` is the demo's output (stdout and stderr); ``returncodes`` holds its exit status once the
    block has left (it is stopped with SIGTERM, i.e. a graceful shutdown).
    """

    def __init__(self, workdir: Path, *, generators: int = 5) -> None:
        self.workdir = workdir
        self.generators = generators
        self.kubeconfig = workdir / "kubeconfig"
        self.metrics_address = f"127.0.0.1:{free_port()}"
        self.health_address = f"127.0.0.1:{free_port()}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self.log = workdir / "configmapgen.log"
        self.returncodes: list[int] = []
        self._generation = 0

    def _start(self, name: str, command: list[str]) -> Path:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            self._procs.append(
                subprocess.Popen(
                    command,
                    cwd=REPO,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return log

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.health_address}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def __enter__(self) -> DemoController:
        try:
            log = self._start(
                "configmapgen",
                python_module(
                    "examples.configmapgen", "--embedded", "--keep-running",
                    f"--write-kubeconfig={self.kubeconfig}",
                    f"--metrics-bind-address={self.metrics_address}",
                    f"--health-probe-bind-address={self.health_address}",
                ),
            )  # fmt: skip
            proc = self._procs[-1]
            _wait(lambda: "scenario finished" in log.read_text(), "the demo's scenario", log, 90, proc)
            _wait(self._ready, "the controller's /readyz", log, proc=proc)
            self.churn()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def churn(self) -> None:
        """Create the sample generators, or change their content, so reconciles keep happening."""
        self._generation += 1
        anyio.run(self._apply_generators, self._generation)

    async def _apply_generators(self, generation: int) -> None:
        from examples.configmapgen.crd import CONFIG_MAP_GENERATOR
        from kube_runtime.client import Api, Client

        async with Client.from_kubeconfig(str(self.kubeconfig)) as client:
            api = Api(client, CONFIG_MAP_GENERATOR, "default")
            for i in range(self.generators):
                content = {"spec": {"content": f"generation {generation}"}}
                if generation == 1:
                    body = {"apiVersion": CONFIG_MAP_GENERATOR.api_version, "kind": CONFIG_MAP_GENERATOR.kind,
                            "metadata": {"name": f"sample-{i}"}, **content}  # fmt: skip
                    await api.create(body)
                else:
                    await api.patch(f"sample-{i}", content)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            self.returncodes.append(proc.returncode)
        self._procs.clear()
