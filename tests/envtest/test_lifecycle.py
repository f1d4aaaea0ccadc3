"""Envtest owns its children: none is left behind on exit, error, cancellation, failed start or crash."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from kube_runtime.testing.envtest import Envtest, EnvtestBinaries, EnvtestError, ThreadedEnvtest

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]


def alive(pid: int) -> bool:
    """True if ``pid`` is a live (non-zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_exited(pid: int) -> None:
    """Wait for a process that is not our child to exit (a pidfd turns readable when it does)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


async def test_children_are_gone_after_normal_exit(envtest_binaries: EnvtestBinaries) -> None:
    async with Envtest(envtest_binaries) as env:
        pids = env.pids
        data_dir = env.data_dir
        assert set(pids) == {"etcd", "kube-apiserver"}
        assert all(alive(pid) for pid in pids.values())
    assert not any(alive(pid) for pid in pids.values())
    assert not data_dir.exists()


async def test_children_are_gone_after_error_in_body(envtest_binaries: EnvtestBinaries) -> None:
    env = Envtest(envtest_binaries)
    with pytest.raises(KeyError):
        async with env:
            raise KeyError("boom")
    assert env.pids
    assert not any(alive(pid) for pid in env.pids.values())


async def test_children_are_gone_after_cancellation(envtest_binaries: EnvtestBinaries) -> None:
    env = Envtest(envtest_binaries)
    with anyio.CancelScope() as scope:
        async with env:
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert set(env.pids) == {"etcd", "kube-apiserver"}
    assert not any(alive(pid) for pid in env.pids.values())


async def test_failed_start_names_the_log_and_stops_etcd(envtest_binaries: EnvtestBinaries) -> None:
    env = Envtest(envtest_binaries, extra_apiserver_args=["--no-such-flag=1"])
    with pytest.raises(EnvtestError, match="kube-apiserver exited") as info:
        async with env:
            pytest.fail("started with a bad flag")
    assert "no-such-flag" in str(info.value)
    assert set(env.pids) == {"etcd", "kube-apiserver"}
    assert not any(alive(pid) for pid in env.pids.values())


CRASHER = """
import json, sys, anyio
from kube_runtime.testing.envtest import Envtest, EnvtestBinaries

async def main() -> None:
    async with Envtest(EnvtestBinaries.locate(sys.argv[1])) as env:
        print(json.dumps({"pids": env.pids, "data_dir": str(env.data_dir)}), flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


async def test_children_die_with_a_killed_parent(envtest_binaries: EnvtestBinaries) -> None:
    """SIGKILL of the owning process skips all cleanup; the parent-death signal still ends the children."""
    bin_dir = str(envtest_binaries.kube_apiserver.parent)
    async with await anyio.open_process(
        [sys.executable, "-c", CRASHER, bin_dir], stdout=subprocess.PIPE, stderr=None
    ) as parent:
        assert parent.stdout is not None
        with anyio.fail_after(120):
            line = b""
            async for chunk in parent.stdout:
                line += chunk
                if b"\n" in line:
                    break
        started = json.loads(line)
        pids: dict[str, int] = started["pids"]
        assert all(alive(pid) for pid in pids.values())
        os.kill(parent.pid, signal.SIGKILL)
        await parent.wait()
    with anyio.fail_after(30):
        for pid in pids.values():
            await wait_exited(pid)
    assert not any(alive(pid) for pid in pids.values())
    # Nobody was left to remove the data dir.
    await anyio.to_thread.run_sync(shutil.rmtree, started["data_dir"])


def test_threaded_envtest_serves_any_loop_and_stops_its_children(envtest_binaries: EnvtestBinaries) -> None:
    """A thread-hosted control plane (shared fixtures) answers clients on other event loops, runs its
    fault controls on its own loop, and leaves nothing behind on exit."""

    async def version_status(env: Envtest) -> int:
        async with env.http_client() as client:
            return (await client.get("/version")).status_code

    with ThreadedEnvtest(envtest_binaries) as hosted:
        env = hosted.env
        first = dict(env.pids)
        assert anyio.run(version_status, env) == 200
        hosted.call(env.restart_apiserver, kill=True)  # a crash: SIGKILL, then a fresh process
        assert env.pids["kube-apiserver"] != first["kube-apiserver"]
        assert not alive(first["kube-apiserver"])
        assert anyio.run(version_status, env) == 200
        pids = env.pids
    assert not any(alive(pid) for pid in pids.values())
    assert not env.data_dir.exists()
