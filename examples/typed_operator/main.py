"""Run the typed Website operator, with its metrics and health probes.

    python -m examples.typed_operator --embedded   # self-contained demo on the embedded API server
    python -m examples.typed_operator              # on the cluster of $KUBECONFIG / in-cluster
    python -m kube_runtime crd examples.typed_operator.resources:Website   # its CRD, as YAML

``--embedded`` starts the embedded API server in this process, installs the CRD generated from the
model, and walks a sample Website through its life: published (ConfigMap rendered, ``Ready``
condition), edited (re-rendered), its ConfigMap deleted (re-rendered), the Website deleted
(cleanup behind the finalizer, ConfigMap garbage-collected). It exits 0 once each step converged
(1 if one did not within 30 s). Without ``--embedded`` it runs until SIGINT/SIGTERM;
``--install-crd`` installs the CRD first. Logs are JSON lines on stderr
(``KUBE_RUNTIME_LOG_FORMAT=console`` for plain text); ``/metrics`` and the probes are served on
controller-runtime's flags (see ``--help``).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import anyio
import structlog

from examples.typed_operator.controller import FINALIZER, Context, build_controller, reconcile
from examples.typed_operator.resources import Website, WebsiteSpec
from kube_runtime.client import Api, ApiError, ApiResource, Client
from kube_runtime.controller import ControllerError, ControllerOptions
from kube_runtime.observe import Observability, ServerOptions, configure_logging
from kube_runtime.resources import ConfigMap, ObjectMeta, TypedApi, crd, find_condition
from kube_runtime.testing import ApiServer

__all__ = ["install_crd", "main", "scenario"]

log = structlog.get_logger("examples.typed_operator")
CRDS = ApiResource.builtin("CustomResourceDefinition")


async def install_crd(client: Client) -> None:
    """Create (or keep) the generated CRD and wait until Websites can be listed."""
    try:
        await Api(client, CRDS).create(crd(Website))
    except ApiError as err:
        if err.code != 409:
            raise
    await wait_for("CRD served", lambda: _served(client))


async def _served(client: Client) -> bool:
    try:
        await TypedApi(client, Website).list(limit=1)
    except ApiError as err:
        if err.code != 404:
            raise
        return False
    return True


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the API server until ``check()`` holds (the demo watches from the outside, as a user
    would with kubectl); give up after 30 s."""
    with anyio.fail_after(30):
        while not await check():  # noqa: ASYNC110  (polls remote state, not an in-process flag)
            await anyio.sleep(0.05)
    log.info("converged", step=what)


async def scenario(client: Client, ctx: Context, namespace: str = "default") -> None:
    """A Website's life, checked from the outside."""
    websites = TypedApi(client, Website, namespace)
    pages = TypedApi(client, ConfigMap, namespace)
    await websites.create(Website(metadata=ObjectMeta(name="home"), spec=WebsiteSpec(title="Home")))

    async def page_says(text: str) -> bool:
        page = await pages.get_opt("home-site")
        return page is not None and text in (page.data or {}).get("index.html", "")

    async def ready() -> bool:
        site = await websites.get("home")
        status = site.status
        condition = find_condition(status.conditions if status else None, "Ready")
        return (
            condition is not None
            and condition.status == "True"
            and condition.observed_generation == site.metadata.generation
        )

    await wait_for("page rendered", lambda: page_says("<title>Home</title>"))
    await wait_for("Ready condition set", ready)
    site = await websites.get("home")
    assert FINALIZER in (site.metadata.finalizers or [])

    site.spec.title = "Welcome"
    await websites.replace(site)
    await wait_for("page re-rendered", lambda: page_says("<title>Welcome</title>"))
    await wait_for("Ready for the new generation", ready)

    await pages.raw.delete("home-site")
    await wait_for("deleted page restored", lambda: page_says("<title>Welcome</title>"))

    await websites.raw.delete("home")

    async def gone() -> bool:
        return await websites.get_opt("home") is None and await pages.get_opt("home-site") is None

    await wait_for("website and page deleted", gone)
    assert ctx.cleaned_up == ["home"]
    log.info("scenario finished")


async def run(args: argparse.Namespace) -> int:
    options = ControllerOptions.from_arguments(args)
    async with AsyncExitStack() as stack:
        if args.embedded:
            server = await stack.enter_async_context(ApiServer())
            client: Client = server.client
        else:
            client = await stack.enter_async_context(Client.infer())
        if args.embedded or args.install_crd:
            await install_crd(client)
        ctx = Context(client)
        controller = build_controller(client, options.namespace).with_config(concurrency=options.concurrency)
        obs = Observability(ServerOptions.from_arguments(args), client=client)
        obs.add_controller(controller.controller)
        finished = anyio.Event()
        if args.embedded:
            controller.graceful_shutdown_on(finished)
        else:
            controller.shutdown_on_signal()
        outcome = 0

        def on_item(item: object) -> None:
            if isinstance(item, ControllerError):
                log.warning("reconcile error", error=str(item))

        async def demo() -> None:
            nonlocal outcome
            try:
                await scenario(client, ctx)
            except (TimeoutError, AssertionError) as exc:
                log.error("scenario failed", error=repr(exc))
                outcome = 1
            finally:
                finished.set()

        async with obs, anyio.create_task_group() as tg:
            log.info("serving", metrics=obs.server.metrics_url, probes=obs.server.health_url)
            if args.embedded:
                tg.start_soon(demo)
            await obs.run(controller.controller, controller.reconciler(reconcile), None, ctx, on_item=on_item)
        log.info("stopped")
        return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="typed_operator", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="run the demo on the embedded API server")
    parser.add_argument("--install-crd", action="store_true", help="install the Website CRD first")
    ControllerOptions.add_arguments(parser)  # --concurrency, --namespace, leader election flags
    ServerOptions.add_arguments(parser)  # --metrics-bind-address, --health-probe-bind-address, ...
    args = parser.parse_args(argv)
    configure_logging()
    return anyio.run(run, args)
