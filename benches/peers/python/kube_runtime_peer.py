"""kube-runtime peer: watcher + reflector into a Store (watch mode), or a Controller with a no-op
reconcile (controller mode). The same protocol as every other peer (benches/peers/README.md)."""

from __future__ import annotations

import signal
from typing import Any

import anyio

from kube_runtime.client import Api, Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller import Action, Controller
from kube_runtime.store import reflector, store
from kube_runtime.watcher import Apply, Delete, InitDone, WatcherConfig, watcher
from peer_protocol import Stats, parse_args, synced


async def main() -> None:
    args = parse_args()
    resource = ApiResource.builtin("ConfigMap" if args.resource == "configmaps" else "Pod")
    stats = Stats()
    async with Client.from_kubeconfig(args.kubeconfig) as client, anyio.create_task_group() as tg:
        api = Api(client, resource, namespace=args.namespace)

        async def ticker() -> None:
            while True:
                await anyio.sleep(1)
                stats.report()

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    stats.report(final=True)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(ticker)
        tg.start_soon(on_signal)
        if args.mode == "watch":
            reader, writer = store(resource)
            is_synced = False
            async for item in reflector(writer, watcher(api, WatcherConfig()).default_backoff()):
                if isinstance(item, InitDone) and not is_synced:
                    is_synced = True
                    synced(len(reader))
                elif isinstance(item, Apply | Delete):
                    stats.observe(item.object)
        else:

            async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
                stats.observe(obj)
                return Action.await_change()

            def error_policy(_obj: dict[str, Any], _err: Exception, _ctx: None) -> Action:
                return Action.requeue(1.0)

            controller = Controller(api, WatcherConfig()).with_config(concurrency=args.concurrency)

            async def report_ready() -> None:
                await controller.store.wait_until_ready()
                synced(len(controller.store))

            tg.start_soon(report_ready)
            async with controller.run(reconcile, error_policy, None) as results:
                async for _ in results:
                    pass


if __name__ == "__main__":
    anyio.run(main)
