"""Conversion reviews through the Starlette routes: both directions, pass-through of objects
already in the desired version, failures and timeouts as a Failure result, invalid bodies."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from kube_runtime.observe.logging import configure_logging
from kube_runtime.webhooks import Webhooks
from tests.webhooks.conftest import conversion_body, widget


async def convert_widget(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    """v1 spec.replicas <-> v2 spec.size.count."""
    out = {**obj, "apiVersion": desired, "spec": dict(obj["spec"])}
    if desired.endswith("/v2"):
        out["spec"]["size"] = {"count": out["spec"].pop("replicas")}
    else:
        out["spec"]["replicas"] = out["spec"].pop("size")["count"]
    return out


async def post(client: httpx.AsyncClient, body: bytes, path: str = "/convert") -> httpx.Response:
    return await client.post(path, content=body, headers={"content-type": "application/json"})


async def test_objects_convert_both_ways_and_the_uid_is_echoed(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    hooks.converter("/convert", convert_widget, crd="widgets.example.com")
    v1 = widget("a", replicas=3)
    up = (await post(client, conversion_body([v1], "example.com/v2", uid="c-1"))).json()
    assert up["apiVersion"] == "apiextensions.k8s.io/v1"
    assert up["kind"] == "ConversionReview"
    assert up["response"]["uid"] == "c-1"
    assert up["response"]["result"] == {"status": "Success"}
    (v2,) = up["response"]["convertedObjects"]
    assert v2["apiVersion"] == "example.com/v2"
    assert v2["spec"] == {"size": {"count": 3}}
    assert v2["metadata"] == v1["metadata"]
    down = (await post(client, conversion_body([v2], "example.com/v1"))).json()["response"]
    assert down["convertedObjects"] == [v1]


async def test_objects_already_in_the_desired_version_pass_through_in_order(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    calls: list[str] = []

    async def counting(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        calls.append(obj["metadata"]["name"])
        return await convert_widget(obj, desired)

    hooks.converter("/convert", counting, crd="widgets.example.com")
    mixed = [
        widget("a", replicas=1),
        {**widget("b"), "apiVersion": "example.com/v2", "spec": {"size": {"count": 7}}},
    ]
    response = (await post(client, conversion_body(mixed, "example.com/v2"))).json()["response"]
    assert [o["metadata"]["name"] for o in response["convertedObjects"]] == ["a", "b"]
    assert [o["spec"] for o in response["convertedObjects"]] == [
        {"size": {"count": 1}},
        {"size": {"count": 7}},
    ]
    assert calls == ["a"]


async def test_a_raising_or_wrong_converter_is_a_failure_result_with_its_message(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    async def broken(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        raise KeyError("spec.size")

    async def forgets_version(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        return obj

    hooks.converter("/broken", broken, crd="widgets.example.com")
    hooks.converter("/forgets", forgets_version, crd="gadgets.example.com")
    response = await post(client, conversion_body([widget()], "example.com/v2", uid="c-2"), "/broken")
    assert response.status_code == 200
    assert response.json()["response"] == {
        "uid": "c-2",
        "convertedObjects": [],
        "result": {"status": "Failure", "message": "KeyError: 'spec.size'"},
    }
    forgot = (await post(client, conversion_body([widget()], "example.com/v2"), "/forgets")).json()[
        "response"
    ]
    assert forgot["result"]["status"] == "Failure"
    assert "converter returned apiVersion 'example.com/v1'" in forgot["result"]["message"]
    assert registry.get_sample_value("controller_runtime_conversion_webhook_panics_total") == 2
    assert registry.get_sample_value("controller_runtime_webhook_panics_total") == 0
    labels = {"webhook": "/broken", "result": "error"}
    assert registry.get_sample_value("kube_runtime_webhook_admission_results_total", labels) == 1


async def test_a_slow_converter_gets_a_failure_before_the_timeout(
    hooks: Webhooks, client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    async def stuck(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    hooks.converter("/convert", stuck, crd="widgets.example.com", timeout_seconds=1)
    started = time.monotonic()
    response = (await post(client, conversion_body([widget()], "example.com/v2"))).json()["response"]
    assert time.monotonic() - started < 1.0
    assert response["result"] == {"status": "Failure", "message": "conversion did not finish within 0.75s"}
    labels = {"webhook": "/convert", "result": "timeout"}
    assert registry.get_sample_value("kube_runtime_webhook_admission_results_total", labels) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"nope", "MalformedJSON"),
        (
            b'{"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "ConversionReview", "request": {}}',
            "WrongKind",
        ),
        (
            b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {}}',
            "MissingUID",
        ),
        (
            b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", '
            b'"request": {"uid": "x", "desiredAPIVersion": "v2", "objects": []}}',
            "InvalidField",
        ),
        (
            b'{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", '
            b'"request": {"uid": "x", "desiredAPIVersion": "example.com/v2", "objects": [1]}}',
            "InvalidField",
        ),
    ],
)
async def test_invalid_conversion_reviews_get_a_typed_400(
    hooks: Webhooks, client: httpx.AsyncClient, body: bytes, reason: str
) -> None:
    hooks.converter("/convert", convert_widget, crd="widgets.example.com")
    response = await post(client, body)
    assert response.status_code == 400
    assert response.json()["reason"] == reason
    ok = (await post(client, conversion_body([widget()], "example.com/v2"))).json()["response"]
    assert ok["result"] == {"status": "Success"}


def test_registration_rejects_what_the_api_server_would() -> None:
    hooks = Webhooks(registry=CollectorRegistry())
    hooks.converter("/convert", convert_widget, crd="widgets.example.com")
    with pytest.raises(ValueError, match="already registered"):
        hooks.converter("/convert", convert_widget, crd="gadgets.example.com")
    with pytest.raises(ValueError, match=r"1\.\.30"):
        hooks.converter("/c2", convert_widget, crd="gadgets.example.com", timeout_seconds=31)
    with pytest.raises(ValueError, match=r"<plural>\.<group>"):
        hooks.converter("/c3", convert_widget, crd="gadgets")
    with pytest.raises(ValueError, match="absolute URL path"):
        hooks.converter("convert", convert_widget, crd="gadgets.example.com")


async def test_a_codec_hands_typed_objects_to_the_converter(
    hooks: Webhooks, client: httpx.AsyncClient
) -> None:
    class Spec(dict[str, Any]):
        """A stand-in model type: the converter must receive it, not the wire dict."""

    class SpecCodec:
        def decode(self, obj: dict[str, Any]) -> Spec:
            return Spec(obj)

        def encode(self, value: Spec) -> dict[str, Any]:
            return dict(value)

    async def typed(obj: Spec, desired: str) -> Spec:
        assert isinstance(obj, Spec)
        return Spec(await convert_widget(dict(obj), desired))

    hooks.converter("/convert", typed, crd="widgets.example.com", codec=SpecCodec())
    response = (await post(client, conversion_body([widget(replicas=5)], "example.com/v2"))).json()[
        "response"
    ]
    assert response["result"] == {"status": "Success"}
    assert response["convertedObjects"][0]["spec"] == {"size": {"count": 5}}


async def test_a_conversion_is_one_span_and_logs_carry_the_review_uid_and_each_object(
    hooks: Webhooks, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    import structlog

    async def convert(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        structlog.get_logger("my_converter").info("converting widget")
        if obj["metadata"]["name"] == "bad":
            raise ValueError("cannot convert this one")
        return await convert_widget(obj, desired)

    hooks.converter("/convert", convert, crd="widgets.example.com")
    output = io.StringIO()
    configure_logging("info", stream=output)
    try:
        good = await post(client, conversion_body([widget("a"), widget("b")], "example.com/v2", uid="uid-ok"))
        bad = await post(
            client, conversion_body([widget("c"), widget("bad")], "example.com/v2", uid="uid-bad")
        )
    finally:
        configure_logging("warning", stream=io.StringIO())
    assert good.json()["response"]["result"] == {"status": "Success"}
    assert bad.json()["response"]["result"] == {
        "status": "Failure",
        "message": "ValueError: cannot convert this one",
    }
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    mine = [
        (line["review.uid"], line["object.ref"]) for line in lines if line["event"] == "converting widget"
    ]
    assert mine == [
        ("uid-ok", "Widget.v1.example.com/a.default"),
        ("uid-ok", "Widget.v1.example.com/b.default"),
        ("uid-bad", "Widget.v1.example.com/c.default"),
        ("uid-bad", "Widget.v1.example.com/bad.default"),
    ]
    (raised,) = [line for line in lines if line["event"] == "conversion handler raised"]
    assert (raised["review.uid"], raised["object.ref"]) == ("uid-bad", "Widget.v1.example.com/bad.default")
    assert raised["exception"][0]["exc_value"] == "cannot convert this one"
    reviews = [s for s in spans.get_finished_spans() if s.name == "conversion review"]
    assert [s.attributes["review.uid"] for s in reviews if s.attributes is not None] == ["uid-ok", "uid-bad"]
    assert [s.status.status_code.name for s in reviews] == ["UNSET", "ERROR"]
