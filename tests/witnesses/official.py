"""One driver for the official ``kubernetes`` client (synchronous) and ``kubernetes_asyncio``.

Both are generated from the same OpenAPI document, so their API classes, methods and models have the
same names; the only difference is that one blocks and the other is awaited. :class:`Official` hides
that difference so every scenario is written once and run with both clients: a synchronous call runs
in a worker thread (it must never block the event loop), an asynchronous one is awaited.

Pitfall: the synchronous ``ApiClient`` owns a thread pool; :meth:`Official.close` must be called.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["CLIENTS", "Official"]

CLIENTS = ("kubernetes", "kubernetes_asyncio")


class Official:
    """A connected official client (``kubernetes`` or ``kubernetes_asyncio``)."""

    def __init__(self, package: str, api_client: Any) -> None:
        self.package = package
        self.is_async = package == "kubernetes_asyncio"
        self.client = importlib.import_module(f"{package}.client")
        self.ApiException: type[Exception] = importlib.import_module(
            f"{package}.client.exceptions"
        ).ApiException
        self.api_client = api_client

    @classmethod
    async def connect(cls, package: str, kubeconfig: Path) -> Official:
        config = importlib.import_module(f"{package}.config")
        if package == "kubernetes_asyncio":
            api_client = await config.new_client_from_config(config_file=str(kubeconfig))
        else:
            api_client = config.new_client_from_config(config_file=str(kubeconfig))
        return cls(package, api_client)

    async def close(self) -> None:
        if self.is_async:
            await self.api_client.close()
        else:
            await anyio.to_thread.run_sync(self.api_client.close)

    def api(self, name: str) -> Any:
        """An API class instance, e.g. ``api("CoreV1Api")``."""
        return getattr(self.client, name)(self.api_client)

    async def call(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``api.method(*args, **kwargs)`` with either client and return its result."""
        fn = getattr(self.api(api), method)
        if self.is_async:
            return await fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def fails(self, api: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call and return the ``ApiException`` the call must raise (fails the test if it does not)."""
        try:
            await self.call(api, method, *args, **kwargs)
        except self.ApiException as exc:
            return exc
        raise AssertionError(f"{api}.{method} did not fail")

    async def watch(self, api: str, method: str, *args: Any, count: int, **kwargs: Any) -> list[Any]:
        """The first ``count`` events of the client's ``Watch().stream`` (``timeout_seconds`` bounds it)."""
        fn = getattr(self.api(api), method)
        watch_module = importlib.import_module(f"{self.package}.watch")
        events: list[Any] = []
        if self.is_async:
            async with watch_module.Watch() as w:
                async for event in w.stream(fn, *args, **kwargs):
                    events.append(event)
                    if len(events) >= count:
                        break
            return events

        def run() -> None:
            w = watch_module.Watch()
            for event in w.stream(fn, *args, **kwargs):
                events.append(event)
                if len(events) >= count:
                    w.stop()
                    break

        await anyio.to_thread.run_sync(run)
        return events
