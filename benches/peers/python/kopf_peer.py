"""kopf peer: an in-memory index (watch mode) or an event handler (controller mode).

kopf has no "store ready" signal; the index is considered synced when it holds the expected
count, which the harness passes as KOPF_PEER_EXPECT (kopf's own startup is part of the time).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import kopf
from peer_protocol import Stats, parse_args, synced

ARGS = parse_args()
STATS = Stats()
EXPECT = int(os.environ.get("KOPF_PEER_EXPECT", "0"))
SEEN: set[tuple[str, str]] = set()
SYNCED = threading.Event()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    settings.posting.enabled = False
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.watching.server_timeout = 290


def _seen(namespace: str, name: str, body: kopf.Body) -> None:
    key = (namespace, name)
    if SYNCED.is_set():
        STATS.observe(dict(body))
    else:
        SEEN.add(key)
        if len(SEEN) >= EXPECT:
            SYNCED.set()
            synced(len(SEEN))


GROUP, VERSION, PLURAL = "", "v1", ARGS.resource

if ARGS.mode == "watch":

    @kopf.index(VERSION, PLURAL)
    def by_name(namespace: str, name: str, body: kopf.Body, **_: object) -> dict[tuple[str, str], str]:
        _seen(namespace, name, body)
        return {(namespace, name): body.get("metadata", {}).get("resourceVersion", "")}

else:

    @kopf.on.event(VERSION, PLURAL)
    def on_event(namespace: str, name: str, body: kopf.Body, **_: object) -> None:
        _seen(namespace, name, body)


async def main() -> None:
    os.environ["KUBECONFIG"] = ARGS.kubeconfig
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def ticker() -> None:
        while not stop.is_set():
            await asyncio.sleep(1)
            STATS.report()

    t = asyncio.create_task(ticker())
    await kopf.operator(namespaces=[ARGS.namespace], standalone=True, stop_flag=stop)
    t.cancel()
    STATS.report(final=True)


if __name__ == "__main__":
    asyncio.run(main())
