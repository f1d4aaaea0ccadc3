"""Periodic BOOKMARK events (virtual clock: no real waiting)."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest

from kube_runtime.testing import ApiServer
from kube_runtime.testing.clock import virtual_clock_backend
from tests.testing.helpers import CM, configmap, http_client

pytestmark = pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])


async def test_bookmarks_arrive_periodically_with_current_resource_version(anyio_backend: Any) -> None:
    async with (
        ApiServer(create_client=False, bookmark_interval=60) as server,
        http_client(server, timeout=None) as http,
    ):
        rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "200"}
        async with http.stream("GET", CM, params=params) as resp:
            opened = anyio.current_time()
            created = (await http.post(CM, json=configmap("b"))).json()
            arrivals = [
                (anyio.current_time() - opened, orjson.loads(line))
                async for line in resp.aiter_lines()
                if line
            ]
    events = [e for _, e in arrivals]
    types = [e["type"] for e in events]
    assert types[0] == "ADDED"
    # At 60, 120 and 180 s of the 200 s watch, and its farewell 2 s before the timeout ends it.
    assert types[1:] == ["BOOKMARK"] * 4
    assert [round(at) for at, _ in arrivals[1:]] == [60, 120, 180, 198]
    for e in events[1:]:
        assert e["object"]["kind"] == "ConfigMap"
        assert int(e["object"]["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])


async def test_no_bookmarks_unless_asked(anyio_backend: Any) -> None:
    async with (
        ApiServer(create_client=False, bookmark_interval=10) as server,
        http_client(server, timeout=None) as http,
    ):
        params = {"watch": "1", "resourceVersion": "0", "timeoutSeconds": "35"}
        with anyio.fail_after(100):
            async with http.stream("GET", CM, params=params) as resp:
                events = [orjson.loads(line) async for line in resp.aiter_lines() if line]
    assert events == []
