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
from peer_protocol import Stats, dump_store, parse_args, synced

ARGS = parse_args()
os.environ["KUBECONFIG"] = ARGS.kubeconfig
STATS = Stats()
EXPECT = int(os.environ.get("KOPF_PEER_EXPECT", "0"))
VERSIONS: dict[str, str] = {}
SYNCED = threading.Event()
RECONCILE_SECONDS = ARGS.reconcile_ms / 1000.0


@kopf.on.login()
def login(**kwargs: object) -> kopf.ConnectionInfo | None:
    return kopf.login_with_kubeconfig(**kwargs)  # type: ignore[arg-type]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    settings.posting.enabled = False
    settings.watching.server_timeout = 290
    if EXPECT == 0 and not SYNCED.is_set():
        SYNCED.set()
        synced(0)


def _seen(namespace: str, name: str, body: kopf.Body, event_type: str | None = None) -> None:
    key = f"{namespace}/{name}"
    if event_type == "DELETED":
        VERSIONS.pop(key, None)
    else:
        VERSIONS[key] = body.get("metadata", {}).get("resourceVersion", "")
    if SYNCED.is_set():
        STATS.observe(dict(body))
    elif len(VERSIONS) >= EXPECT:
        SYNCED.set()
        synced(len(VERSIONS))


VERSION, PLURAL = "v1", ARGS.resource

if ARGS.mode == "watch":

    @kopf.index(VERSION, PLURAL)
    def by_name(namespace: str, name: str, body: kopf.Body, **_: object) -> dict[tuple[str, str], str]:
        _seen(namespace, name, body)
        return {(namespace, name): body.get("metadata", {}).get("resourceVersion", "")}

else:

    @kopf.on.event(VERSION, PLURAL)
    async def on_event(namespace: str, name: str, body: kopf.Body, type: str | None, **_: object) -> None:
        _seen(namespace, name, body, type)
        if RECONCILE_SECONDS:
            await asyncio.sleep(RECONCILE_SECONDS)


async def main() -> None:
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
    dump_store(VERSIONS)
    STATS.report(final=True)


if __name__ == "__main__":
    asyncio.run(main())
