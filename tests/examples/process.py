"""Runs an example as its own process (``python -m examples.<name> ...``) and observes it from the
outside, as an operator would: its JSON log lines on stderr, ``/metrics`` scraped over HTTP, the
probes, and its exit status after SIGTERM.

Each example runs in a fresh interpreter, so it uses prometheus_client's global registry exactly as
written (no per-test registry threading) and binds its metrics and probe listeners to free ports
(``127.0.0.1:0``), announced in its ``serving`` log line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
from anyio.abc import Process
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Example", "Samples", "run_example", "value"]

REPO = Path(__file__).resolve().parents[2]
LOCAL_LISTENERS = ("--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0")
#: Upper bound for anything the test waits for (a condition, never a timing assertion).
WAIT = 60.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Example:
    """A running example process."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.logs: list[dict[str, Any]] = []
        self.stray: list[str] = []  # stderr lines that are not JSON log records
        self.exited = False
        self._arrived = anyio.Event()
        self.http = httpx.AsyncClient(timeout=10)
        self.metrics_url = ""
        self.health_url = ""

    # -- logs ---------------------------------------------------------------------------------------

    async def read_stderr(self) -> None:
        assert self.process.stderr is not None
        pending = b""
        async for chunk in self.process.stderr:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._add(line)
        self._add(pending)
        self.exited = True
        self._notify()

    def _add(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            self.logs.append(record)
        else:
            self.stray.append(line.decode(errors="replace"))
        self._notify()

    def _notify(self) -> None:
        self._arrived.set()
        self._arrived = anyio.Event()

    def matching(self, event: str, /, **fields: Any) -> list[dict[str, Any]]:
        return [
            r for r in self.logs if r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
        ]

    async def wait_for_log(self, event: str, /, **fields: Any) -> dict[str, Any]:
        """The first log record with this ``event`` and these fields (waits for it)."""
        with anyio.fail_after(WAIT):
            while not (found := self.matching(event, **fields)):
                if self.exited:
                    raise AssertionError(f"exited before logging {event!r} {fields}:\n{self.tail()}")
                await self._arrived.wait()
        return found[0]

    def library_noise(self) -> list[dict[str, Any]]:
        """uvicorn's INFO lifecycle lines, or any record carrying its ANSI ``color_message``:
        the default log filter and renderer keep both out."""
        return [
            r
            for r in self.logs
            if "color_message" in r
            or (str(r.get("logger", "")).startswith("uvicorn") and r["level"] == "info")
        ]

    def tail(self, lines: int = 30) -> str:
        return "\n".join([*(orjson.dumps(r).decode() for r in self.logs[-lines:]), *self.stray[-lines:]])

    # -- HTTP ---------------------------------------------------------------------------------------

    async def scrape(self) -> Samples:
        response = await self.http.get(f"{self.metrics_url}/metrics")
        assert response.status_code == 200, response.text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    async def scrape_until(self, condition: Callable[[Samples], bool]) -> Samples:
        """Scrape until ``condition`` holds for a scrape (for state the example does not log)."""
        with anyio.fail_after(WAIT):
            while not condition(samples := await self.scrape()):  # noqa: ASYNC110  (another process)
                await anyio.sleep(0.05)
        return samples

    async def probe(self, path: str) -> httpx.Response:
        return await self.http.get(f"{self.health_url}{path}")

    # -- lifetime -----------------------------------------------------------------------------------

    async def stop(self) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(WAIT):
            return await self.process.wait()


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    """One sample's value, ``None`` when the series does not exist."""
    return samples.get((metric, frozenset(labels.items())))


@asynccontextmanager
async def run_example(module: str, *args: str, kubeconfig: Path | None = None) -> AsyncIterator[Example]:
    """Start ``python -m <module> <args>`` with JSON logs, the default log filter, no OpenTelemetry
    configuration and local listeners; yields once it serves its metrics and probes. Kills it on
    exit if it is still running."""
    inherited = ("KUBECONFIG", "KUBE_RUNTIME_LOG")
    env = {k: v for k, v in os.environ.items() if k not in inherited and not k.startswith("OTEL_")}
    env |= {"KUBE_RUNTIME_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    command = [sys.executable, "-m", module, *LOCAL_LISTENERS, *args]
    process = await anyio.open_process(
        command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    example = Example(process)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(example.read_stderr)
            serving = await example.wait_for_log("serving")
            example.metrics_url, example.health_url = serving["metrics"], serving["probes"]
            try:
                yield example
            finally:
                with anyio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.kill()
                    await process.wait()
                    await example.http.aclose()
    finally:
        with anyio.CancelScope(shield=True):
            await process.aclose()
