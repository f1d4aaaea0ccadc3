"""Fault injection: watches closed, failing requests, latency, compaction, token expiry, restarts."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import orjson
import pytest

from kube_runtime.testing import ApiServer
from kube_runtime.testing.clock import virtual_clock_backend
from tests.testing.helpers import CM, configmap, http_client


async def _lines(resp: httpx.Response, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for line in resp.aiter_lines():
        if line:
            out.append(orjson.loads(line))
            if len(out) == count:
                break
    return out


async def test_close_watches_ends_every_stream(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        await http.post(CM, json=configmap("a"))
        ended = 0
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal ended
                async with http.stream("GET", CM, params={"watch": "1"}) as resp:
                    async for _ in resp.aiter_lines():
                        pass
                ended += 1

            for _ in range(3):
                tg.start_soon(watch)
            with anyio.fail_after(5):
                await api_server.wait_for_watches(3)
            assert api_server.faults.close_watches() == 3
        assert ended == 3


@pytest.mark.parametrize(
    ("code", "reason"), [(429, "TooManyRequests"), (500, "InternalError"), (503, "ServiceUnavailable")]
)
async def test_fail_next_requests(api_server: ApiServer, code: int, reason: str) -> None:
    async with http_client(api_server) as http:
        api_server.faults.fail_next(2, code, retry_after=3 if code == 429 else None)
        for _ in range(2):
            resp = await http.get(CM)
            assert resp.status_code == code
            assert resp.json()["reason"] == reason
            if code == 429:
                assert resp.headers["Retry-After"] == "3"
                assert resp.json()["details"]["retryAfterSeconds"] == 3
        assert (await http.get(CM)).status_code == 200


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_latency_delays_requests_in_virtual_time(anyio_backend: Any) -> None:
    async with ApiServer(create_client=False) as server, http_client(server, timeout=None) as http:
        server.faults.set_latency(5.0)
        start = anyio.current_time()
        assert (await http.get(CM)).status_code == 200
        assert anyio.current_time() - start >= 5.0
        server.faults.set_latency(0)
        start = anyio.current_time()
        await http.get(CM)
        assert anyio.current_time() - start < 5.0


async def test_compaction_expires_old_resource_versions(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        for i in range(5):
            await http.post(CM, json=configmap(f"c{i}"))
        first = (await http.get(CM, params={"limit": "2"})).json()
        old_rv = first["metadata"]["resourceVersion"]
        await http.post(CM, json=configmap("later"))
        api_server.faults.compact()
        # a resumed watch gets an ERROR event with a 410 Status, then the stream ends
        async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": old_rv}) as resp:
            assert resp.status_code == 200
            events = await _lines(resp, 2)
        assert len(events) == 1
        assert events[0]["type"] == "ERROR"
        assert events[0]["object"]["code"] == 410
        assert events[0]["object"]["reason"] == "Expired"
        # the continue token of the old snapshot is expired too
        resp = await http.get(CM, params={"limit": "2", "continue": first["metadata"]["continue"]})
        assert resp.status_code == 410
        assert resp.json()["reason"] == "Expired"
        assert resp.json()["message"].startswith(
            "The provided continue parameter is too old to display a consistent list result."
        )
        resp = await http.get(CM, params={"resourceVersion": old_rv, "resourceVersionMatch": "Exact"})
        assert resp.status_code == 410
        # watching from the current resourceVersion works
        current = (await http.get(CM)).json()["metadata"]["resourceVersion"]
        async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": current}) as resp:
            await http.post(CM, json=configmap("after"))
            (event,) = await _lines(resp, 1)
        assert event["type"] == "ADDED"


async def test_a_continue_token_at_the_compaction_point_is_still_served(api_server: ApiServer) -> None:
    """etcd serves a read at the compacted revision itself: a token of a list made with no write
    since is not older than the compaction point. One write later, the next compaction expires it."""
    async with http_client(api_server) as http:
        for i in range(3):
            await http.post(CM, json=configmap(f"c{i}"))
        first = (await http.get(CM, params={"limit": "2"})).json()
        token = first["metadata"]["continue"]
        assert api_server.faults.compact() == int(first["metadata"]["resourceVersion"])
        resp = await http.get(CM, params={"limit": "2", "continue": token})
        assert resp.status_code == 200
        assert resp.json()["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        await http.post(CM, json=configmap("later"))
        api_server.faults.compact()
        resp = await http.get(CM, params={"limit": "2", "continue": token})
        assert resp.status_code == 410
        assert resp.json()["reason"] == "Expired"


async def test_history_is_bounded() -> None:
    async with ApiServer(create_client=False, history_size=3) as server, http_client(server) as http:
        rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
        for i in range(5):
            await http.post(CM, json=configmap(f"h{i}"))
        async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": rv}) as resp:
            (event,) = await _lines(resp, 1)
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410


async def test_expired_token_gets_401_until_restored(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        api_server.faults.expire_token()
        resp = await http.get(CM)
        assert resp.status_code == 401
        api_server.faults.restore_token()
        assert (await http.get(CM)).status_code == 200


async def test_stop_and_restart_on_the_same_port_keeps_objects(api_server: ApiServer) -> None:
    url = api_server.url
    async with http_client(api_server) as http:
        await http.post(CM, json=configmap("survivor"))
    await api_server.faults.stop_serving()
    async with http_client(api_server) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(CM)
    await api_server.faults.start_serving()
    assert api_server.url == url
    async with http_client(api_server) as http:
        names = [i["metadata"]["name"] for i in (await http.get(CM)).json()["items"]]
    assert names == ["survivor"]


async def test_slow_watcher_is_closed_with_410() -> None:
    async with ApiServer(create_client=False, watch_queue_size=10) as server, http_client(server) as http:
        rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
        async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": rv}) as resp:
            # Commits run synchronously, so the watcher's queue fills before its task can drain it.
            cm = server.resource_type("configmaps")
            for i in range(50):
                server.ops.create(cm, "default", configmap(f"flood-{i}"))
            events = [orjson.loads(line) async for line in resp.aiter_lines() if line]
        assert events[-1]["type"] == "ERROR"
        assert events[-1]["object"]["code"] == 410
        assert len(events) <= 11
