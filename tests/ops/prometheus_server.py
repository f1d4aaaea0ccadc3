"""Run Debian's `prometheus` binary on loopback with monitoring/prometheus.yml, pointed at one target."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pytest
import yaml

__all__ = ["PrometheusServer", "free_port", "prometheus_binary"]

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "monitoring" / "prometheus.yml"


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if found is None:
        pytest.fail("prometheus binary not found (install Debian's `prometheus` package)", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    """``with PrometheusServer(tmp_path, target) as prom:`` runs prometheus until the block ends.

    The committed monitoring/prometheus.yml is used as is, except for the target address, a 1 s
    scrape and evaluation interval, and the rule file path made absolute.
    """

    def __init__(self, workdir: Path, target: str, *, interval: str = "1s") -> None:
        self.workdir = workdir
        self.target = target
        self.interval = interval
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    def _write_config(self) -> Path:
        config = yaml.safe_load(CONFIG.read_text())
        config["global"]["scrape_interval"] = self.interval
        config["global"]["evaluation_interval"] = self.interval
        config["rule_files"] = [str((CONFIG.parent / path).resolve()) for path in config["rule_files"]]
        (job,) = config["scrape_configs"]
        job["static_configs"] = [{"targets": [self.target]}]
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def __enter__(self) -> PrometheusServer:
        config = self._write_config()
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    prometheus_binary(),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.wait_for(lambda: self._ready() or None, what="prometheus /-/ready", timeout=60)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with {self._proc.returncode}:\n{self.log_path.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns `data`, raising on an API error."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(self, probe: Callable[[], T | None], *, what: str, timeout: float = 60) -> T:
        """Poll `probe` until it returns something other than None (an external process: real time)."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise TimeoutError(f"waited {timeout}s for {what}\nprometheus log:\n{log[-3000:]}")
            time.sleep(0.25)
