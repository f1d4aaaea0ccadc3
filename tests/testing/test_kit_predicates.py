"""The property-test kit and a controller that filters its main watch: with the controller's
predicate (``ControllerSpec.predicate``) the kit expects the latest *fingerprint* to be reconciled,
so the controller's own status writes, which its predicate drops by design, do not read as lost
triggers; without it a run whose last write is such a status write is reported as lagging. Typed
reconcilers work under the kit (examples/website converges with and without the predicate: its
children's writes re-trigger it after each status write)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from examples.website import NAME, Context, Website, WebsiteStatus, reconcile
from kube_runtime import predicates
from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action
from kube_runtime.events import Recorder, Reporter
from kube_runtime.resources import TypedApi, TypedController, apply_status, install_crd, set_condition
from kube_runtime.testing.controller_harness import (
    ClusterState,
    ControllerSpec,
    ControllerUnderTest,
    ScheduleFailed,
    run_on_embedded_server,
)
from kube_runtime.testing.schedules import EditChild, Pause, Schedule, Update
from kube_runtime.watcher import WatcherConfig

pytestmark = pytest.mark.timeout(600)

ONLY_CHANGES = [predicates.generation, predicates.finalizers]
CONFIG_MAP = ApiResource.builtin("ConfigMap")
PASSES = itertools.count(1)


def build(client: Client, config: WatcherConfig) -> ControllerUnderTest:
    sites = TypedApi(client, Website, "default")
    controller = TypedController(sites, config, predicates=ONLY_CHANGES, registry=CollectorRegistry())
    controller.owns(Api(client, CONFIG_MAP, "default"))
    ctx = Context(client, Recorder(client, Reporter(NAME)))
    return ControllerUnderTest(controller.controller, controller.reconciler(reconcile), None, ctx)


def site(name: str, content: str) -> dict[str, Any]:
    api_version = Website.api_resource.api_version
    return {
        "apiVersion": api_version,
        "kind": "Website",
        "metadata": {"name": name},
        "spec": {"content": content},
    }


def serves_its_content(state: ClusterState) -> None:
    for name, obj in state.objects.items():
        assert state.children[name]["data"]["index.html"] == obj["spec"]["content"], name


async def setup(client: Client) -> None:
    await install_crd(client, Website, field_manager=NAME)


WEBSITES = ControllerSpec(
    resource=Website.api_resource,
    build=build,
    make_object=site,
    content_patch=lambda content: {"spec": {"content": content}},
    child_resource=CONFIG_MAP,
    child_patch=lambda content: {"data": {"index.html": content}},
    invariants=[serves_its_content],
    setup=setup,
    predicate=predicates.combine(*ONLY_CHANGES),
)
SCHEDULE = Schedule(
    "paged", None, 2, (Pause(1.0), Update(0, "a"), EditChild(1, "b"), Pause(1.0), Update(1, "c"))
)


def test_the_website_example_converges_under_the_kit() -> None:
    for spec in (WEBSITES, dataclasses.replace(WEBSITES, predicate=None)):
        report = run_on_embedded_server(spec, SCHEDULE, settle_timeout=60)
        assert report.reconciles >= 4


async def stamp_every_pass(site_: Website, ctx: Context) -> Action:
    """The example's reconcile, then a status write that differs on every pass (a pass counter):
    without a predicate it would wake itself forever; with ``generation`` it is filtered out."""
    action = await reconcile(site_, ctx)
    if site_.metadata.deletion_timestamp is None:
        status = site_.status or WebsiteStatus()
        stamped = set_condition(status.conditions, "Stamped", True, "Pass", f"pass {next(PASSES)}")
        sites = TypedApi(ctx.client, Website, site_.namespace)
        await apply_status(sites, site_, WebsiteStatus(conditions=stamped), field_manager="stamper")
    return action


def build_stamping(client: Client, config: WatcherConfig) -> ControllerUnderTest:
    built = build(client, config)
    sites = TypedApi(client, Website, "default")
    typed = TypedController(sites, registry=CollectorRegistry())
    return dataclasses.replace(built, reconcile=typed.reconciler(stamp_every_pass))


STAMPING = dataclasses.replace(WEBSITES, build=build_stamping)


def test_with_the_predicate_a_controller_writing_its_status_last_converges() -> None:
    report = run_on_embedded_server(STAMPING, SCHEDULE, settle_timeout=60)
    assert report.reconciles >= 4


def test_without_the_predicate_the_kit_expects_every_resource_version() -> None:
    with pytest.raises(ScheduleFailed) as failed:
        run_on_embedded_server(dataclasses.replace(STAMPING, predicate=None), SCHEDULE, settle_timeout=60)
    assert "not reconciled" in str(failed.value)
