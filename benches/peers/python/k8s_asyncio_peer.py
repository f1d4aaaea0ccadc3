"""kubernetes_asyncio peer: list + watch into a dict (model objects; relist on 410 Gone)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from peer_protocol import Stats, dump_store, parse_args, synced


async def main() -> None:
    args = parse_args()
    await config.load_kube_config(config_file=args.kubeconfig)
    stats = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cache: dict[tuple[str, str], Any] = {}

    async def ticker() -> None:
        while not stop.is_set():
            await asyncio.sleep(1)
            stats.report()

    async def work() -> None:
        async with client.ApiClient() as api:
            v1 = client.CoreV1Api(api)
            list_fn = {"configmaps": v1.list_namespaced_config_map, "pods": v1.list_namespaced_pod}[
                args.resource
            ]

            async def relist() -> str:
                fresh: dict[tuple[str, str], Any] = {}
                cont = None
                while True:
                    page = await list_fn(args.namespace, limit=500, _continue=cont)
                    for item in page.items:
                        fresh[(item.metadata.namespace, item.metadata.name)] = item
                    cont = page.metadata._continue
                    if not cont:
                        break
                cache.clear()
                cache.update(fresh)
                return str(page.metadata.resource_version)

            rv = await relist()
            synced(len(cache))
            while True:
                try:
                    async with watch.Watch().stream(
                        list_fn,
                        args.namespace,
                        resource_version=rv,
                        timeout_seconds=290,
                        allow_watch_bookmarks=True,
                    ) as stream:
                        async for ev in stream:
                            obj = ev["object"]
                            if ev["type"] == "BOOKMARK":
                                rv = (
                                    obj["metadata"]["resourceVersion"]
                                    if isinstance(obj, dict)
                                    else obj.metadata.resource_version
                                )
                                continue
                            key = (obj.metadata.namespace, obj.metadata.name)
                            if ev["type"] == "DELETED":
                                cache.pop(key, None)
                            else:
                                cache[key] = obj
                            rv = obj.metadata.resource_version
                            stats.observe(obj)
                except ApiException as exc:
                    if exc.status == 410:
                        rv = await relist()
                    else:
                        await asyncio.sleep(1)
                except Exception:
                    await asyncio.sleep(1)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(work())]
    await stop.wait()
    dump_store({f"{k[0]}/{k[1]}": o.metadata.resource_version for k, o in cache.items()})
    stats.report(final=True)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
