"""Silent watches: open but delivering nothing, until closed; the missed events stay in history."""

from __future__ import annotations

import anyio
import orjson

from kube_runtime.testing import ApiServer
from kube_runtime.testing.apiserver.silence import silence_watches
from tests.testing.helpers import CM, configmap, http_client


async def test_silenced_watch_delivers_nothing_and_resume_gets_the_missed_events(
    api_server: ApiServer,
) -> None:
    rtype = api_server.resource_type("configmaps")
    async with http_client(api_server) as http:
        rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
        seen: list[dict[str, object]] = []
        ended = anyio.Event()

        async def watch() -> None:
            params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            async with http.stream("GET", CM, params=params) as resp:
                async for line in resp.aiter_lines():
                    if line:
                        seen.append(orjson.loads(line))
            ended.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            with anyio.fail_after(5):
                await api_server.wait_for_watches(1)
            assert silence_watches(api_server.storage) == 1
            assert silence_watches(api_server.storage) == 0  # already silent
            api_server.ops.create(rtype, "default", configmap("missed"))
            for coll in api_server.storage.collections.values():
                for watcher in coll.watchers:
                    watcher.offer_bookmark(api_server.storage.rv)
            assert api_server.watch_count("configmaps") == 1  # still open
            assert api_server.faults.close_watches() == 1
            with anyio.fail_after(5):
                await ended.wait()
        assert seen == []
        params = {"watch": "1", "resourceVersion": rv}
        async with http.stream("GET", CM, params=params) as resp:
            async for line in resp.aiter_lines():
                if line:
                    event = orjson.loads(line)
                    break
        assert event["type"] == "ADDED"
        assert event["object"]["metadata"]["name"] == "missed"
