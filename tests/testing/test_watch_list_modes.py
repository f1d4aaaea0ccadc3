"""The embedded server without streaming lists: ``watch_list="off"`` refuses them as kube-apiserver
with its ``WatchList`` gate off does, ``"ignored"`` serves them as a plain watch, as a server older
than the parameters does. The watcher's fallback is tested against both in
tests/watcher/test_streaming_fallback.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from kube_runtime.testing import ApiServer
from kube_runtime.testing.apiserver.settings import ServerSettings
from tests.testing.cli import serve_cli
from tests.testing.helpers import CM, configmap, http_client
from tests.testing.test_cli import _client

STREAMING = {
    "watch": "true",
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
    "resourceVersion": "0",
}
GATE_OFF = "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"


def assert_refused_as_with_the_gate_off(resp: httpx.Response) -> None:
    assert resp.status_code == 422
    body = resp.json()
    assert body["reason"] == "Invalid"
    assert (
        body["message"] == f'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: {GATE_OFF}'
    )
    assert body["details"]["causes"] == [
        {"reason": "FieldValueForbidden", "message": f"Forbidden: {GATE_OFF}", "field": "sendInitialEvents"}
    ]


async def test_off_refuses_a_streaming_list_and_serves_everything_else(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        await http.post(CM, json=configmap("a"))
        api_server.settings.watch_list = "off"  # applies to the requests that come next
        assert_refused_as_with_the_gate_off(await http.get(CM, params=STREAMING))
        listed = (await http.get(CM)).json()
        assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
        rv = listed["metadata"]["resourceVersion"]
        params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}
        async with http.stream("GET", CM, params=params) as watch:
            assert watch.status_code == 200
            await http.post(CM, json=configmap("b"))
            async for line in watch.aiter_lines():
                event = orjson.loads(line)
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
                break


async def test_ignored_serves_a_streaming_list_as_a_plain_watch_without_the_end_marker() -> None:
    async with ApiServer(watch_list="ignored", bookmark_interval=0.05) as server, http_client(server) as http:
        for name in ("a", "b", "c"):
            await http.post(CM, json=configmap(name))
        events: list[dict[str, Any]] = []
        with anyio.fail_after(30):
            async with http.stream("GET", CM, params=STREAMING) as watch:
                assert watch.status_code == 200
                async for line in watch.aiter_lines():
                    events.append(orjson.loads(line))
                    if events[-1]["type"] == "BOOKMARK":
                        break
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events[:3]] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
    ]
    (end,) = events[3:]
    assert "annotations" not in end["object"]["metadata"]  # an ordinary bookmark, not the end marker


async def test_the_cli_takes_the_mode(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with serve_cli(kubeconfig, "--watch-list", "off"), _client(kubeconfig) as http:
        assert_refused_as_with_the_gate_off(await http.get(CM, params=STREAMING))


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="watch_list must be one of on, off, ignored"):
        ServerSettings(watch_list="maybe")  # type: ignore[arg-type]
