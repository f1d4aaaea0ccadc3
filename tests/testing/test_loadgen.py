"""The load generator's churn: byte-built writes are ordinary, consistent MODIFIED events."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import orjson

from kube_runtime.testing import ApiServer
from kube_runtime.testing.apiserver.loadgen import EMIT_ANNOTATION
from tests.testing.helpers import CM, configmap, http_client


async def _watch_lines(
    http: httpx.AsyncClient, rv: str, count: int, started: anyio.Event, out: list[dict[str, Any]]
) -> None:
    async with http.stream("GET", CM, params={"watch": "1", "resourceVersion": rv}) as watch:
        started.set()
        async for line in watch.aiter_lines():
            if line:
                out.append(orjson.loads(line))
                if len(out) == count:
                    return


async def test_churn_events_match_stored_objects_and_follow_other_writes() -> None:
    async with ApiServer() as server:
        rtype = server.resource_type("configmaps")
        async with http_client(server) as http:
            for i in range(3):
                assert (await http.post(CM, json=configmap(f"cm-{i}", k="v"))).status_code == 201
            rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
            before = time.time_ns()

            seen: list[dict[str, Any]] = []
            started = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_lines, http, rv, 6, started, seen)
                await started.wait()
                await server.wait_for_watches(1)
                await server.load.churn(rtype, "default", 3)
                # A write by someone else between churns: the next churn must build on it.
                patch = {"metadata": {"labels": {"patched": "yes"}}, "data": {"k": "changed"}}
                resp = await http.patch(
                    f"{CM}/cm-0",
                    content=orjson.dumps(patch),
                    headers={"Content-Type": "application/merge-patch+json"},
                )
                assert resp.status_code == 200
                await server.load.churn(rtype, "default", 2)

            types = [ev["type"] for ev in seen]
            assert types == ["MODIFIED"] * 6
            rvs = [int(ev["object"]["metadata"]["resourceVersion"]) for ev in seen]
            assert rvs == sorted(rvs)
            assert len(set(rvs)) == 6
            for ev in seen[:3] + seen[4:]:
                stamp = int(ev["object"]["metadata"]["annotations"][EMIT_ANNOTATION])
                assert before <= stamp <= time.time_ns()
            after_patch = seen[4]["object"]
            assert after_patch["metadata"]["name"] == "cm-0"
            assert after_patch["metadata"]["labels"] == {"patched": "yes"}
            assert after_patch["data"] == {"k": "changed"}
            # What the watch carried is what the server stores (bytes and decoded view alike).
            for ev in seen[-2:]:
                name = ev["object"]["metadata"]["name"]
                stored = (await http.get(f"{CM}/{name}")).json()
                assert stored == ev["object"]
                assert server.objects("configmaps", "default")[int(name[-1])] == ev["object"]
            # An exact list at an old resourceVersion rolls back byte-built writes too.
            old = (
                await http.get(CM, params={"resourceVersion": str(rvs[0]), "resourceVersionMatch": "Exact"})
            ).json()
            by_name = {o["metadata"]["name"]: o for o in old["items"]}
            assert by_name["cm-0"]["metadata"]["resourceVersion"] == str(rvs[0])
            assert "labels" not in by_name["cm-0"]["metadata"]


async def test_lifecycle_creates_and_deletes_unique_objects_keeping_at_most_linger() -> None:
    async with ApiServer() as server:
        rtype = server.resource_type("configmaps")
        async with http_client(server) as http:
            rv = (await http.get(CM)).json()["metadata"]["resourceVersion"]
            seen: list[dict[str, Any]] = []
            started = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_lines, http, rv, 20, started, seen)
                await started.wait()
                await server.wait_for_watches(1)
                stats = await server.load.lifecycle(rtype, "default", 10, rate=10_000.0, linger=3)
            assert stats.done == 10
            assert server.objects("configmaps", "default") == []
            events = [(ev["type"], ev["object"]["metadata"]["name"]) for ev in seen]
            names = [f"cycle-{i}" for i in range(10)]
            assert [name for kind, name in events if kind == "ADDED"] == names
            assert [name for kind, name in events if kind == "DELETED"] == names
            live, most = set(), 0
            for kind, name in events:
                if kind == "ADDED":
                    live.add(name)
                else:
                    live.remove(name)
                most = max(most, len(live))
            assert most == 4  # a new one is created before the oldest of ``linger`` goes
