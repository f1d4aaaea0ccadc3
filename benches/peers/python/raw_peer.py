"""The raw Python limit: httpx + orjson + a dict, no runtime at all (not a library peer).

Paged list, then one watch from the list's resourceVersion: each line is split out of the byte
stream with ``bytes.find``, parsed with ``orjson.loads`` and stored in a dict. No bookmarks, no
error handling beyond a relist on 410, no backoff: the least work a Python program can do on the
same bytes. ``RAW_PEER_GC=off`` disables the cyclic collector (``gc.disable()``), the upper bound;
``on`` (the default) keeps it, as any long-running program would.
"""

from __future__ import annotations

import base64
import gc
import os
import signal
import ssl
from typing import Any

import anyio
import httpx
import orjson
import yaml
from peer_protocol import Stats, dump_store, parse_args, synced


def _connection(kubeconfig: str) -> tuple[str, dict[str, str], ssl.SSLContext | bool]:
    with open(kubeconfig) as f:
        doc = yaml.safe_load(f)
    cluster = doc["clusters"][0]["cluster"]
    user = doc["users"][0]["user"]
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    verify: ssl.SSLContext | bool = True
    if "certificate-authority-data" in cluster:
        pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
        verify = ssl.create_default_context(cadata=pem)
    elif "certificate-authority" in cluster:
        verify = ssl.create_default_context(cafile=cluster["certificate-authority"])
    return cluster["server"], headers, verify


async def main() -> None:
    args = parse_args()
    if os.environ.get("RAW_PEER_GC", "on") == "off":
        gc.disable()
    server, headers, verify = _connection(args.kubeconfig)
    path = f"/api/v1/namespaces/{args.namespace}/{args.resource}"
    stats = Stats()
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    async with (
        httpx.AsyncClient(base_url=server, headers=headers, verify=verify, timeout=None) as http,
        anyio.create_task_group() as tg,
    ):

        async def ticker() -> None:
            while True:
                await anyio.sleep(1)
                stats.report()

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    dump_store({f"{k[0]}/{k[1]}": o["metadata"]["resourceVersion"] for k, o in cache.items()})
                    stats.report(final=True)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(ticker)
        tg.start_soon(on_signal)

        async def relist() -> str:
            fresh: dict[tuple[str, str], dict[str, Any]] = {}
            params: dict[str, Any] = {"limit": 500}
            while True:
                resp = await http.get(path, params=params)
                resp.raise_for_status()
                page = orjson.loads(resp.content)
                for obj in page["items"]:
                    meta = obj["metadata"]
                    fresh[(meta["namespace"], meta["name"])] = obj
                cont = page["metadata"].get("continue")
                if not cont:
                    break
                params = {"limit": 500, "continue": cont}
            cache.clear()
            cache.update(fresh)
            return str(page["metadata"]["resourceVersion"])

        rv = await relist()
        synced(len(cache))
        while True:
            params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "290"}
            try:
                async with http.stream("GET", path, params=params) as resp:
                    if resp.status_code == 410:
                        rv = await relist()
                        continue
                    if resp.status_code != 200:
                        await anyio.sleep(1)
                        continue
                    buf = b""
                    async for chunk in resp.aiter_raw():
                        buf += chunk
                        start = 0
                        while (end := buf.find(b"\n", start)) >= 0:
                            ev = orjson.loads(buf[start:end])
                            start = end + 1
                            obj = ev["object"]
                            if ev["type"] == "ERROR":
                                if obj.get("code") == 410:
                                    rv = await relist()
                                    raise _Restart
                                continue
                            meta = obj["metadata"]
                            rv = meta["resourceVersion"]
                            if ev["type"] == "BOOKMARK":
                                continue
                            if ev["type"] == "DELETED":
                                cache.pop((meta["namespace"], meta["name"]), None)
                            else:
                                cache[(meta["namespace"], meta["name"])] = obj
                            stats.observe(obj)
                        buf = buf[start:]
            except _Restart:
                continue
            except httpx.HTTPError:
                await anyio.sleep(1)


class _Restart(Exception):
    pass


if __name__ == "__main__":
    anyio.run(main)
