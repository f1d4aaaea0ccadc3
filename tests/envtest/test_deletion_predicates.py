"""What docs/troubleshooting.md's finalizer recipe rests on, against a real kube-apiserver: setting
``deletionTimestamp`` on an object with a finalizer bumps its generation, so a controller filtering
its main watch with ``predicates.generation`` (plus ``finalizers`` for the helper's own patch)
still runs the cleanup; ``predicates.deletion`` fingerprints the same update."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from prometheus_client import CollectorRegistry

from examples.website import FINALIZER, NAME, Context, Website, WebsiteSpec, reconcile
from kube_runtime import predicates
from kube_runtime.client import Client
from kube_runtime.controller import Reconciled
from kube_runtime.events import Recorder, Reporter
from kube_runtime.resources import ObjectMeta, TypedApi, TypedController, install_crd, to_dict
from kube_runtime.testing.envtest import Envtest

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]


@pytest.fixture
async def client(shared_envtest: Envtest) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(shared_envtest.kubeconfig_path)) as client:
        yield client


async def test_deletion_bumps_the_generation_of_an_object_with_a_finalizer(client: Client) -> None:
    await install_crd(client, Website, field_manager=NAME)
    sites = TypedApi(client, Website, "default")
    meta = ObjectMeta(name="bump", finalizers=["example.com/hold"])
    created = await sites.raw.create(to_dict(Website(metadata=meta, spec=WebsiteSpec(content="x"))))
    await sites.raw.delete("bump")
    deleting = await sites.raw.get("bump")
    assert deleting["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert predicates.deletion(deleting) is not None
    assert predicates.deletion(created) is None
    await sites.raw.patch("bump", {"metadata": {"finalizers": None}})


async def test_a_generation_filtered_finalizer_controller_cleans_up(client: Client) -> None:
    await install_crd(client, Website, field_manager=NAME)
    sites = TypedApi(client, Website, "default")
    only_changes = [predicates.generation, predicates.finalizers]
    controller = TypedController(sites, predicates=only_changes, registry=CollectorRegistry())
    ctx = Context(client, Recorder(client, Reporter(NAME)))
    await sites.create(Website(metadata=ObjectMeta(name="home"), spec=WebsiteSpec(content="hi")))
    deleted = False
    with anyio.fail_after(60):
        async with controller.run(reconcile, None, ctx) as results:
            async for item in results:
                if not isinstance(item, Reconciled):
                    continue
                current = await sites.raw.get_opt("home")
                if current is None:
                    break  # the cleanup ran and released the finalizer
                if not deleted and FINALIZER in (current["metadata"].get("finalizers") or []):
                    await sites.raw.delete("home")  # seen only because the generation moves
                    deleted = True
    assert deleted
    assert await sites.raw.get_opt("home") is None
