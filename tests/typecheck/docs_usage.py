"""Each public helper used the way README.md and docs/ show it. Never run: ``mypy --strict``
checks it (tests/typecheck/test_mypy_strict.py), so a helper whose annotations reject the
documented use (and would need a ``cast``) fails the suite."""

from __future__ import annotations

from typing import Any

from examples.website import Website
from kube_runtime import predicates
from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action, Controller, ObjectNotFound, Reconciled, ReconcilerFailed
from kube_runtime.events import EventReport, EventType, Recorder, Reporter
from kube_runtime.finalizer import FinalizerApply, FinalizerCleanup, FinalizerEvent, finalizer
from kube_runtime.leader import LeaderElector
from kube_runtime.manager import Manager, ManagerOptions
from kube_runtime.observe import Observability, ServerOptions, configure_logging, setup_tracing
from kube_runtime.resources import ConfigMap, TypedApi, TypedController, install_crd
from kube_runtime.store import store
from kube_runtime.wait import await_condition, is_deleted
from kube_runtime.watcher import WatcherConfig, watcher

WEBSITE = ApiResource("example.com", "v1", "Website", "websites")
CONFIG_MAP = ApiResource.builtin("ConfigMap")


async def clients() -> None:
    async with Client.infer() as inferred:
        assert inferred.default_namespace
    async with Client.from_kubeconfig("/path/to/kubeconfig") as from_file:
        assert from_file.default_namespace
    awaited: Client = await Client.infer()
    await awaited.aclose()


async def reconcile(site: dict[str, Any], client: Client) -> Action:
    websites = Api(client, WEBSITE, site["metadata"]["namespace"])
    recorder = Recorder(client, Reporter("website-operator"))

    async def handle(event: FinalizerEvent) -> Action:
        if isinstance(event, FinalizerApply):
            await websites.patch_status(
                event.object["metadata"]["name"],
                {"apiVersion": WEBSITE.api_version, "kind": WEBSITE.kind, "status": {"ready": True}},
                patch_type="apply",
                field_manager="website-operator",
            )
            await recorder.publish(
                EventReport(EventType.NORMAL, "Ready", "Reconcile", "served"), event.object
            )
            return Action.requeue(300)
        assert isinstance(event, FinalizerCleanup)
        return Action.await_change()

    return await finalizer(websites, "example.com/cleanup", site, handle)


def error_policy(_site: dict[str, Any], _error: Exception, _client: Client) -> Action:
    return Action.requeue_with_backoff()


async def controllers(client: Client) -> None:
    controller = (
        Controller(
            Api(client, WEBSITE, "default"),
            WatcherConfig(),
            predicates=[predicates.generation, predicates.deletion],
        )
        .owns(Api(client, CONFIG_MAP, "default"), predicates=[predicates.labels])
        .watches(Api(client, CONFIG_MAP), None, lambda _obj: [], predicates=[predicates.annotations])
        .with_config(concurrency=4)
        .shutdown_on_signal()
    )
    async with controller.run(reconcile, error_policy, client) as results:
        async for item in results:
            if isinstance(item, Reconciled):
                ref, action = item
                print(ref.name, action.requeue_after)
            elif isinstance(item, ObjectNotFound):
                assert item.obj_ref.name
            elif isinstance(item, ReconcilerFailed):
                assert item.error.__traceback__ is not None


async def observability(client: Client) -> None:
    configure_logging()
    setup_tracing("website-operator").shutdown()
    controller = Controller(Api(client, WEBSITE, "default"))
    async with Observability(ServerOptions(), client=client) as obs:
        await obs.run(controller, reconcile, error_policy, client, on_item=print)


async def typed(client: Client) -> None:
    async def reconcile_config_map(cm: ConfigMap, _client: Client) -> Action:
        assert cm.metadata.name
        return Action.requeue(300)

    controller = TypedController(TypedApi(client, ConfigMap, "default")).shutdown_on_signal()
    await controller.controller.run(controller.reconciler(reconcile_config_map), None, client)


async def streams_and_leaders(client: Client) -> None:
    reader, writer = store(WEBSITE)
    stream = (
        watcher(Api(client, WEBSITE), WatcherConfig())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates.combine(predicates.generation, predicates.deletion))
    )
    async with stream:
        async for _item in stream:
            break
    assert reader.get is not None
    async with LeaderElector(client, "website-operator", "default") as elector:
        controller = Controller(Api(client, WEBSITE, "default"))
        await elector.run_while_leading(controller.run, reconcile, error_policy, client)
    gone = await await_condition(Api(client, WEBSITE, "default"), "site", is_deleted("uid"))
    assert gone is None


async def managers(client: Client) -> None:
    options = ManagerOptions.parse(["--leader-elect"], name="website-operator")
    manager = Manager(client, options, name="website-operator", warmup=True)
    shared = manager.shared(WEBSITE, WatcherConfig(), name="websites")
    manager.add(
        Controller.for_shared(shared, name="a"), reconcile, error_policy, client, store_name="websites"
    )
    manager.add(manager.controller(CONFIG_MAP, predicates=[predicates.labels]), reconcile, None, client)
    await manager.run()


async def setup_website(manager: Manager) -> None:
    if manager.arguments.install_crd:
        await install_crd(manager.client, Website, field_manager="website-operator")


def website_main(argv: list[str] | None = None) -> int:
    return Manager.main(
        "website-operator",
        setup_website,
        argv,
        add_arguments=lambda parser: parser.add_argument("--install-crd", action="store_true"),
    )
