"""A paged initial list under compaction faster than the list: over HTTP against the embedded server.

A page whose ``continue`` token expired (410 ``Expired``) used to restart the paged list from
scratch, so with history compacted between every two pages the list never finished. The watcher
now lists everything in one request instead (client-go's pager, ``FullListIfExpired``).
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.client.head import RawList
from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.watch_metrics import observe_watch
from kube_runtime.store import Store, store
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import Apply, Init, InitApply, InitDone, WatcherConfig, WatcherError, watcher

pytestmark = pytest.mark.anyio

CM = ApiResource.builtin("ConfigMap")
OBJECTS = 3000
PAGE = 50
SELECTOR = "app=listed"
LISTED = {"app": "listed"}


class CompactingBetweenPages:
    """An ``Api`` over HTTP whose every page with a ``continue`` token is followed by a write
    elsewhere (another namespace) and a compaction of the server's history, before the watcher
    can ask for the next page: each token's resourceVersion is then older than the compaction
    point, so every next page gets 410 ``Expired``. Records the parameters of every list call."""

    def __init__(self, api: Api, server: ApiServer) -> None:
        self._api = api
        self._server = server
        self._churn = itertools.count()
        self.resource = api.resource
        self.watch = api.watch
        self.list_calls: list[dict[str, Any]] = []
        self.compactions = 0

    async def list_raw(self, **params: Any) -> RawList:
        self.list_calls.append(params)
        page = await self._api.list_raw(**params)
        if page.continue_token:
            name = f"churn-{next(self._churn)}"
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
            self._server.ops.create(self._server.resource_type(CM), "kube-system", obj)
            self._server.faults.compact()
            self.compactions += 1
        return page

    async def list(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("the watcher lists through list_raw")


def seed(server: ApiServer) -> None:
    rtype = server.resource_type(CM)
    for i in range(OBJECTS):
        labels = dict(LISTED) if i % 10 else {"app": "other"}  # the selector must hold on every list
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i:05d}", "labels": labels},
            "data": {"i": str(i)},
        }
        server.ops.create(rtype, "default", obj)


def listed_on_server(server: ApiServer) -> dict[str, str]:
    return {
        o["metadata"]["name"]: o["metadata"]["resourceVersion"]
        for o in server.objects(CM, "default")
        if o["metadata"]["labels"]["app"] == "listed"
    }


def in_store(reader: Store) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in reader.state()}


async def test_expired_continue_tokens_fall_back_to_one_full_list(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kube_runtime.watcher")
    seed(api_server)
    api = CompactingBetweenPages(Api(api_server.client, CM, "default"), api_server)
    config = WatcherConfig().with_page_size(PAGE).labels(SELECTOR)
    reader, writer = store(CM)
    registry = CollectorRegistry()
    stream = observe_watch(watcher(api, config), "cms", registry=registry).reflect(writer)
    inits = 0
    applied = 0
    async with stream:
        with anyio.fail_after(60):
            async for item in stream:
                # The old watcher yielded InitialListFailed(410 Expired) at every second page and
                # started over with a new Init, forever: at most one restart is allowed here.
                assert not isinstance(item, WatcherError), f"the paged list failed: {item}"
                if isinstance(item, Init):
                    inits += 1
                    assert inits <= 2, "the list restarted again"
                elif isinstance(item, InitApply):
                    applied += 1
                elif isinstance(item, InitDone):
                    break
        assert reader.is_ready()
        expected = listed_on_server(api_server)
        assert len(expected) == OBJECTS - OBJECTS // 10
        assert in_store(reader) == expected
        # Page 1 (kept until the Init of the fallback), page 2 expired, then one full list.
        assert inits == 2
        assert applied == PAGE + len(expected)
        assert api.compactions == 1
        first, second, full = api.list_calls
        assert (first["limit"], first["continue_token"]) == (PAGE, None)
        assert second["limit"] == PAGE
        assert second["continue_token"]
        assert (full["limit"], full["continue_token"]) == (None, None)
        assert {k: v for k, v in full.items() if k not in ("limit", "continue_token")} == {
            k: v for k, v in first.items() if k not in ("limit", "continue_token")
        }
        assert full["label_selector"] == SELECTOR
        # The watch goes on from the full list's resourceVersion.
        late = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "labels": dict(LISTED)}}
        await Api(api_server.client, CM, "default").create(late)
        with anyio.fail_after(10):
            item = await anext(stream)
        assert isinstance(item, Apply)
        assert item.object["metadata"]["name"] == "late"
    # Observable: an INFO line naming the resource, counted as a relist, and no error.
    fallbacks = [r for r in caplog.records if "continue token expired" in r.getMessage()]
    assert len(fallbacks) == 1
    assert fallbacks[0].levelno == logging.INFO
    assert "configmaps" in fallbacks[0].getMessage()
    # It names the list's selector (two watches of one kind tell apart) and the status, not the
    # server's whole message.
    assert f"label_selector {SELECTOR!r}" in fallbacks[0].getMessage()
    assert "(410 Expired)" in fallbacks[0].getMessage()
    assert fallbacks[0].label_selector == SELECTOR  # type: ignore[attr-defined]
    assert registry.get_sample_value("kube_runtime_watch_relists_total", {"watch": "cms"}) == 1
    assert registry.get_sample_value("kube_runtime_watch_errors_total", {"watch": "cms", "code": "410"}) == 0
