"""kube-controller-manager from the same build collects garbage (ownerReferences) against envtest."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from kube_runtime.testing.envtest import Envtest, EnvtestBinaries

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]

CM_PATH = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
            }
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}


async def test_background_deletion_collects_dependents(envtest_kcm_binaries: EnvtestBinaries) -> None:
    async with (
        Envtest(envtest_kcm_binaries, controller_manager=True) as env,
        env.http_client() as client,
    ):
        assert set(env.pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        parent = (await client.post(CM_PATH, json=configmap("parent"))).raise_for_status().json()
        child = (await client.post(CM_PATH, json=configmap("child", owner=parent))).raise_for_status().json()
        params = {
            "watch": "true",
            "fieldSelector": "metadata.name=child",
            "resourceVersion": child["metadata"]["resourceVersion"],
            "timeoutSeconds": "120",
        }
        with anyio.fail_after(120):
            async with client.stream("GET", CM_PATH, params=params) as watch:
                assert watch.status_code == 200
                deleted = await client.request(
                    "DELETE", f"{CM_PATH}/parent", json={"propagationPolicy": "Background"}
                )
                deleted.raise_for_status()
                async for line in watch.aiter_lines():
                    if line and json.loads(line)["type"] == "DELETED":
                        break
                else:
                    pytest.fail("watch ended before the garbage collector deleted the child")
        assert (await client.get(f"{CM_PATH}/child")).status_code == 404
