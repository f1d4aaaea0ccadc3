"""kubernetes_asyncio peer: list + watch into a dict."""

from __future__ import annotations

import asyncio
import signal

from kubernetes_asyncio import client, config, watch
from peer_protocol import Stats, parse_args, synced


async def main() -> None:
    args = parse_args()
    await config.load_kube_config(config_file=args.kubeconfig)
    stats = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def ticker() -> None:
        while not stop.is_set():
            await asyncio.sleep(1)
            stats.report()

    async def work() -> None:
        async with client.ApiClient() as api:
            v1 = client.CoreV1Api(api)
            list_fn = v1.list_namespaced_config_map if args.resource == "configmaps" else v1.list_namespaced_pod
            cache: dict[tuple[str, str], object] = {}
            cont = None
            while True:
                page = await list_fn(args.namespace, limit=500, _continue=cont)
                for item in page.items:
                    cache[(item.metadata.namespace, item.metadata.name)] = item
                rv = page.metadata.resource_version
                cont = page.metadata._continue
                if not cont:
                    break
            synced(len(cache))
            while True:
                async with watch.Watch().stream(list_fn, args.namespace, resource_version=rv,
                                                timeout_seconds=290) as stream:
                    async for ev in stream:
                        obj = ev["object"]
                        key = (obj.metadata.namespace, obj.metadata.name)
                        if ev["type"] == "DELETED":
                            cache.pop(key, None)
                        else:
                            cache[key] = obj
                        rv = obj.metadata.resource_version
                        stats.observe(obj)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(work())]
    await stop.wait()
    for t in tasks:
        t.cancel()
    stats.report(final=True)


if __name__ == "__main__":
    asyncio.run(main())
