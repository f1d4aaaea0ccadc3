"""kr8s peer: list, then kr8s's own watch() into a dict."""

from __future__ import annotations

import asyncio
import signal

import kr8s.asyncio
from peer_protocol import Stats, parse_args, synced


async def main() -> None:
    args = parse_args()
    api = await kr8s.asyncio.api(kubeconfig=args.kubeconfig)
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
        cache: dict[tuple[str, str], dict] = {}
        async for obj in api.get(args.resource, namespace=args.namespace):
            cache[(obj.namespace, obj.name)] = obj.raw
        synced(len(cache))
        async for kind, obj in api.watch(args.resource, namespace=args.namespace):
            key = (obj.namespace, obj.name)
            if kind == "DELETED":
                cache.pop(key, None)
            else:
                cache[key] = obj.raw
            stats.observe(obj.raw)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(work())]
    await stop.wait()
    for t in tasks:
        t.cancel()
    stats.report(final=True)


if __name__ == "__main__":
    asyncio.run(main())
