"""Every way of building a client reads the same: ``async with Client.infer() as client`` like
``async with Client.from_kubeconfig(path) as client``; ``await Client.infer()`` still works."""

from __future__ import annotations

import pytest

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.testing.server import ApiServer

pytestmark = pytest.mark.anyio

NAMESPACE = ApiResource.builtin("Namespace")


async def expect_closed(client: Client) -> None:
    with pytest.raises(RuntimeError, match="closed"):
        await Api(client, NAMESPACE).get("default")


async def test_infer_and_from_kubeconfig_are_both_async_context_managers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ApiServer() as server:
        monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig_path))
        async with Client.infer() as inferred:
            assert await Api(inferred, NAMESPACE).get("default")
        await expect_closed(inferred)
        async with Client.from_kubeconfig(str(server.kubeconfig_path)) as from_file:
            assert await Api(from_file, NAMESPACE).get("default")
        await expect_closed(from_file)
        awaited = await Client.infer()
        async with awaited:
            assert await Api(awaited, NAMESPACE).get("default")
        await expect_closed(awaited)
