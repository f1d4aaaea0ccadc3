"""kr8s peer: list, then kr8s's own watch() into a dict (kr8s handles resumption itself).

kr8s's ``get`` does not expose the list's resourceVersion, so the watch starts from the newest
resourceVersion among the listed objects (the embedded server's versions are ordered integers).
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import kr8s.asyncio
from peer_protocol import Stats, dump_store, parse_args, synced


async def main() -> None:
    args = parse_args()
    api = await kr8s.asyncio.api(kubeconfig=args.kubeconfig)
    stats = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cache: dict[tuple[str, str], dict[str, Any]] = {}

    async def ticker() -> None:
        while not stop.is_set():
            await asyncio.sleep(1)
            stats.report()

    async def work() -> None:
        async for obj in api.get(args.resource, namespace=args.namespace):
            cache[(obj.namespace, obj.name)] = obj.raw
        synced(len(cache))
        since = str(max((int(o["metadata"]["resourceVersion"]) for o in cache.values()), default=0)) or None
        while True:
            async for kind, obj in api.watch(args.resource, namespace=args.namespace, since=since):
                since = obj.metadata.resourceVersion
                key = (obj.namespace, obj.name)
                if kind == "DELETED":
                    cache.pop(key, None)
                else:
                    cache[key] = obj.raw
                stats.observe(obj.raw)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(work())]
    await stop.wait()
    dump_store({f"{k[0]}/{k[1]}": o["metadata"].get("resourceVersion", "") for k, o in cache.items()})
    stats.report(final=True)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
