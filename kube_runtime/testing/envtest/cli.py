"""``python -m kube_runtime.testing.envtest``: run a control plane until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

import anyio

from kube_runtime.testing.envtest.binaries import BIN_DIR_ENV, EnvtestBinaries
from kube_runtime.testing.envtest.control_plane import Envtest

__all__ = ["main"]


async def _serve(args: argparse.Namespace) -> None:
    binaries = EnvtestBinaries.locate(args.bin_dir, controller_manager=args.controller_manager)
    async with Envtest(
        binaries,
        authorization_mode=args.authorization_mode,
        watch_cache=not args.no_watch_cache,
        controller_manager=args.controller_manager,
        controllers=args.controllers.split(","),
    ) as env:
        kubeconfig = env.kubeconfig_path
        if args.kubeconfig:
            kubeconfig = Path(args.kubeconfig)
            await anyio.to_thread.run_sync(shutil.copyfile, env.kubeconfig_path, kubeconfig)
        print(f"envtest ready: {env.url} pids={env.pids}", flush=True)
        print(f"KUBECONFIG={kubeconfig}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"envtest: {signal.Signals(signum).name}, stopping", flush=True)
                break


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m kube_runtime.testing.envtest``: run a control plane until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m kube_runtime.testing.envtest", description=main.__doc__)
    parser.add_argument("--bin-dir", default=None, help=f"binaries (default: ${BIN_DIR_ENV} or the cache)")
    parser.add_argument("--kubeconfig", default=None, help="also copy the kubeconfig to this path")
    parser.add_argument("--authorization-mode", choices=["RBAC", "AlwaysAllow"], default="RBAC")
    parser.add_argument("--no-watch-cache", action="store_true", help="serve watches from etcd directly")
    parser.add_argument("--controller-manager", action="store_true", help="also run kube-controller-manager")
    parser.add_argument(
        "--controllers", default="*", help="kube-controller-manager --controllers (default *)"
    )
    args = parser.parse_args(argv)
    anyio.run(_serve, args)
