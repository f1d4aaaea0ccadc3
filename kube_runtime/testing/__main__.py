"""Command line: ``python -m kube_runtime.testing serve --port PORT --kubeconfig PATH``.

Writes a kubeconfig for the server, prints one line ``serving <url> kubeconfig=<path>`` once it
accepts connections, and serves until SIGINT or SIGTERM. The admin endpoint (``/admin/...``,
same bearer token) offers the fault operations, ``bulk-create``, ``churn``, ``lifecycle`` and
``stats`` (with the server process's CPU time) to benchmarks running in another process.
"""

from __future__ import annotations

import argparse
import signal
import sys

import anyio

from kube_runtime.testing.apiserver.settings import WATCH_LIST_MODES
from kube_runtime.testing.server import ApiServer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kube_runtime.testing", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the embedded API server until SIGINT/SIGTERM")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    serve.add_argument("--token", default=None, help="bearer token (random by default)")
    serve.add_argument("--history-size", type=int, default=10_000, help="watch history kept per resource")
    serve.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    serve.add_argument(
        "--watch-queue-size", type=int, default=100_000, help="events a watcher may lag behind"
    )
    serve.add_argument(
        "--watch-list",
        choices=WATCH_LIST_MODES,
        default="on",
        help="streaming lists (sendInitialEvents): served, refused as with kube-apiserver's WatchList "
        "gate off, or ignored as by an older server",
    )
    serve.add_argument("--uvloop", action="store_true", help="run on uvloop")
    serve.add_argument("--no-tls", action="store_true", help="plain HTTP (kubectl will not send the token)")
    serve.add_argument(
        "--benchmark",
        action="store_true",
        help="measure event-loop stalls (admin stats) and freeze the heap after bulk creations",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    async with ApiServer(
        host=args.host,
        port=args.port,
        token=args.token,
        kubeconfig_path=args.kubeconfig,
        history_size=args.history_size,
        bookmark_interval=args.bookmark_interval,
        watch_queue_size=args.watch_queue_size,
        watch_list=args.watch_list,
        create_client=False,
        tls=not args.no_tls,
        monitor_stalls=args.benchmark,
        freeze_after_load=args.benchmark,
    ) as server:
        print(f"serving {server.url} kubeconfig={server.kubeconfig_path}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        backend_options = {"use_uvloop": True} if args.uvloop else {}
        anyio.run(_serve, args, backend="asyncio", backend_options=backend_options)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
