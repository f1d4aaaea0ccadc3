"""The README's controller snippet runs as written against the embedded API server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import anyio

from kube_runtime.client import Api, ApiResource
from kube_runtime.testing import ApiServer

ROOT = Path(__file__).resolve().parents[1]


def readme_controller_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    snippet = next(b for b in blocks if "anyio.run(main)" in b)
    # Free ports instead of :8080/:8081 so the test never collides with anything on the machine.
    bind = 'ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")'
    assert "ServerOptions()" in snippet
    return snippet.replace("ServerOptions()", bind)


async def test_readme_controller_reconciles_and_stops_on_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "readme_controller.py"
    script.write_text(readme_controller_snippet())
    async with ApiServer() as server:
        api = Api(server.client, ApiResource.builtin("ConfigMap"), "default")
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hello"}})
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "PYTHONPATH": str(ROOT)}
        proc = await anyio.open_process([sys.executable, str(script)], env=env, stderr=subprocess.DEVNULL)
        output = b""
        try:
            assert proc.stdout is not None
            with anyio.fail_after(60):
                async for chunk in proc.stdout:
                    output += chunk
                    if b"ConfigMap.v1./hello.default" in output:
                        break
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(30):
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert b"ConfigMap.v1./hello.default" in output, output
    assert code == 0
