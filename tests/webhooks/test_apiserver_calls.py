"""An API server calls our webhooks over TLS with the generated configurations: a denied create is
refused with our message, a mutated create is stored with our change, a CRD with two versions
converts through our converter both ways, deletes carry the old object, status writes name the
subresource, a raising handler is a counted refusal, and failure policies apply when the webhook is
unreachable. The same tests run against the real kube-apiserver (envtest) and the embedded server.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.testing import ApiServer
from kube_runtime.testing.envtest import ThreadedEnvtest, locate_or_skip
from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow, deny
from kube_runtime.webhooks.certs import SelfSignedCA
from kube_runtime.webhooks.config import (
    WebhookClientConfig,
    mutating_webhook_configuration,
    validating_webhook_configuration,
    with_conversion,
)
from kube_runtime.webhooks.handlers import MatchPolicy
from kube_runtime.webhooks.server import WebhookServer
from tests.contract.kubeconfig import read_kubeconfig

ADMISSION = "/apis/admissionregistration.k8s.io/v1"
TARGETS = ["embedded", pytest.param("envtest", marks=pytest.mark.envtest)]


@pytest.fixture(scope="module")
def envtest_kubeconfig() -> Iterator[Path]:
    with ThreadedEnvtest(locate_or_skip()) as hosted:
        yield hosted.env.kubeconfig_path


@pytest.fixture(params=TARGETS)
async def http(request: pytest.FixtureRequest, anyio_backend: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API server under test (plain httpx: the server is checked, not our client)."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "embedded":
            server = await stack.enter_async_context(ApiServer(create_client=False))
            target = read_kubeconfig(server.kubeconfig_path, "embedded")
        else:
            target = read_kubeconfig(request.getfixturevalue("envtest_kubeconfig"), "envtest")
        yield await stack.enter_async_context(httpx.AsyncClient(**target.client_kwargs(), timeout=30))


def widget_replicas(obj: dict[str, Any]) -> int:
    spec = obj.get("spec", {})
    return int(spec["size"]["count"] if "size" in spec else spec.get("replicas", 0))


SEEN: dict[str, list[AdmissionRequest]] = {}  # reviews by object name, for tests that look at them


async def validate(request: AdmissionRequest) -> Verdict:
    SEEN.setdefault(request.name, []).append(request)
    if widget_replicas(request.object) > 3:
        return deny("replicas must be at most 3")
    return allow()


async def mutate(request: AdmissionRequest) -> Any:
    obj = request.object
    obj["metadata"].setdefault("labels", {})["mutated-by"] = "kube-runtime"
    return obj


async def convert(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    """v1 ``spec.replicas`` <-> v2 ``spec.size.count``; raises for an object labelled convert=fail."""
    if (obj["metadata"].get("labels") or {}).get("convert") == "fail":
        raise ValueError(f"refusing to convert {obj['metadata']['name']}")
    spec = dict(obj.get("spec", {}))
    if desired.endswith("/v2"):
        spec = {"size": {"count": spec.pop("replicas", 0)}, **spec}
    else:
        spec = {"replicas": spec.pop("size", {}).get("count", 0), **spec}
    return {**obj, "apiVersion": desired, "spec": spec}


async def guard_deletes(request: AdmissionRequest) -> Verdict:
    """Refuse deleting a widget labelled protected: only ``oldObject`` says so on DELETE."""
    SEEN.setdefault(request.name, []).append(request)
    labels = request.old_object["metadata"].get("labels") or {}
    return deny("this widget is protected") if labels.get("protected") == "true" else allow()


async def check_status(request: AdmissionRequest) -> Verdict:
    """Refuse a ``Broken`` phase written through the status subresource."""
    SEEN.setdefault(request.name, []).append(request)
    return (
        deny("phase Broken is not allowed") if request.object["status"].get("phase") == "Broken" else allow()
    )


POLICIES: tuple[MatchPolicy, ...] = ("Equivalent", "Exact")
BY_POLICY: dict[str, list[AdmissionRequest]] = {policy: [] for policy in POLICIES}


def v2_only(policy: str) -> Any:
    async def record(request: AdmissionRequest) -> Verdict:
        BY_POLICY[policy].append(request)
        return allow()

    return record


async def explode(request: AdmissionRequest) -> Verdict:
    raise RuntimeError(f"cannot review {request.name}")


async def stuck(request: AdmissionRequest) -> Verdict:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def crd_manifest(group: str) -> dict[str, Any]:
    def version(name: str, spec: dict[str, Any], storage: bool) -> dict[str, Any]:
        status = {"type": "object", "properties": {"phase": {"type": "string"}}}
        return {
            "name": name,
            "served": True,
            "storage": storage,
            "schema": {
                "openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": spec}, "status": status},
                }
            },
            "subresources": {"status": {}},
        }

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                version("v1", {"replicas": {"type": "integer"}}, True),
                version(
                    "v2", {"size": {"type": "object", "properties": {"count": {"type": "integer"}}}}, False
                ),
            ],
        },
    }


@dataclass
class Setup:
    group: str
    http: httpx.AsyncClient
    registry: CollectorRegistry
    ca: SelfSignedCA  # signed the serving pair in cert_dir; issue() there to rotate it
    cert_dir: Path
    server: WebhookServer

    def path(self, version: str, name: str = "") -> str:
        base = f"/apis/{self.group}/{version}/namespaces/default/widgets"
        return f"{base}/{name}" if name else base

    def widget(self, name: str, version: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": f"{self.group}/{version}",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }


async def eventually(check: Any, *, within: float = 30.0) -> Any:
    """Poll ``check`` until it returns a truthy value: the real API server starts calling a new
    webhook configuration (and serving a new CRD) asynchronously."""
    with anyio.fail_after(within):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(0.1)


async def create(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(path, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@contextlib.asynccontextmanager
async def webhooks_installed(http: httpx.AsyncClient, tmp_path: Path) -> AsyncIterator[Setup]:
    """Our webhook server, a two-version CRD converting through it, and both admission
    configurations pointing at it (loopback URL + caBundle), active when this yields."""
    group = f"w{secrets.token_hex(3)}.example.com"
    registry = CollectorRegistry()
    hooks = Webhooks(registry=registry)
    rules = [WebhookRule((group,), ("*",), ("widgets",))]
    hooks.validating("/validate", validate, name=f"vwidget.{group}", rules=rules)
    hooks.mutating("/mutate", mutate, name=f"mwidget.{group}", rules=rules)
    hooks.converter("/convert", convert, crd=f"widgets.{group}")
    hooks.validating(
        "/slow", stuck, name=f"slow.{group}", rules=rules, timeout_seconds=1,
        object_selector={"matchLabels": {"slow": "true"}},
    )  # fmt: skip
    hooks.validating(
        "/deletes", guard_deletes, name=f"deletes.{group}",
        rules=[WebhookRule((group,), ("*",), ("widgets",), operations=("DELETE",))],
    )  # fmt: skip
    hooks.validating(
        "/status", check_status, name=f"status.{group}",
        rules=[WebhookRule((group,), ("*",), ("widgets/status",), operations=("UPDATE",))],
    )  # fmt: skip
    for policy in POLICIES:
        hooks.validating(
            f"/v2-{policy.lower()}", v2_only(policy), name=f"v2-{policy.lower()}.{group}",
            rules=[WebhookRule((group,), ("v2",), ("widgets",))], match_policy=policy,
            object_selector={"matchLabels": {"versions": "check"}},
        )  # fmt: skip
    hooks.validating(
        "/explode", explode, name=f"explode.{group}", rules=rules,
        object_selector={"matchLabels": {"explode": "true"}},
    )  # fmt: skip
    ca = SelfSignedCA()
    pair = ca.issue(tmp_path, hosts=["127.0.0.1"])
    server = WebhookServer(
        hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0",
        registry=registry, poll_interval=0.05,
    )  # fmt: skip
    async with server:
        client = WebhookClientConfig(url=server.url, ca_bundle=pair.ca_pem)
        await create(http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", with_conversion(
            crd_manifest(group), hooks, client=client
        ))  # fmt: skip
        configs = [
            (
                "validatingwebhookconfigurations",
                validating_webhook_configuration(hooks, name=group, client=client),
            ),
            (
                "mutatingwebhookconfigurations",
                mutating_webhook_configuration(hooks, name=group, client=client),
            ),
        ]
        for resource, config in configs:
            await create(http, f"{ADMISSION}/{resource}", config)
        setup = Setup(group, http, registry, ca, tmp_path, server)
        try:

            async def active() -> bool:  # a dry-run create reaches both webhooks once they are active
                probe = setup.widget("probe", "v1", {"replicas": 1})
                response = await http.post(setup.path("v1"), params={"dryRun": "All"}, json=probe)
                return response.status_code == 201 and "mutated-by" in response.json()["metadata"].get(
                    "labels", {}
                )

            await eventually(active)
            yield setup
        finally:
            for resource, _ in configs:
                await http.delete(f"{ADMISSION}/{resource}/{group}")
            await http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


async def test_a_denied_create_is_refused_with_our_message(http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        response = await http.post(setup.path("v1"), json=setup.widget("big", "v1", {"replicas": 5}))
        assert response.status_code == 403, response.text
        status = response.json()
        assert status["kind"] == "Status"
        assert status["message"] == (
            f'admission webhook "vwidget.{setup.group}" denied the request: replicas must be at most 3'
        )
        assert (await http.get(setup.path("v1", "big"))).status_code == 404
        denied = setup.registry.get_sample_value(
            "kube_runtime_webhook_admission_results_total", {"webhook": "/validate", "result": "denied"}
        )
        assert denied is not None
        assert denied >= 1


async def test_a_mutated_create_is_stored_with_our_change(http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        created = await create(http, setup.path("v1"), setup.widget("small", "v1", {"replicas": 2}))
        assert created["metadata"]["labels"] == {"mutated-by": "kube-runtime"}
        stored = (await http.get(setup.path("v1", "small"))).json()
        assert stored["metadata"]["labels"] == {"mutated-by": "kube-runtime"}
        assert stored["spec"] == {"replicas": 2}


async def test_a_two_version_crd_converts_through_our_converter_both_ways(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        await create(http, setup.path("v1"), setup.widget("one", "v1", {"replicas": 3}))
        as_v2 = (await http.get(setup.path("v2", "one"))).json()
        assert as_v2["apiVersion"] == f"{setup.group}/v2"
        assert as_v2["spec"] == {"size": {"count": 3}}
        created = await create(http, setup.path("v2"), setup.widget("two", "v2", {"size": {"count": 2}}))
        assert created["spec"] == {"size": {"count": 2}}
        assert created["metadata"]["labels"] == {"mutated-by": "kube-runtime"}
        as_v1 = (await http.get(setup.path("v1", "two"))).json()
        assert (as_v1["apiVersion"], as_v1["spec"]) == (f"{setup.group}/v1", {"replicas": 2})
        listed = (await http.get(setup.path("v2"))).json()
        assert sorted((o["metadata"]["name"], o["spec"]["size"]["count"]) for o in listed["items"]) == [
            ("one", 3), ("two", 2),
        ]  # fmt: skip
        # v2 objects are validated too (the validator reads either shape)
        refused = await http.post(setup.path("v2"), json=setup.widget("big", "v2", {"size": {"count": 9}}))
        assert refused.status_code == 403
        converted = setup.registry.get_sample_value(
            "kube_runtime_webhook_admission_results_total", {"webhook": "/convert", "result": "converted"}
        )
        assert converted is not None
        assert converted >= 2


async def test_patches_and_dry_runs_go_through_the_webhooks(http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        SEEN.clear()
        await create(http, setup.path("v1"), setup.widget("p", "v1", {"replicas": 1}))
        merge = {"content-type": "application/merge-patch+json"}
        refused = await http.patch(setup.path("v1", "p"), json={"spec": {"replicas": 7}}, headers=merge)
        assert refused.status_code == 403, refused.text
        assert "replicas must be at most 3" in refused.json()["message"]
        change = {"metadata": {"labels": {"mutated-by": None}}, "spec": {"replicas": 2}}
        patched = await http.patch(setup.path("v1", "p"), json=change, headers=merge)
        assert patched.status_code == 200, patched.text
        assert patched.json()["metadata"]["labels"] == {
            "mutated-by": "kube-runtime"
        }  # put back by the mutator
        assert patched.json()["spec"] == {"replicas": 2}
        updates = [r for r in SEEN["p"] if r.operation == "UPDATE"]
        # (kube-apiserver may review an update again when its storage update retries)
        assert {(r.dry_run, r.old_object["spec"]["replicas"]) for r in updates} == {(False, 1)}
        assert {widget_replicas(r.object) for r in updates} == {7, 2}
        SEEN.clear()
        dry = await http.post(
            setup.path("v1"), params={"dryRun": "All"}, json=setup.widget("dry", "v1", {"replicas": 1})
        )
        assert dry.status_code == 201
        assert [r.dry_run for r in SEEN["dry"]] == [True]  # the validator saw dryRun
        assert dry.json()["metadata"]["labels"] == {"mutated-by": "kube-runtime"}
        assert (await http.get(setup.path("v1", "dry"))).status_code == 404


async def test_an_unreachable_webhook_follows_its_failure_policy(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        closed = WebhookClientConfig(url="https://127.0.0.1:1", ca_bundle=SelfSignedCA().pem)
        hooks = Webhooks(registry=CollectorRegistry())
        rules = [WebhookRule((setup.group,), ("*",), ("widgets",))]
        hooks.validating("/gone", validate, name=f"gone.{setup.group}", rules=rules, failure_policy="Fail")
        config = validating_webhook_configuration(hooks, name=f"gone.{setup.group}", client=closed)
        await create(http, f"{ADMISSION}/validatingwebhookconfigurations", config)
        path = f"{ADMISSION}/validatingwebhookconfigurations/gone.{setup.group}"
        try:

            async def refused() -> httpx.Response | None:
                probe = setup.widget("probe", "v1", {"replicas": 1})
                response = await http.post(setup.path("v1"), params={"dryRun": "All"}, json=probe)
                return response if response.status_code == 500 else None

            response = await eventually(refused)
            expected = f'Internal error occurred: failed calling webhook "gone.{setup.group}": failed to call'
            assert response.json()["message"].startswith(expected)
            current = (await http.get(path)).json()
            current["webhooks"][0]["failurePolicy"] = "Ignore"
            assert (await http.put(path, json=current)).status_code == 200

            async def admitted() -> bool:
                probe = setup.widget("probe", "v1", {"replicas": 1})
                response = await http.post(setup.path("v1"), params={"dryRun": "All"}, json=probe)
                return response.status_code == 201

            await eventually(admitted)
            await create(http, setup.path("v1"), setup.widget("through", "v1", {"replicas": 1}))
        finally:
            await http.delete(path)


async def test_a_handler_slower_than_the_timeout_is_answered_before_the_api_server_gives_up(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        slow = setup.widget("slow", "v1", {"replicas": 1})
        slow["metadata"]["labels"] = {"slow": "true"}
        response = await http.post(setup.path("v1"), json=slow)
        assert response.status_code == 504, response.text
        assert response.json()["message"] == (
            f'admission webhook "slow.{setup.group}" denied the request: '
            "webhook handler did not answer within 0.75s"
        )
        timeouts = setup.registry.get_sample_value(
            "kube_runtime_webhook_admission_results_total", {"webhook": "/slow", "result": "timeout"}
        )
        assert timeouts == 1
        # objects the selector leaves out never reach the slow webhook
        await create(http, setup.path("v1"), setup.widget("fast", "v1", {"replicas": 1}))


async def test_watch_events_arrive_converted_to_the_watched_version(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        await create(http, setup.path("v1"), setup.widget("seen", "v1", {"replicas": 2}))
        params = {"watch": "1", "resourceVersion": "0", "timeoutSeconds": "10"}
        async with http.stream("GET", setup.path("v2"), params=params) as watch:
            lines = watch.aiter_lines()
            first = orjson.loads(await anext(lines))
            assert first["type"] == "ADDED"
            assert (first["object"]["apiVersion"], first["object"]["spec"]) == (
                f"{setup.group}/v2", {"size": {"count": 2}},
            )  # fmt: skip
            await create(http, setup.path("v1"), setup.widget("later", "v1", {"replicas": 3}))
            second = orjson.loads(await anext(lines))
            assert (second["type"], second["object"]["metadata"]["name"]) == ("ADDED", "later")
            assert second["object"]["spec"] == {"size": {"count": 3}}


async def test_deletes_carry_the_old_object_and_status_writes_the_subresource(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        SEEN.clear()
        kept = setup.widget("kept", "v1", {"replicas": 1})
        kept["metadata"]["labels"] = {"protected": "true"}
        await create(http, setup.path("v1"), kept)
        await create(http, setup.path("v1"), setup.widget("gone", "v1", {"replicas": 1}))

        refused = await http.delete(setup.path("v1", "kept"))
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == (
            f'admission webhook "deletes.{setup.group}" denied the request: this widget is protected'
        )
        assert (await http.get(setup.path("v1", "kept"))).status_code == 200
        assert (await http.delete(setup.path("v1", "gone"))).status_code == 200
        (delete,) = [r for r in SEEN["gone"] if r.operation == "DELETE"]
        assert delete.object is None
        assert delete.old_object["metadata"]["name"] == "gone"
        assert delete.old_object["spec"] == {"replicas": 1}

        def spec_reviews() -> float:
            return sum(
                setup.registry.get_sample_value(
                    "kube_runtime_webhook_admission_results_total", {"webhook": "/validate", "result": result}
                )
                or 0.0
                for result in ("allowed", "denied")
            )

        before = spec_reviews()
        status_path = setup.path("v1", "kept") + "/status"
        merge = {"content-type": "application/merge-patch+json"}
        ok = await http.patch(status_path, json={"status": {"phase": "Ready"}}, headers=merge)
        assert ok.status_code == 200, ok.text
        broken = await http.patch(status_path, json={"status": {"phase": "Broken"}}, headers=merge)
        assert broken.status_code == 403, broken.text
        assert "phase Broken is not allowed" in broken.json()["message"]
        assert (await http.get(setup.path("v1", "kept"))).json()["status"] == {"phase": "Ready"}
        status_reviews = [r for r in SEEN["kept"] if r.sub_resource == "status"]
        phases = [r.object["status"]["phase"] for r in status_reviews]
        # in order; kube-apiserver may review a write again when its storage update retries
        assert phases[0] == "Ready"
        assert phases == sorted(phases, key=["Ready", "Broken"].index)
        assert "Broken" in phases
        assert all(r.operation == "UPDATE" and r.request_sub_resource == "status" for r in status_reviews)
        broken_reviews = [r for r in status_reviews if r.object["status"]["phase"] == "Broken"]
        assert all(r.old_object["status"] == {"phase": "Ready"} for r in broken_reviews)
        # the spec-level validator saw none of the status writes (its rules name widgets only)
        assert spec_reviews() == before


async def test_a_raising_handler_is_refused_with_its_error_and_counted(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        bad = setup.widget("bad", "v1", {"replicas": 1})
        bad["metadata"]["labels"] = {"explode": "true"}
        response = await http.post(setup.path("v1"), json=bad)
        assert response.status_code == 500, response.text
        assert response.json()["message"] == (
            f'admission webhook "explode.{setup.group}" denied the request: RuntimeError: cannot review bad'
        )
        assert (await http.get(setup.path("v1", "bad"))).status_code == 404
        assert setup.registry.get_sample_value("controller_runtime_webhook_panics_total") == 1
        errors = setup.registry.get_sample_value(
            "kube_runtime_webhook_admission_results_total", {"webhook": "/explode", "result": "error"}
        )
        assert errors == 1


async def test_match_policy_equivalent_reviews_another_version_converted_and_exact_does_not(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        for seen in BY_POLICY.values():
            seen.clear()
        written = setup.widget("versions", "v1", {"replicas": 2})
        written["metadata"]["labels"] = {"versions": "check"}
        await create(http, setup.path("v1"), written)
        assert BY_POLICY["Exact"] == []  # its rules name v2 only; the write was at v1
        (review,) = BY_POLICY["Equivalent"]
        assert review.kind == {"group": setup.group, "version": "v2", "kind": "Widget"}
        assert review.resource == {"group": setup.group, "version": "v2", "resource": "widgets"}
        assert review.request_kind == {"group": setup.group, "version": "v1", "kind": "Widget"}
        assert review.request_resource == {"group": setup.group, "version": "v1", "resource": "widgets"}
        assert (review.object["apiVersion"], review.object["spec"]) == (
            f"{setup.group}/v2",
            {"size": {"count": 2}},
        )
        # a write at v2 reaches both, unconverted
        at_v2 = setup.widget("versions2", "v2", {"size": {"count": 1}})
        at_v2["metadata"]["labels"] = {"versions": "check"}
        await create(http, setup.path("v2"), at_v2)
        assert [(r.request_kind or {}).get("version") for r in BY_POLICY["Exact"]] == ["v2"]
        assert [(r.request_kind or {}).get("version") for r in BY_POLICY["Equivalent"]] == ["v1", "v2"]


async def test_a_raising_converter_fails_the_read_with_its_error_and_is_counted(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with webhooks_installed(http, tmp_path) as setup:
        doomed = setup.widget("doomed", "v1", {"replicas": 1})
        doomed["metadata"]["labels"] = {"convert": "fail"}
        await create(http, setup.path("v1"), doomed)
        assert (await http.get(setup.path("v1", "doomed"))).status_code == 200  # no conversion needed
        response = await http.get(setup.path("v2", "doomed"))
        assert response.status_code == 500, response.text
        assert response.json()["message"] == (
            f"conversion webhook for {setup.group}/v1, Kind=Widget failed: "
            "ValueError: refusing to convert doomed"
        )
        panics = setup.registry.get_sample_value("controller_runtime_conversion_webhook_panics_total")
        assert panics is not None
        assert panics >= 1
