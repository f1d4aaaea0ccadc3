"""Run the typed Website operator, with its metrics and health probes.

    python -m examples.typed_operator --embedded   # self-contained demo on the embedded API server
    python -m examples.typed_operator              # on the cluster of $KUBECONFIG / in-cluster
    python -m kube_runtime crd examples.typed_operator.resources:Website   # its CRD, as YAML

``--embedded`` starts the embedded API server in this process, serves the operator's webhooks
(:mod:`examples.typed_operator.webhooks`) over TLS with a self-signed pair, installs the
two-version CRD converting through them and the webhook configurations, and walks a sample
Website through its life: published (ConfigMap rendered, ``Ready`` condition), edited
(re-rendered), its ConfigMap deleted (re-rendered), the Website deleted (cleanup behind the
finalizer, ConfigMap garbage-collected); then the webhooks at work: a title with markup refused, a
``v1alpha1`` Website converted, defaulted and rendered. It exits 0 once each step converged (1 if
one did not within 30 s). Without ``--embedded`` it runs until SIGINT/SIGTERM; ``--install-crd``
installs the ``v1`` CRD first, and ``--webhook-cert-file``/``--webhook-key-file`` serve the
webhooks (the CRD with conversion and the webhook configurations then come from the Helm chart
or :func:`examples.typed_operator.webhooks.install`). Logs are JSON lines on stderr
(``KUBE_RUNTIME_LOG_FORMAT=console`` for plain text); ``/metrics`` and the probes are served on
controller-runtime's flags (see ``--help``).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import anyio
import structlog

from examples.typed_operator.controller import FINALIZER, Context, build_controller, reconcile
from examples.typed_operator.resources import Website, WebsiteSpec, WebsiteV1Alpha1, WebsiteV1Alpha1Spec
from examples.typed_operator.webhooks import build_webhooks, install
from kube_runtime.client import Api, ApiError, ApiResource, Client
from kube_runtime.controller import ControllerError, ControllerOptions
from kube_runtime.observe import Observability, ServerOptions, configure_logging
from kube_runtime.resources import ConfigMap, ObjectMeta, TypedApi, crd, find_condition, to_dict
from kube_runtime.testing import ApiServer
from kube_runtime.webhooks.certs import SelfSignedCA
from kube_runtime.webhooks.config import WebhookClientConfig
from kube_runtime.webhooks.server import WebhookOptions, WebhookServer

__all__ = ["install_crd", "install_webhooks", "main", "scenario", "webhook_scenario"]

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


async def install_webhooks(client: Client, server: WebhookServer, ca_pem: bytes) -> None:
    """Install the two-version CRD and the webhook configurations pointing at ``server`` (a
    loopback URL verified by ``ca_pem``), and wait until the API server calls them."""
    await install(client, server.webhooks, WebhookClientConfig(url=server.url, ca_bundle=ca_pem))
    await wait_for("CRD served", lambda: _served(client))
    await wait_for("webhooks called", lambda: _defaulted_on_dry_run(client))


async def _defaulted_on_dry_run(client: Client) -> bool:
    probe = Website(metadata=ObjectMeta(name="probe"), spec=WebsiteSpec(title="Probe"))
    path = Website.api_resource.collection_path("default")
    created = await client.request("create", "POST", path, params={"dryRun": "All"}, body=to_dict(probe))
    return bool(created.get("spec", {}).get("body"))


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


async def webhook_scenario(client: Client, namespace: str = "default") -> None:
    """The webhooks at work, checked from the outside: a title with markup is refused with the
    validator's message; a Website written at ``v1alpha1`` is converted to ``v1``, defaulted and
    rendered, and reads back at either version."""
    websites = TypedApi(client, Website, namespace)
    legacy = TypedApi(client, WebsiteV1Alpha1, namespace)
    pages = TypedApi(client, ConfigMap, namespace)
    try:
        await websites.create(
            Website(metadata=ObjectMeta(name="markup"), spec=WebsiteSpec(title="<b>Hi</b>"))
        )
    except ApiError as err:
        if err.code != 403:
            raise
        log.info("website refused", website="markup", reason=err.message)
    else:
        raise AssertionError("a title with markup was admitted")

    await legacy.create(
        WebsiteV1Alpha1(
            metadata=ObjectMeta(name="legacy"), spec=WebsiteV1Alpha1Spec(title="Legacy", servers=2)
        )
    )
    site = await websites.get("legacy")
    assert (site.spec.body, site.spec.replicas) == ("<h1>Legacy</h1>", 2), site.spec

    async def rendered() -> bool:
        page = await pages.get_opt("legacy-site")
        return page is not None and "<h1>Legacy</h1>" in (page.data or {}).get("index.html", "")

    await wait_for("v1alpha1 website defaulted and rendered", rendered)
    old = await legacy.get("legacy")
    assert (old.spec.html, old.spec.servers) == ("<h1>Legacy</h1>", 2), old.spec
    await websites.raw.delete("legacy")

    async def gone() -> bool:
        return await websites.get_opt("legacy") is None

    await wait_for("v1alpha1 website deleted", gone)


async def run(args: argparse.Namespace) -> int:
    options = ControllerOptions.from_arguments(args)
    async with AsyncExitStack() as stack:
        webhook_server: WebhookServer | None = None
        if args.embedded:
            server = await stack.enter_async_context(ApiServer())
            client: Client = server.client
            certs = stack.enter_context(tempfile.TemporaryDirectory(prefix="typed-operator-webhook-"))
            pair = await anyio.to_thread.run_sync(lambda: SelfSignedCA().issue(certs, hosts=["127.0.0.1"]))
            webhook_server = WebhookServer(
                build_webhooks(), cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0"
            )
            await stack.enter_async_context(webhook_server)
            await install_webhooks(client, webhook_server, pair.ca_pem)
        else:
            client = await stack.enter_async_context(Client.infer())
            if args.webhook_cert_file:
                webhook_server = WebhookOptions.from_arguments(args).server(build_webhooks())
                await stack.enter_async_context(webhook_server)
            if args.install_crd:
                await install_crd(client)
        ctx = Context(client)
        controller = build_controller(client, options.namespace).with_config(concurrency=options.concurrency)
        obs = Observability(ServerOptions.from_arguments(args), client=client)
        obs.add_controller(controller.controller)
        if webhook_server is not None:
            obs.checks.add_readyz("webhooks", webhook_server.started_check())
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
                await webhook_scenario(client)
                log.info("scenario finished")
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
    webhooks = parser.add_argument_group("webhooks (served when --webhook-cert-file is given)")
    WebhookOptions.add_arguments(webhooks)
    parser.set_defaults(webhook_cert_file=None, webhook_key_file=None)
    args = parser.parse_args(argv)
    configure_logging()
    return anyio.run(run, args)
