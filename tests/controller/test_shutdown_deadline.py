"""A graceful shutdown has a deadline: hung reconciles are cancelled, and the cancellation is
logged. Virtual clock: the deadline's seconds pass instantly."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kube_runtime.client.json import KubeObject
from kube_runtime.controller import Action, Controller, ControllerConfig
from kube_runtime.controller.shutdown import DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
from kube_runtime.store import store
from kube_runtime.watcher import Init, InitApply, InitDone
from tests.controller.conftest import CONFIG_MAP

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]


def synthetic(name: str) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "1", "uid": name},
    }


async def listed(writer: Any, objects: list[KubeObject]) -> AsyncIterator[Any]:
    writer.apply_watcher_event(Init())
    for obj in objects:
        writer.apply_watcher_event(InitApply(obj))
    writer.apply_watcher_event(InitDone())
    for obj in objects:
        yield obj
    await anyio.sleep_forever()


class Hung:
    """A reconcile that never finishes, recording its start and its cancellation."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.all_started = anyio.Event()

    async def __call__(self, obj: KubeObject, _ctx: Any) -> Action:
        name = obj["metadata"]["name"]
        self.started.append(name)
        if len(self.started) == self.count:
            self.all_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(name)
            raise
        raise AssertionError("unreachable")  # pragma: no cover


def controller_for(names: list[str]) -> Controller:
    reader, writer = store(CONFIG_MAP)
    return Controller.for_stream(CONFIG_MAP, listed(writer, [synthetic(n) for n in names]), reader)


async def test_hung_reconciles_are_cancelled_at_the_deadline_and_named_in_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reconcile = Hung(2)
    stop = anyio.Event()
    controller = controller_for(["a", "b"]).graceful_shutdown_on(stop).with_graceful_shutdown_timeout(10)
    caplog.set_level(logging.WARNING, logger="kube_runtime.controller")
    run = controller.run(reconcile, None, None)
    with anyio.fail_after(100):
        async with run as results:
            await reconcile.all_started.wait()
            stop.set()
            began = anyio.current_time()
            items = [item async for item in results]  # ends: the run stops by itself
            ended = anyio.current_time()
    assert run.forced_shutdown  # reconciles were cancelled mid-way
    assert items == []  # the cancelled reconciles yield nothing
    assert 10 <= ended - began < 11
    assert sorted(reconcile.cancelled) == ["a", "b"]
    [record] = [r for r in caplog.records if "graceful shutdown timed out" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "after 10s; cancelling 2 running reconcile(s)" in record.getMessage()
    assert sorted(record.cancelled) == ["ConfigMap.v1./a.default", "ConfigMap.v1./b.default"]  # type: ignore[attr-defined]
    assert all(ref in record.getMessage() for ref in record.cancelled)  # type: ignore[attr-defined]
    assert record.controller == controller.name  # type: ignore[attr-defined]


async def test_reconciles_finishing_in_time_are_not_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    done = anyio.Event()
    started = anyio.Event()

    async def reconcile(obj: KubeObject, _ctx: Any) -> Action:
        started.set()
        await anyio.sleep(9)
        done.set()
        return Action.await_change()

    stop = anyio.Event()
    controller = controller_for(["a"]).graceful_shutdown_on(stop).with_graceful_shutdown_timeout(10)
    run = controller.run(reconcile, None, None)
    with anyio.fail_after(100):
        async with run as results:
            await started.wait()
            stop.set()
            items = [item async for item in results]
    assert not run.forced_shutdown
    assert done.is_set()
    assert len(items) == 1
    assert "graceful shutdown timed out" not in caplog.text


async def test_no_timeout_waits_for_ever() -> None:
    reconcile = Hung(1)
    stop = anyio.Event()
    controller = controller_for(["a"]).graceful_shutdown_on(stop).with_graceful_shutdown_timeout(None)
    async with controller.run(reconcile, None, None) as results:
        await reconcile.all_started.wait()
        stop.set()
        with anyio.move_on_after(10_000) as waited:
            async for _ in results:
                pass  # pragma: no cover
        assert waited.cancelled_caught  # still running: nothing cancelled it
        assert reconcile.cancelled == []
    assert reconcile.cancelled == ["a"]  # leaving the block is the forceful stop


async def test_a_run_shut_down_before_it_started_still_has_the_deadline() -> None:
    reconcile = Hung(1)
    controller = controller_for(["a"]).with_graceful_shutdown_timeout(0)
    run = controller.run(reconcile, None, None)
    run.shutdown()
    with anyio.fail_after(5):
        async with run as results:
            assert [item async for item in results] == []
    assert not run.forced_shutdown  # the deadline passed with nothing running


def test_the_default_is_below_kubernetes_default_grace_period() -> None:
    assert ControllerConfig().graceful_shutdown_timeout == DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT == 25
    with pytest.raises(ValueError, match="graceful_shutdown_timeout"):
        ControllerConfig(graceful_shutdown_timeout=-1)


def test_sigterm_to_a_process_with_a_hung_reconcile_exits_within_the_grace(tmp_path: Path) -> None:
    """A real SIGTERM to a real controller process (embedded API server) whose reconcile hangs:
    it exits 0 shortly after the configured timeout, having logged which reconcile it cancelled."""
    grace = 2.0
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.controller.hung_controller",
                f"--graceful-shutdown-timeout={grace}",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the reconcile is running (pytest's timeout bounds it)
        assert first == "hanging default/stuck\n", stderr.read_text()[-2000:]
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=grace + 20)
        elapsed = time.monotonic() - signalled
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = stderr.read_text()
    assert code == 0, log[-3000:]
    assert grace <= elapsed < grace + 10, (elapsed, log[-3000:])
    assert "run ended" in rest
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    [timed_out] = [r for r in records if "graceful shutdown timed out" in r["event"]]
    assert timed_out["level"] == "warning"
    assert timed_out["cancelled"] == ["ConfigMap.v1./stuck.default"]
    assert timed_out["controller"] == "hung"
    assert "ConfigMap.v1./stuck.default" in timed_out["event"]
