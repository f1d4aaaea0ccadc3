"""The configmapgen example controller, run against the embedded API server, as a /metrics target.

Both run as subprocesses (Prometheus scrapes the controller over loopback like any other target):
``python -m kube_runtime.testing serve`` writes a kubeconfig, and ``python -m examples.configmapgen``
runs on it with its metrics and health listeners on free loopback ports.
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


def _wait(condition: Any, what: str, log: Path, timeout: float = 60) -> None:
    """Poll `condition` (another process's state: real time) until true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


class DemoController:
    """``with DemoController(tmp_path) as demo:`` serves the demo's metrics on ``demo.metrics_address``."""

    def __init__(self, workdir: Path, *, generators: int = 5) -> None:
        self.workdir = workdir
        self.generators = generators
        self.kubeconfig = workdir / "kubeconfig"
        self.metrics_address = f"127.0.0.1:{free_port()}"
        self.health_address = f"127.0.0.1:{free_port()}"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._generation = 0

    def _start(self, name: str, *args: str) -> Path:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            self._procs.append(
                subprocess.Popen(
                    [sys.executable, *args],
                    cwd=REPO,
                    env={**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"},
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
            server_log = self._start(
                "apiserver", "-m", "kube_runtime.testing", "serve", "--port", "0",
                "--kubeconfig", str(self.kubeconfig), "--bookmark-interval", "5",
            )  # fmt: skip
            _wait(lambda: "serving " in server_log.read_text(), "the embedded API server", server_log)
            controller_log = self._start(
                "configmapgen", "-m", "examples.configmapgen", "--install-crd",
                f"--metrics-bind-address={self.metrics_address}",
                f"--health-probe-bind-address={self.health_address}",
            )  # fmt: skip
            _wait(self._ready, "the controller's /readyz", controller_log)
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
        self._procs.clear()
