"""KEP-5866 server-side sharded list and watch: the hash and ranges, the embedded server's
``shardSelector`` (with ``shardInfo``), and the watcher's clear error when a server ignores it."""

from __future__ import annotations

import itertools

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.client.errors import ApiError
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import Apply, InitDone, WatcherConfig, watcher
from kube_runtime.watcher.event import InitialListFailed
from kube_runtime.watcher.shards import (
    HASH_SPACE,
    ShardSelectorUnsupported,
    fnv1a64,
    shard_range_selector,
    shard_ranges,
)
from tests.sharding.harness import CONFIGMAPS


def test_fnv1a64_known_values() -> None:
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a64("foobar") == 0x85944171F73967E8


def test_ranges_cover_the_hash_space_without_gaps() -> None:
    for count in (1, 2, 3, 7):
        ranges = shard_ranges(count)
        assert ranges[0][0] == 0
        assert ranges[-1][1] == HASH_SPACE
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert (
        shard_range_selector(0, 1)
        == "shardRange(object.metadata.uid, '0x0000000000000000', '0x10000000000000000')"
    )
    assert shard_range_selector(1, 2).endswith("'0x8000000000000000', '0x10000000000000000')")
    with pytest.raises(ValueError, match="not in"):
        shard_range_selector(2, 2)


async def test_shards_partition_a_list_and_the_server_says_so(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIGMAPS, "default")
    for i in range(30):
        await api.create({"metadata": {"name": f"cm-{i}"}})
    seen: list[set[str]] = []
    for index in range(3):
        selector = shard_range_selector(index, 3)
        listing = await api.list(shard_selector=selector)
        assert listing["metadata"]["shardInfo"] == {"selector": selector}
        names = {o["metadata"]["name"] for o in listing["items"]}
        for obj in listing["items"]:
            start, end = shard_ranges(3)[index]
            assert start <= fnv1a64(obj["metadata"]["uid"]) < end
        seen.append(names)
    assert set().union(*seen) == {f"cm-{i}" for i in range(30)}
    assert sum(len(s) for s in seen) == 30
    assert all(seen)  # 30 random uids: every third of the space got some
    assert "shardInfo" not in (await api.list())["metadata"]
    with pytest.raises(ApiError) as caught:
        await api.list(shard_selector="shardRange(object.metadata.name, '0x0', '0x1')")
    assert caught.value.code == 400


async def test_a_sharded_watcher_sees_only_its_range(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIGMAPS, "default")
    selector = shard_range_selector(0, 2)
    start, end = shard_ranges(2)[0]
    mine: list[str] = []
    async with watcher(api, WatcherConfig().shards(selector)) as stream:
        async for item in stream:
            if isinstance(item, InitDone):
                break
        for i in range(20):
            created = await api.create({"metadata": {"name": f"w-{i}"}})
            if start <= fnv1a64(created["metadata"]["uid"]) < end:
                mine.append(created["metadata"]["name"])
        received: list[str] = []
        with anyio.fail_after(30):
            async for item in stream:
                assert isinstance(item, Apply), item
                received.append(item.object["metadata"]["name"])
                if len(received) == len(mine):
                    break
    assert received == mine


async def test_a_server_without_sharded_lists_is_a_clear_error(api_server: ApiServer) -> None:
    api_server.settings.sharded_list_watch = False  # as a server without KEP-5866 (or its gate off)
    api = Api(api_server.client, CONFIGMAPS, "default")
    await api.create({"metadata": {"name": "cm"}})
    assert "shardInfo" not in (await api.list(shard_selector=shard_range_selector(0, 2)))["metadata"]
    async with watcher(api, WatcherConfig().shards(shard_range_selector(0, 2))) as stream:
        with anyio.fail_after(30):
            async for item in stream:
                if isinstance(item, Exception):
                    break
    assert isinstance(item, InitialListFailed)
    assert isinstance(item.__cause__, ShardSelectorUnsupported)
    assert "KEP-5866" in str(item)
