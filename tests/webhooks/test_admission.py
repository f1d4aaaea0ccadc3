"""Admission reviews end to end through the Starlette routes: verdicts, patches, request fields,
handler failures, timeouts, invalid bodies, metrics, spans and log context."""

from __future__ import annotations

import base64
import copy
import datetime
import io
import json
import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from kube_runtime.observe.logging import configure_logging
from kube_runtime.resources import CustomResource, KubeModel
from kube_runtime.testing.apiserver.patch import json_patch
from kube_runtime.webhooks import AdmissionRequest, Mutation, Verdict, WebhookRule, Webhooks, allow, deny
from kube_runtime.webhooks.typed import ModelCodec
from tests.webhooks.conftest import admission_body, widget

RULES = [WebhookRule(("example.com",), ("v1",), ("widgets",))]


async def post(client: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    return await client.post(path, content=body, headers={"content-type": "application/json"})


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_validator_denial_carries_reason_code_and_warnings_and_echoes_uid(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    async def validate(request: AdmissionRequest) -> Verdict:
        if request.object["spec"]["replicas"] > 3:
            return deny("replicas must be at most 3", code=422, warnings=["think smaller"])
        return allow("replicas are fine")

    hooks.validating("/validate", validate, name="vwidget.example.com", rules=RULES)
    denied = await post(client, "/validate", admission_body(widget(replicas=5), uid="uid-1"))
    assert denied.status_code == 200
    assert denied.json() == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "uid-1",
            "allowed": False,
            "status": {"code": 422, "message": "replicas must be at most 3"},
            "warnings": ["think smaller"],
        },
    }
    allowed = (await post(client, "/validate", admission_body(widget(replicas=2), uid="uid-2"))).json()
    assert allowed["response"] == {"uid": "uid-2", "allowed": True, "warnings": ["replicas are fine"]}
    assert (
        sample(registry, "kube_runtime_webhook_admission_results_total", webhook="/validate", result="denied")
        == 1
    )
    assert (
        sample(
            registry, "kube_runtime_webhook_admission_results_total", webhook="/validate", result="allowed"
        )
        == 1
    )
    assert sample(registry, "controller_runtime_webhook_requests_total", code="200", webhook="/validate") == 2


async def test_mutator_result_becomes_a_base64_json_patch_that_reproduces_it(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    async def mutate(request: AdmissionRequest) -> Any:
        obj = request.object  # changing it in place is fine: the runtime diffs against its copy
        obj["metadata"].setdefault("labels", {})["app.kubernetes.io/managed-by"] = "kube-runtime"
        obj["spec"]["replicas"] = max(obj["spec"]["replicas"], 2)
        obj["spec"]["paths"] = ["/a~b", "c/d"]
        del obj["metadata"]["namespace"]
        return obj

    hooks.mutating("/mutate", mutate, name="mwidget.example.com", rules=RULES)
    original = widget(replicas=1)
    response = (await post(client, "/mutate", admission_body(copy.deepcopy(original)))).json()["response"]
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patch = orjson.loads(base64.b64decode(response["patch"]))
    assert {"op": "replace", "path": "/spec/replicas", "value": 2} in patch
    assert {"op": "remove", "path": "/metadata/namespace"} in patch
    patched = json_patch(copy.deepcopy(original), patch)
    assert patched["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kube-runtime"}
    assert patched["spec"] == {"replicas": 2, "paths": ["/a~b", "c/d"]}
    assert "namespace" not in patched["metadata"]


async def test_mutator_returning_the_object_unchanged_sends_no_patch_and_can_deny_or_warn(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    async def unchanged(request: AdmissionRequest) -> Any:
        return Mutation(request.object, warnings=("looked at it",))

    async def refuse(request: AdmissionRequest) -> Any:
        return deny("no mutations today")

    hooks.mutating("/same", unchanged, name="same.example.com", rules=RULES)
    hooks.mutating("/refuse", refuse, name="refuse.example.com", rules=RULES)
    same = (await post(client, "/same", admission_body(widget()))).json()["response"]
    assert same["allowed"] is True
    assert same["warnings"] == ["looked at it"]
    assert "patch" not in same
    assert "patchType" not in same
    refused = (await post(client, "/refuse", admission_body(widget()))).json()["response"]
    assert refused["allowed"] is False
    assert refused["status"] == {"code": 403, "message": "no mutations today"}


async def test_handlers_see_dry_run_old_object_subresource_operation_and_user(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    seen: list[AdmissionRequest] = []

    async def record(request: AdmissionRequest) -> Verdict:
        seen.append(request)
        return allow()

    hooks.validating("/record", record, name="record.example.com", rules=RULES)
    old, new = widget(replicas=1), widget(replicas=2)
    await post(
        client,
        "/record",
        admission_body(new, operation="UPDATE", old=old, dry_run=True, sub_resource="scale"),
    )
    await post(client, "/record", admission_body(None, operation="DELETE", old=old))
    await post(client, "/record", admission_body(new))
    update, delete, create = seen
    assert (update.operation, update.dry_run, update.sub_resource, update.request_sub_resource) == (
        "UPDATE", True, "scale", "scale",
    )  # fmt: skip
    assert update.old_object == old
    assert update.object == new
    assert update.user_info["username"] == "alice"
    assert update.options == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    assert (delete.operation, delete.object, delete.old_object) == ("DELETE", None, old)
    assert (create.dry_run, create.old_object, create.sub_resource) == (False, None, "")
    assert (create.name, create.namespace, create.resource["resource"]) == ("w1", "default", "widgets")


async def test_a_raising_handler_is_a_counted_denial_with_its_message_never_a_500(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    async def broken(request: AdmissionRequest) -> Verdict:
        raise RuntimeError("database is on fire")

    async def wrong_type(request: AdmissionRequest) -> Any:
        return {"not": "a verdict"}

    hooks.validating("/broken", broken, name="broken.example.com", rules=RULES)
    hooks.validating("/wrong", wrong_type, name="wrong.example.com", rules=RULES)
    response = await post(client, "/broken", admission_body(widget(), uid="u-broken"))
    assert response.status_code == 200
    assert response.json()["response"] == {
        "uid": "u-broken",
        "allowed": False,
        "status": {"code": 500, "message": "RuntimeError: database is on fire"},
    }
    wrong = (await post(client, "/wrong", admission_body(widget()))).json()["response"]
    assert wrong["allowed"] is False
    assert wrong["status"]["message"].startswith("TypeError: a validator must return a Verdict")
    assert sample(registry, "controller_runtime_webhook_panics_total") == 2
    assert (
        sample(registry, "kube_runtime_webhook_admission_results_total", webhook="/broken", result="error")
        == 1
    )
    assert sample(registry, "controller_runtime_webhook_requests_total", code="200", webhook="/broken") == 1


@pytest.mark.parametrize(("policy", "allowed"), [("Fail", False), ("Ignore", True)])
async def test_a_slow_handler_is_answered_before_the_webhook_timeout_following_the_failure_policy(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry, policy: Any, allowed: bool
) -> None:
    cancelled = anyio.Event()

    async def stuck(request: AdmissionRequest) -> Verdict:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    hooks.validating(
        "/stuck", stuck, name="stuck.example.com", rules=RULES, timeout_seconds=1, failure_policy=policy
    )
    started = time.monotonic()
    response = await post(client, "/stuck", admission_body(widget(), uid="slow"))
    elapsed = time.monotonic() - started
    assert 0.7 <= elapsed < 1.0  # answered at 0.75 s, before the API server's 1 s
    assert cancelled.is_set()  # the handler does not outlive its review
    body = response.json()["response"]
    assert (response.status_code, body["uid"], body["allowed"]) == (200, "slow", allowed)
    if allowed:
        assert body["warnings"] == ["webhook handler did not answer within 0.75s (ignored)"]
    else:
        assert body["status"] == {"code": 504, "message": "webhook handler did not answer within 0.75s"}
    assert (
        sample(registry, "kube_runtime_webhook_admission_results_total", webhook="/stuck", result="timeout")
        == 1
    )
    assert sample(registry, "controller_runtime_webhook_latency_seconds_count", webhook="/stuck") == 1


async def test_a_handler_that_outlives_its_deadline_is_still_a_timeout(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    """A handler shielded from the cancellation (as one blocked in a thread is) returned "allowed"
    after the API server had given up and applied ``Fail``; the answer was "allowed" and the
    metric did not count a timeout."""

    async def shielded(request: AdmissionRequest) -> Verdict:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(1.2)
        return allow()

    hooks.validating("/shielded", shielded, name="shielded.example.com", rules=RULES, timeout_seconds=1)
    response = await post(client, "/shielded", admission_body(widget(), uid="late"))
    body = response.json()["response"]
    assert (body["uid"], body["allowed"]) == ("late", False)
    assert body["status"] == {"code": 504, "message": "webhook handler did not answer within 0.75s"}
    counted = {
        result: sample(
            registry, "kube_runtime_webhook_admission_results_total", webhook="/shielded", result=result
        )
        for result in ("allowed", "timeout")
    }
    assert counted == {"allowed": 0, "timeout": 1}
    assert sample(registry, "controller_runtime_webhook_panics_total") == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "MalformedJSON"),
        (b"[1, 2]", "MalformedJSON"),
        (
            b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}',
            "WrongKind",
        ),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "ConversionReview", "request": {}}', "WrongKind"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "MissingRequest"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}',
            "MissingUID",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x", '
            b'"operation": "EXPLODE", "kind": {}, "resource": {}}}',
            "InvalidField",
        ),
        (admission_body(widget()).replace(b'"dryRun":false', b'"dryRun":"yes"'), "InvalidField"),
    ],
)
async def test_invalid_review_bodies_get_a_typed_400_and_the_server_keeps_serving(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry, body: bytes, reason: str
) -> None:
    calls: list[str] = []

    async def validate(request: AdmissionRequest) -> Verdict:
        calls.append(request.uid)
        return allow()

    hooks.validating("/v", validate, name="v.example.com", rules=RULES)
    bad = await post(client, "/v", body)
    assert bad.status_code == 400
    status = bad.json()
    assert (status["kind"], status["status"], status["reason"], status["code"]) == (
        "Status",
        "Failure",
        reason,
        400,
    )
    assert status["message"]
    assert calls == []
    good = await post(client, "/v", admission_body(widget(), uid="after"))
    assert good.json()["response"] == {"uid": "after", "allowed": True}
    assert sample(registry, "controller_runtime_webhook_requests_total", code="400", webhook="/v") == 1


async def test_wrong_content_type_is_a_400(hooks: Webhooks, client: httpx.AsyncClient) -> None:
    async def validate(request: AdmissionRequest) -> Verdict:
        return allow()

    hooks.validating("/v", validate, name="v.example.com", rules=RULES)
    response = await client.post(
        "/v", content=admission_body(widget()), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "UnsupportedMediaType"


@dataclass
class WidgetModel:
    name: str
    replicas: int
    rest: dict[str, Any]


class WidgetCodec:
    def decode(self, obj: dict[str, Any]) -> WidgetModel:
        return WidgetModel(obj["metadata"]["name"], obj["spec"]["replicas"], obj)

    def encode(self, value: WidgetModel) -> dict[str, Any]:
        return {**value.rest, "spec": {**value.rest["spec"], "replicas": value.replicas}}


async def test_a_codec_hands_typed_objects_to_handlers_and_encodes_their_results(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    async def double(request: AdmissionRequest) -> Any:
        model: WidgetModel = request.object
        assert isinstance(request.old_object, WidgetModel)
        model.replicas *= 2
        return model

    hooks.mutating("/typed", double, name="typed.example.com", rules=RULES, codec=WidgetCodec())
    body = admission_body(widget(replicas=3), operation="UPDATE", old=widget(replicas=1))
    response = (await post(client, "/typed", body)).json()["response"]
    assert orjson.loads(base64.b64decode(response["patch"])) == [
        {"op": "replace", "path": "/spec/replicas", "value": 6}
    ]


async def test_metric_families_have_controller_runtime_names_and_exist_at_zero(
    hooks: Webhooks, registry: CollectorRegistry
) -> None:
    async def validate(request: AdmissionRequest) -> Verdict:
        return allow()

    hooks.validating("/v", validate, name="v.example.com", rules=RULES)
    families = {f.name: f for f in registry.collect()}
    assert {
        "controller_runtime_webhook_requests",
        "controller_runtime_webhook_requests_in_flight",
        "controller_runtime_webhook_latency_seconds",
        "controller_runtime_webhook_panics",
        "controller_runtime_conversion_webhook_panics",
        "kube_runtime_webhook_admission_results",
    } <= set(families)
    assert registry.get_sample_value("controller_runtime_webhook_requests_in_flight", {"webhook": "/v"}) == 0
    assert (
        registry.get_sample_value(
            "controller_runtime_webhook_requests_total", {"code": "200", "webhook": "/v"}
        )
        == 0
    )
    assert registry.get_sample_value("controller_runtime_webhook_panics_total") == 0
    for result in ("allowed", "denied", "error", "timeout"):
        labels = {"webhook": "/v", "result": result}
        assert registry.get_sample_value("kube_runtime_webhook_admission_results_total", labels) == 0


async def test_a_review_is_one_span_and_handler_logs_carry_the_review_uid_and_object(
    hooks: Webhooks, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    import structlog

    async def validate(request: AdmissionRequest) -> Verdict:
        structlog.get_logger("my_webhook").info("checking widget")
        return deny("nope")

    hooks.validating("/v", validate, name="v.example.com", rules=RULES)
    output = io.StringIO()
    configure_logging("info", stream=output)
    try:
        await post(client, "/v", admission_body(widget("w9"), uid="uid-log"))
    finally:
        configure_logging("warning", stream=io.StringIO())
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    mine = next(line for line in lines if line["event"] == "checking widget")
    assert mine["review.uid"] == "uid-log"
    assert mine["object.ref"] == "Widget.v1.example.com/w9.default"
    assert "trace_id" in mine
    denial = next(line for line in lines if line["event"] == "admission denied")
    assert (denial["review.uid"], denial["reason"], denial["webhook"]) == ("uid-log", "nope", "/v")
    (span,) = [s for s in spans.get_finished_spans() if s.name == "admission review"]
    assert span.attributes is not None
    assert span.attributes["review.uid"] == "uid-log"
    assert span.attributes["allowed"] is False
    assert format(span.context.trace_id, "032x") == mine["trace_id"]


class _TaggedPort(KubeModel):
    name: str
    port: int


class _TaggedSpec(KubeModel):
    tags: set[str] = set()
    ratio: float = 0.5
    when: datetime.datetime | None = None
    ports: list[_TaggedPort] = []
    labels: dict[str, str] = {}
    replicas: int = 1


class _Tagged(CustomResource, group="example.com", version="v1", kind="Widget"):
    spec: _TaggedSpec


def _tagged_widget() -> dict[str, Any]:
    obj = widget(replicas=1)
    obj["spec"].update({"tags": ["a", "b", "c", "d"], "ratio": 1, "when": "2024-01-01T00:00:00.000000Z"})
    return obj


async def _typed_patch(hooks: Webhooks, client: httpx.AsyncClient, mutate: Any) -> list[dict[str, Any]]:
    hooks.mutating("/typed-model", mutate, name="tagged.example.com", rules=RULES, codec=ModelCodec(_Tagged))
    response = (await post(client, "/typed-model", admission_body(_tagged_widget()))).json()["response"]
    assert response["allowed"] is True, response
    return orjson.loads(base64.b64decode(response["patch"])) if "patch" in response else []


async def test_a_typed_mutator_that_changes_nothing_sends_no_patch(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    """The model normalises values it was sent (a set's order, a timestamp's precision, an
    integral float): a patch of them would rewrite the object on every admission (and a set's
    order differs between webhook replicas, so updates would flip-flop)."""

    async def untouched(request: AdmissionRequest) -> Any:
        return request.object

    assert await _typed_patch(hooks, client, untouched) == []


async def test_a_typed_mutator_patches_exactly_the_fields_it_changed_in_place_or_assigned(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    async def mutate(request: AdmissionRequest) -> Any:
        model: _Tagged = request.object
        model.spec.ports.append(_TaggedPort(name="http", port=80))  # a defaulted list, in place
        model.spec.labels["added"] = "yes"  # a defaulted dict, in place
        model.spec.replicas = 3
        return model

    patch = await _typed_patch(hooks, client, mutate)
    assert sorted(patch, key=lambda op: op["path"]) == [
        {"op": "add", "path": "/spec/labels", "value": {"added": "yes"}},
        {"op": "add", "path": "/spec/ports", "value": [{"name": "http", "port": 80}]},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
    ]
    patched = json_patch(_tagged_widget(), patch)
    assert patched["spec"]["tags"] == ["a", "b", "c", "d"]  # the wire form of untouched fields
    assert patched["spec"]["when"] == "2024-01-01T00:00:00.000000Z"
