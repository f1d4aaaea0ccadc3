"""Run ``python -m kube_runtime.testing serve`` as a child process for tests."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc


@asynccontextmanager
async def serve_cli(kubeconfig: Path, *extra: str) -> AsyncIterator[anyio.abc.Process]:
    """Start the CLI server, wait for its ``serving`` line, SIGTERM it on exit (asserting a clean exit)."""
    cmd = [
        sys.executable,
        "-m",
        "kube_runtime.testing",
        "serve",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
        *extra,
    ]
    process = await anyio.open_process(cmd)
    try:
        assert process.stdout is not None
        buffer = b""
        with anyio.fail_after(30):
            while b"\n" not in buffer:
                buffer += await process.stdout.receive()
        assert buffer.startswith(b"serving https://127.0.0.1:"), buffer
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            code = await process.wait()
        await process.aclose()
    assert code == 0
