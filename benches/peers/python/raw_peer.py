"""The raw Python limit: a list+watch into a dict with no runtime at all (not a library peer).

Paged list with httpx, then one watch from the list's resourceVersion: each line is split out of
the byte stream with ``bytes.find``, parsed with ``orjson.loads`` and stored in a dict. No
bookmarks, no error handling beyond a relist on 410, no backoff: the least work a Python program
can do on the same bytes. Settings (environment):

* ``RAW_PEER_GC=off`` disables the cyclic collector (``gc.disable()``), the upper bound; ``on``
  (the default) keeps it, as any long-running program would;
* ``RAW_PEER_HTTP=streams`` reads the watch from an ``asyncio`` stream with a hand-written
  HTTP/1.1 chunked decoder instead of httpx's ``aiter_raw`` (the default, ``httpx``): what is
  left when even the HTTP library's per-chunk work is gone;
* ``RAW_PEER_LOOP=uvloop`` runs on uvloop.

Controller mode (``--mode controller``): the least a controller can do. A watch event of an
object puts its key on a deduplicating FIFO; ``--concurrency`` workers take keys and call a
no-op reconcile with the cached object; an object is never reconciled twice at once (a change
arriving during its reconcile runs it once more afterwards). No backoff, requeue, metrics, or
store guarantees: the floor under any Python controller's CPU per reconcile.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import httpx
import orjson
import yaml
from peer_protocol import Stats, dump_store, parse_args, synced

Key = tuple[str, str]


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


class _Restart(Exception):
    """The watch ended in a way that needs a relist (410 Gone)."""


async def _lines_httpx(http: httpx.AsyncClient, path: str, params: dict[str, str]) -> AsyncIterator[bytes]:
    async with http.stream("GET", path, params=params) as resp:
        if resp.status_code == 410:
            raise _Restart
        if resp.status_code != 200:
            await anyio.sleep(1)
            return
        buf = b""
        async for chunk in resp.aiter_raw():
            buf += chunk
            start = 0
            while (end := buf.find(b"\n", start)) >= 0:
                yield buf[start:end]
                start = end + 1
            buf = buf[start:]


async def _lines_streams(
    server: str, headers: dict[str, str], verify: ssl.SSLContext | bool, path: str, params: dict[str, str]
) -> AsyncIterator[bytes]:
    url = urlsplit(server)
    tls: ssl.SSLContext | None = None
    if url.scheme == "https":
        tls = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
    reader, writer = await asyncio.open_connection(url.hostname, url.port, ssl=tls)
    try:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"GET {path}?{urlencode(params)} HTTP/1.1\r\nHost: {url.netloc}\r\n{extra}\r\n"
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status == b"410":
            raise _Restart
        if status != b"200" or b"chunked" not in head.lower():
            await anyio.sleep(1)
            return
        raw = b""  # chunked transfer encoding, not yet decoded
        body = b""  # decoded body, not yet split into lines
        while data := await reader.read(262144):
            raw += data
            while (eol := raw.find(b"\r\n")) >= 0:
                size = int(raw[:eol].split(b";", 1)[0], 16)
                if size == 0:
                    return
                end = eol + 2 + size
                if len(raw) < end + 2:
                    break
                body += raw[eol + 2 : end]
                raw = raw[end + 2 :]
            start = 0
            while (end := body.find(b"\n", start)) >= 0:
                yield body[start:end]
                start = end + 1
            body = body[start:]
    finally:
        writer.close()


async def main() -> None:
    args = parse_args()
    if os.environ.get("RAW_PEER_GC", "on") == "off":
        gc.disable()
    streams = os.environ.get("RAW_PEER_HTTP", "httpx") == "streams"
    server, headers, verify = _connection(args.kubeconfig)
    path = f"/api/v1/namespaces/{args.namespace}/{args.resource}"
    stats = Stats()
    cache: dict[Key, dict[str, Any]] = {}
    controller = args.mode == "controller"
    queue: asyncio.Queue[Key] = asyncio.Queue()
    queued: set[Key] = set()  # waiting in the queue, once each
    running: set[Key] = set()  # being reconciled now
    again: set[Key] = set()  # changed while being reconciled: run once more afterwards
    pause = args.reconcile_ms / 1000.0

    def enqueue(key: Key) -> None:
        if key in running:
            again.add(key)
        elif key not in queued:
            queued.add(key)
            queue.put_nowait(key)

    async def reconcile(obj: dict[str, Any]) -> None:
        stats.observe(obj)
        if pause:
            await asyncio.sleep(pause)

    async def worker() -> None:
        while True:
            key = await queue.get()
            queued.discard(key)
            running.add(key)
            try:
                obj = cache.get(key)
                if obj is not None:
                    await reconcile(obj)
            finally:
                running.discard(key)
                if key in again:
                    again.discard(key)
                    enqueue(key)

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
            fresh: dict[Key, dict[str, Any]] = {}
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
            if controller:
                for key in fresh:
                    enqueue(key)
            return str(page["metadata"]["resourceVersion"])

        rv = await relist()
        synced(len(cache))
        if controller:
            for _ in range(max(1, args.concurrency)):
                tg.start_soon(worker)
        while True:
            params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "290"}
            lines = (
                _lines_streams(server, headers, verify, path, params)
                if streams
                else _lines_httpx(http, path, params)
            )
            try:
                async with aclosing(lines):
                    async for line in lines:
                        ev = orjson.loads(line)
                        obj = ev["object"]
                        kind = ev["type"]
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                raise _Restart
                            continue
                        meta = obj["metadata"]
                        rv = meta["resourceVersion"]
                        if kind == "BOOKMARK":
                            continue
                        key = (meta["namespace"], meta["name"])
                        if kind == "DELETED":
                            cache.pop(key, None)
                        else:
                            cache[key] = obj
                        if controller:
                            enqueue(key)
                        else:
                            stats.observe(obj)
            except _Restart:
                rv = await relist()
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError):
                await anyio.sleep(1)


if __name__ == "__main__":
    anyio.run(main, backend_options={"use_uvloop": os.environ.get("RAW_PEER_LOOP") == "uvloop"})
