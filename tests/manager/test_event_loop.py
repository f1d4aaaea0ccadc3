"""The event loop a controller process runs on (kube_runtime.manager.event_loop)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kube_runtime.manager import run_event_loop, uses_uvloop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_auto_picks_uvloop_where_it_is_installed_and_asyncio_is_asked_for_explicitly() -> None:
    assert uses_uvloop("auto") is True  # uvicorn[standard], a dependency, installs it here
    assert run_event_loop(_loop_module).startswith("uvloop")
    assert run_event_loop(_loop_module, event_loop="uvloop").startswith("uvloop")
    assert run_event_loop(_loop_module, event_loop="asyncio").startswith("asyncio")


def test_auto_falls_back_to_asyncio_without_uvloop_and_uvloop_then_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # an import of it now fails, as where it is absent
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "uvloop" else object())
    assert uses_uvloop("auto") is False
    assert run_event_loop(_loop_module).startswith("asyncio")
    with pytest.raises(ImportError, match="uvloop"):
        run_event_loop(_loop_module, event_loop="uvloop")


def test_an_unknown_choice_is_a_value_error() -> None:
    bad: Any = "trio"
    with pytest.raises(ValueError, match="'auto', 'asyncio' or 'uvloop'"):
        uses_uvloop(bad)


@pytest.fixture(scope="module")
def served_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The embedded API server in a process of its own (Manager.main runs a loop of its own)."""
    kubeconfig = tmp_path_factory.mktemp("apiserver") / "kubeconfig"
    argv = [sys.executable, "-m", "kube_runtime.testing", "serve", "--kubeconfig", str(kubeconfig)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            assert "serving" in server.stdout.readline()
            yield kubeconfig
        finally:
            server.terminate()


# Manager.main sets up process-wide logging and tracing: it runs in a process of its own.
_MAIN = """
import asyncio, sys
from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import Action
from kube_runtime.manager import Manager

CONFIGMAP = ApiResource.builtin("ConfigMap")
choice = sys.argv[1]
name = "on-" + choice

async def setup(manager):
    async def reconcile(obj, _ctx):
        seen = obj["metadata"]["name"]
        print("reconciled", seen, "on", type(asyncio.get_running_loop()).__module__, flush=True)
        if seen == name:
            manager.stop()
        return Action.await_change()

    manager.add(manager.controller(CONFIGMAP), reconcile, None, None)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    await Api(manager.client, CONFIGMAP, "default").create(body)

flags = ["--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--log=error"]
sys.exit(Manager.main("loop-check", setup, flags, event_loop=choice))
"""


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_manager_main_runs_its_controllers_on_the_chosen_loop(choice: str, served_kubeconfig: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(served_kubeconfig)}
    done = subprocess.run(
        [sys.executable, "-c", _MAIN, choice], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("reconciled ")]
    assert f"on-{choice}" in {line[1] for line in lines}  # the watch saw it, its reconcile ran...
    assert all(line[3].startswith(choice) for line in lines)  # ...on the loop asked for


async def test_the_suite_runs_on_the_loop_it_was_asked_for() -> None:
    """KUBE_RUNTIME_TEST_LOOP=uvloop (tests/test_on_uvloop.py) must really put the tests on uvloop."""
    module = await _loop_module()
    expected = "uvloop" if os.environ.get("KUBE_RUNTIME_TEST_LOOP") == "uvloop" else "asyncio"
    assert module.startswith(expected)


_HANG = """
import sys
import anyio
from kube_runtime.client import Api, ApiResource
from kube_runtime.manager import Manager

CONFIGMAP = ApiResource.builtin("ConfigMap")

async def setup(manager):
    async def reconcile(obj, _ctx):
        print("hanging", flush=True)
        await anyio.sleep_forever()

    manager.add(manager.controller(CONFIGMAP), reconcile, None, None)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": sys.argv[1]}}
    await Api(manager.client, CONFIGMAP, "default").create(body)

flags = ["--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0", "--log=info",
         "--graceful-shutdown-timeout=-1"]
sys.exit(Manager.main("hang", setup, flags))
"""


def test_a_shutdown_forced_by_a_second_signal_exits_1(served_kubeconfig: Path) -> None:
    """controller-runtime exits 1 when a second signal cuts the graceful shutdown short (its
    reconciles were cancelled mid-way); the process used to exit 0 as after a clean stop."""
    env = {**os.environ, "KUBECONFIG": str(served_kubeconfig)}
    with subprocess.Popen(
        [sys.executable, "-c", _HANG, "forced"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        lines = iter(process.stdout.readline, "")
        assert any(line.strip() == "hanging" for line in lines)
        process.send_signal(signal.SIGTERM)  # graceful: waits for the hung reconcile forever
        assert any("graceful shutdown requested" in line for line in lines)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 1
