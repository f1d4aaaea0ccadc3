"""A controller process whose reconcile hangs forever, for the SIGTERM deadline test.

``python -m tests.controller.hung_controller [--graceful-shutdown-timeout=SECONDS]`` starts the
embedded API server, creates the ConfigMap ``stuck``, and runs a controller (stopped by
SIGINT/SIGTERM) whose reconcile prints ``hanging <ref>`` and never returns. JSON logs go to stderr;
``run ended`` is printed once the controller's run has returned.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import Action, Controller, ControllerOptions
from kube_runtime.observe import configure_logging
from kube_runtime.testing import ApiServer

CONFIG_MAP = ApiResource.builtin("ConfigMap")


async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
    print(f"hanging {obj['metadata']['namespace']}/{obj['metadata']['name']}", flush=True)
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def run(options: ControllerOptions) -> None:
    async with ApiServer() as server:
        api = Api(server.client, CONFIG_MAP, "default")
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stuck"}})
        controller = (
            Controller(api, name="hung")
            .with_graceful_shutdown_timeout(options.graceful_shutdown_timeout)
            .shutdown_on_signal()
        )
        await controller.run(reconcile, None, None)
        print("run ended", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    ControllerOptions.add_arguments(parser)
    options = ControllerOptions.from_arguments(parser.parse_args())
    configure_logging("info", fmt="json", stream=sys.stderr)
    anyio.run(run, options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
