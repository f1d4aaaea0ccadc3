"""The typed operator example's validator, defaulter and v1alpha1 <-> v1 converter, end to end:
served by our WebhookServer over TLS, installed with the generated CRD (two versions, conversion
through our server) and webhook configurations, called by the API server while the example's
controller runs. The same test runs against the embedded server and the real kube-apiserver
(envtest); the handlers themselves are checked in process too."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from examples.typed_operator.controller import Context, build_controller, reconcile
from examples.typed_operator.main import install_webhooks
from examples.typed_operator.resources import Website, WebsiteSpec, WebsiteV1Alpha1, WebsiteV1Alpha1Spec
from examples.typed_operator.webhooks import (
    CONVERT_PATH,
    CRD_NAME,
    DEFAULT_PATH,
    VALIDATE_PATH,
    build_webhooks,
    website_crd,
)
from kube_runtime.client import ApiError, Client
from kube_runtime.controller import ControllerError, ObjectNotFound
from kube_runtime.resources import ConfigMap, ObjectMeta, TypedApi, crd
from kube_runtime.testing import ApiServer
from kube_runtime.testing.envtest import ThreadedEnvtest, locate_or_skip
from kube_runtime.webhooks import Webhooks
from kube_runtime.webhooks.certs import SelfSignedCA
from kube_runtime.webhooks.config import WebhookClientConfig
from kube_runtime.webhooks.server import WebhookServer

TARGETS = ["embedded", pytest.param("envtest", marks=pytest.mark.envtest)]
DENIED_MARKUP = (
    'admission webhook "vwebsite.demo.kube-runtime.dev" denied the request: '
    "spec.title is plain text: it must not contain < >"
)


@pytest.fixture(scope="module")
def envtest_kubeconfig() -> Iterator[Path]:
    with ThreadedEnvtest(locate_or_skip()) as hosted:
        yield hosted.env.kubeconfig_path


@pytest.fixture(params=TARGETS)
async def client(request: pytest.FixtureRequest, anyio_backend: Any) -> AsyncIterator[Client]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "embedded":
            server = await stack.enter_async_context(ApiServer(create_client=False))
            kubeconfig = server.kubeconfig_path
        else:
            kubeconfig = request.getfixturevalue("envtest_kubeconfig")
        yield await stack.enter_async_context(Client.from_kubeconfig(str(kubeconfig)))


def sample(name: str, title: str, body: str = "", replicas: int = 1) -> Website:
    return Website(
        metadata=ObjectMeta(name=name), spec=WebsiteSpec(title=title, body=body, replicas=replicas)
    )


async def eventually(check: Any, *, within: float = 30.0) -> None:
    with anyio.fail_after(within):
        while not await check():  # noqa: ASYNC110  (polls the API server)
            await anyio.sleep(0.05)


async def test_the_api_server_validates_defaults_and_converts_websites_through_our_webhooks(
    client: Client, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    hooks = build_webhooks(Webhooks(registry=registry))
    pair = await anyio.to_thread.run_sync(lambda: SelfSignedCA().issue(tmp_path, hosts=["127.0.0.1"]))
    server = WebhookServer(
        hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0", registry=registry
    )
    ctx = Context(client)
    controller = build_controller(client, "default")
    websites = TypedApi(client, Website, "default")
    legacy = TypedApi(client, WebsiteV1Alpha1, "default")
    pages = TypedApi(client, ConfigMap, "default")

    def count(webhook: str, result: str) -> float:
        return (
            registry.get_sample_value(
                "kube_runtime_webhook_admission_results_total", {"webhook": webhook, "result": result}
            )
            or 0.0
        )

    async def page(name: str) -> str:
        found = await pages.get_opt(f"{name}-site")
        return (found.data or {}).get("index.html", "") if found is not None else ""

    async def steps() -> None:
        try:
            # the validator refuses, with our message, at either version (v1alpha1 goes through
            # the converter first: the rules name only v1, matchPolicy Equivalent)
            with pytest.raises(ApiError) as refused:
                await websites.create(sample("markup", "<b>Hi</b>"))
            assert (refused.value.code, refused.value.message) == (403, DENIED_MARKUP)
            with pytest.raises(ApiError) as refused_alpha:
                await legacy.create(
                    WebsiteV1Alpha1(metadata=ObjectMeta(name="markup"), spec=WebsiteV1Alpha1Spec(title="a<b"))
                )
            assert refused_alpha.value.code == 403
            assert "must not contain <" in refused_alpha.value.message
            assert await websites.get_opt("markup") is None

            # the defaulter fills the body, stored as changed; the controller renders it
            home = await websites.create(sample("home", "Home"))
            assert home.spec.body == "<h1>Home</h1>"
            assert (await websites.get("home")).spec.body == "<h1>Home</h1>"
            kept = await websites.create(sample("kept", "Kept", body="<p>mine</p>", replicas=5))
            assert kept.spec.body == "<p>mine</p>"

            # v1alpha1 -> v1 and back through our converter, including the controller's writes
            await legacy.create(
                WebsiteV1Alpha1(
                    metadata=ObjectMeta(name="legacy"), spec=WebsiteV1Alpha1Spec(title="Legacy", servers=3)
                )
            )
            as_v1 = await websites.get("legacy")
            assert (as_v1.api_version, as_v1.spec.body, as_v1.spec.replicas) == (
                "demo.kube-runtime.dev/v1",
                "<h1>Legacy</h1>",
                3,
            )

            async def rendered() -> bool:
                published = (await websites.get("legacy")).status is not None
                return (
                    published
                    and "<h1>Legacy</h1>" in await page("legacy")
                    and "<h1>Home</h1>" in await page("home")
                )

            await eventually(rendered)
            as_alpha = await legacy.get("legacy")
            assert (as_alpha.spec.html, as_alpha.spec.servers) == ("<h1>Legacy</h1>", 3)
            assert as_alpha.status is not None  # the controller's status, converted too
            assert as_alpha.metadata.finalizers == ["demo.kube-runtime.dev/cleanup"]
            listed = await legacy.list()
            assert sorted((w.name, w.spec.servers) for w in listed.items) == [
                ("home", 1),
                ("kept", 5),
                ("legacy", 3),
            ]
            # an update at v1alpha1 of an object the controller last wrote at v1
            as_alpha.spec.servers = 4
            await legacy.replace(as_alpha)

            async def replicas_four() -> bool:
                return "<h1>Legacy</h1>" in await page("legacy") and (
                    (await websites.get("legacy")).spec.replicas == 4
                )

            await eventually(replicas_four)
        finally:
            for name in ("home", "kept", "legacy"):
                with contextlib.suppress(ApiError):
                    await websites.raw.delete(name)

            async def all_gone() -> bool:
                return not (await websites.list()).items

            await eventually(all_gone)

    run = controller.run(reconcile, None, ctx)
    failures: list[ControllerError] = []
    async with server:
        await install_webhooks(client, server, pair.ca_pem)
        await install_webhooks(client, server, pair.ca_pem)  # installing again replaces, no error
        async with run as results, anyio.create_task_group() as tg:

            async def drive() -> None:
                try:
                    await steps()
                finally:
                    run.shutdown()

            tg.start_soon(drive)
            async for item in results:
                if isinstance(item, ControllerError) and not isinstance(item, ObjectNotFound):
                    failures.append(item)
    assert failures == []
    assert count(VALIDATE_PATH, "denied") >= 2
    assert count(VALIDATE_PATH, "allowed") >= 3
    assert count(DEFAULT_PATH, "allowed") >= 3
    assert count(CONVERT_PATH, "converted") >= 2
    assert count(CONVERT_PATH, "error") == 0
    assert registry.get_sample_value("controller_runtime_webhook_panics_total") == 0
    assert registry.get_sample_value("controller_runtime_conversion_webhook_panics_total") == 0


def test_the_generated_crd_has_both_versions_and_converts_through_the_converter() -> None:
    hooks = build_webhooks(Webhooks(registry=CollectorRegistry()))
    client = WebhookClientConfig(url="https://127.0.0.1:9443", ca_bundle=b"pem")
    manifest = website_crd(hooks, client)
    assert manifest["metadata"]["name"] == CRD_NAME
    assert [(v["name"], v["storage"], v.get("deprecated", False)) for v in manifest["spec"]["versions"]] == [
        ("v1alpha1", False, True),
        ("v1", True, False),
    ]
    assert manifest["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {
                "url": f"https://127.0.0.1:9443{CONVERT_PATH}",
                "caBundle": base64.b64encode(b"pem").decode(),
            },
            "conversionReviewVersions": ["v1"],
        },
    }
    assert {**manifest, "spec": {k: v for k, v in manifest["spec"].items() if k != "conversion"}} == crd(
        WebsiteV1Alpha1, Website
    )


# -- the handlers in process -------------------------------------------------------------------------


def _review(obj: dict[str, Any], operation: str = "CREATE") -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": "demo.kube-runtime.dev", "version": "v1", "kind": "Website"},
                "resource": {"group": "demo.kube-runtime.dev", "version": "v1", "resource": "websites"},
                "operation": operation,
                "namespace": "default",
                "name": obj["metadata"]["name"],
                "object": obj,
                "oldObject": obj if operation == "UPDATE" else None,
            },
        }
    )


@pytest.fixture
async def in_process() -> AsyncIterator[httpx.AsyncClient]:
    hooks = build_webhooks(Webhooks(registry=CollectorRegistry()))
    from starlette.applications import Starlette

    transport = httpx.ASGITransport(app=Starlette(routes=hooks.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://webhooks") as http:
        yield http


def wire(name: str, spec: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"demo.kube-runtime.dev/{version}",
        "kind": "Website",
        "metadata": {"name": name, "namespace": "default", "uid": "u-1", "resourceVersion": "7"},
        "spec": spec,
    }


async def test_the_validator_warns_at_the_replica_maximum_and_refuses_markup(
    in_process: httpx.AsyncClient,
) -> None:
    at_max = await in_process.post(VALIDATE_PATH, content=_review(wire("m", {"title": "T", "replicas": 5})))
    assert at_max.json()["response"]["warnings"] == ["spec.replicas is at its maximum (5)"]
    refused = await in_process.post(VALIDATE_PATH, content=_review(wire("m", {"title": "a & b"}), "UPDATE"))
    assert refused.json()["response"]["allowed"] is False
    assert (
        refused.json()["response"]["status"]["message"] == "spec.title is plain text: it must not contain &"
    )


async def test_the_defaulter_patches_only_the_body_and_a_misfit_object_is_refused_with_422(
    in_process: httpx.AsyncClient,
) -> None:
    obj = wire("d", {"title": "Hello", "extra": {"kept": True}})
    obj["metadata"]["labels"] = {"a": "b"}
    answer = (await in_process.post(DEFAULT_PATH, content=_review(obj))).json()["response"]
    assert orjson.loads(base64.b64decode(answer["patch"])) == [
        {"op": "add", "path": "/spec/body", "value": "<h1>Hello</h1>"}
    ]
    misfit = await in_process.post(DEFAULT_PATH, content=_review(wire("d", {"title": "x", "replicas": 9})))
    response = misfit.json()["response"]
    assert (response["allowed"], response["status"]["code"]) == (False, 422)
    assert "spec.replicas" in response["status"]["message"]


async def test_the_converter_maps_fields_and_keeps_metadata_and_status(in_process: httpx.AsyncClient) -> None:
    alpha = wire("c", {"title": "T", "html": "<p>x</p>", "servers": 2}, "v1alpha1")
    alpha["status"] = {"pages": 10}
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "conv-1", "desiredAPIVersion": "demo.kube-runtime.dev/v1", "objects": [alpha]},
    }
    response = (await in_process.post(CONVERT_PATH, content=orjson.dumps(review))).json()["response"]
    assert response["uid"] == "conv-1"
    assert response["result"] == {"status": "Success"}
    (v1,) = response["convertedObjects"]
    assert v1 == {
        **alpha,
        "apiVersion": "demo.kube-runtime.dev/v1",
        "spec": {"title": "T", "body": "<p>x</p>", "replicas": 2},
    }
    back = {**review, "request": {**review["request"], "desiredAPIVersion": "demo.kube-runtime.dev/v1alpha1"}}
    back["request"]["objects"] = [v1]
    response = (await in_process.post(CONVERT_PATH, content=orjson.dumps(back))).json()["response"]
    assert response["convertedObjects"] == [alpha]
    unknown = {**review, "request": {**review["request"], "desiredAPIVersion": "demo.kube-runtime.dev/v2"}}
    failed = (await in_process.post(CONVERT_PATH, content=orjson.dumps(unknown))).json()["response"]
    assert failed["result"]["status"] == "Failure"
    assert (
        "cannot convert demo.kube-runtime.dev/v1alpha1 Website to demo.kube-runtime.dev/v2"
        in (failed["result"]["message"])
    )
