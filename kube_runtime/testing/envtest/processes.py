"""One control-plane child process (start, stop with a grace period, failure with its log tail),
free loopback ports, and the parent-death signal prefix.

Guarantees: :meth:`Child.stop` always reaps the process and closes its log, even when cancelled
(it is shielded). Pitfall: the parent-death signal (``setpriv --pdeathsig``) fires when the *thread*
that started the child exits.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import Process

from kube_runtime.testing.envtest.binaries import EnvtestError

__all__ = ["Child", "free_ports", "pdeathsig_prefix"]


_LOG_TAIL_LINES = 40


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open at once so none is handed out twice)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


@dataclass
class Child:
    """One control-plane process: how to start it, and the running instance if any."""

    name: str
    argv: list[str]
    log_path: Path
    process: Process | None = None
    last_pid: int | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, env: Mapping[str, str]) -> None:
        if self.process is not None:
            raise EnvtestError(f"{self.name} is already running")
        self._log = await anyio.to_thread.run_sync(_open_log, self.log_path)
        try:
            self.process = await anyio.open_process(
                self.argv,
                stdin=None,
                stdout=self._log,
                stderr=self._log,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            self._log = None
            raise
        self.last_pid = self.process.pid

    async def stop(self, grace_period: float, *, kill: bool = False) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_period`` s (at once with ``kill``); always reaps.

        Shielded against cancellation.
        """
        process, self.process = self.process, None
        if process is None:
            return None
        with anyio.CancelScope(shield=True):
            try:
                if process.returncode is None:
                    if kill:
                        process.kill()
                    else:
                        process.terminate()
                    with anyio.move_on_after(grace_period):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                await process.wait()
                await process.aclose()
            finally:
                if self._log is not None:
                    self._log.close()
                    self._log = None
        return process.returncode

    def failure(self, what: str) -> EnvtestError:
        code = self.process.returncode if self.process is not None else None
        status = f" (exit code {code})" if code is not None else ""
        return EnvtestError(
            f"{self.name} {what}{status}; last log lines from {self.log_path}:\n{_log_tail(self.log_path)}"
        )


def pdeathsig_prefix() -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
