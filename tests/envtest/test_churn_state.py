"""State kept per object goes with the object against a real kube-apiserver: ConfigMaps created,
reconciled (half of them failing) and deleted leave nothing in the result recorder's hot-loop
detector or the failure backoff (the embedded-server variant is tests/observe/test_churn_state.py)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Client
from kube_runtime.testing.envtest import Envtest
from tests.observe.test_churn_state import churn

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]


async def test_deleted_objects_leave_no_per_object_state(shared_envtest: Envtest) -> None:
    registry = CollectorRegistry()
    async with Client.from_kubeconfig(str(shared_envtest.kubeconfig_path)) as client:
        deleted, tracked, failing = await churn(client, registry, 20)
    assert deleted == {f"churn-{i}" for i in range(20)}
    assert (tracked, failing) == (0, 0)
