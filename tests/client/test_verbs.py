"""Every Api verb over loopback HTTPS against the embedded API server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from kube_runtime.client import (
    Api,
    ApiError,
    ApiResource,
    Client,
    KindNotFound,
    TransportError,
    WatchEvent,
    discover,
)
from kube_runtime.testing import ApiServer
from tests.client.conftest import Traces

pytestmark = pytest.mark.usefixtures("anyio_backend")

CONFIGMAPS = ApiResource.builtin("ConfigMap")
NAMESPACES = ApiResource.builtin("Namespace")
DEPLOYMENTS = ApiResource.builtin("Deployment")
PODS = ApiResource.builtin("Pod")


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    async with ApiServer() as server:
        yield server


@pytest.fixture
async def client(server: ApiServer, registry: CollectorRegistry, traces: Traces) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(
        str(server.kubeconfig_path), metrics_registry=registry, tracer_provider=traces.provider
    ) as client:
        yield client


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_create_get_get_opt(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    created = await api.create(_cm("a", x="1"), field_manager="tests")
    assert created["metadata"]["resourceVersion"]
    assert any(f["manager"] == "tests" for f in created["metadata"]["managedFields"])
    got = await api.get("a")
    assert got["data"] == {"x": "1"}
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert await api.get_opt("absent") is None
    with pytest.raises(ApiError) as caught:
        await api.get("absent")
    assert caught.value.is_not_found
    with pytest.raises(ApiError) as caught:
        await api.create(_cm("a"))
    assert caught.value.code == 409
    assert caught.value.reason == "AlreadyExists"


async def test_create_takes_the_namespace_from_the_object(client: Client) -> None:
    obj = _cm("in-kube-system")
    obj["metadata"]["namespace"] = "kube-system"
    await Api.all(client, CONFIGMAPS).create(obj)
    assert await Api(client, CONFIGMAPS, "kube-system").get("in-kube-system")


async def test_an_empty_name_is_refused_before_any_request(client: Client) -> None:
    """An empty name makes the collection's URL: a get listed and a delete deleted every object."""
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("keep"))
    for call in (api.get(""), api.get_opt(""), api.delete(""), api.replace("", _cm("")), api.get_status("")):
        with pytest.raises(ValueError, match="needs a name"):
            await call
    assert await api.get("keep")


async def test_a_namespaced_api_writes_only_into_its_namespace(client: Client) -> None:
    """A body naming another namespace went there (create and replace); as in kube-rs and
    client-go the Api's namespace wins and the server refuses the mismatch."""
    other = Api(client, CONFIGMAPS, "kube-system")
    await other.create(_cm("victim", v="1"))
    obj = _cm("victim", v="overwritten")
    obj["metadata"]["namespace"] = "kube-system"
    api = Api(client, CONFIGMAPS, "default")
    for call in (api.create(obj), api.replace("victim", obj)):
        with pytest.raises(ApiError) as caught:
            await call
        assert caught.value.code == 400
    assert (await other.get("victim"))["data"] == {"v": "1"}
    assert await api.get_opt("victim") is None


async def test_list_pages_with_limit_and_continue(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    for i in range(7):
        await api.create(_cm(f"cm-{i}", i=str(i)), field_manager="tests")
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = await api.list(limit=3, continue_token=token)
        pages += 1
        names += [item["metadata"]["name"] for item in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 3
    assert sorted(names) == [f"cm-{i}" for i in range(7)]
    selected = await api.list(field_selector="metadata.name=cm-3")
    assert [i["metadata"]["name"] for i in selected["items"]] == ["cm-3"]


async def test_label_selector(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    for name, tier in (("a", "web"), ("b", "db")):
        obj = _cm(name)
        obj["metadata"]["labels"] = {"tier": tier}
        await api.create(obj)
    listed = await api.list(label_selector="tier=db")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]


async def test_list_metadata(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a", secret="value"))
    listing = await api.list_metadata()
    assert listing["kind"] == "PartialObjectMetadataList"
    (item,) = listing["items"]
    assert item["kind"] == "PartialObjectMetadata"
    assert item["metadata"]["name"] == "a"
    assert "data" not in item


async def test_replace_and_conflict(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    current = await api.create(_cm("a", x="1"))
    current["data"] = {"x": "2"}
    replaced = await api.replace("a", current)
    assert replaced["data"] == {"x": "2"}
    with pytest.raises(ApiError) as caught:
        await api.replace("a", current)  # stale resourceVersion
    assert caught.value.is_conflict


async def test_replace_status_and_patch_status(client: Client) -> None:
    api = Api(client, DEPLOYMENTS, "default")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    created = await api.create(deployment)
    created["status"] = {"replicas": 1, "observedGeneration": 1}
    created["spec"]["replicas"] = 5  # ignored through the status subresource
    replaced = await api.replace_status("web", created)
    assert replaced["status"]["replicas"] == 1
    assert replaced["spec"]["replicas"] == 1
    patched = await api.patch_status("web", {"status": {"readyReplicas": 1}})
    assert patched["status"]["readyReplicas"] == 1
    applied = await api.patch_status(
        "web",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "status": {"availableReplicas": 1},
        },
        patch_type="apply",
        field_manager="status-writer",
        force=True,
    )
    assert applied["status"]["availableReplicas"] == 1
    assert (await api.get_status("web"))["status"]["availableReplicas"] == 1


async def test_patch_types(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a", x="1"))
    merged = await api.patch("a", {"data": {"y": "2"}})
    assert merged["data"] == {"x": "1", "y": "2"}
    jsoned = await api.patch("a", [{"op": "remove", "path": "/data/x"}], patch_type="json")
    assert jsoned["data"] == {"y": "2"}
    strategic = await api.patch("a", {"metadata": {"labels": {"l": "v"}}}, patch_type="strategic")
    assert strategic["metadata"]["labels"] == {"l": "v"}
    applied = await api.patch("a", _cm("a", z="3"), patch_type="apply", field_manager="applier")
    assert applied["data"]["z"] == "3"
    assert any(
        f["manager"] == "applier" and f["operation"] == "Apply" for f in applied["metadata"]["managedFields"]
    )


async def test_server_side_apply_stores_every_string_as_sent(client: Client) -> None:
    """The server reads an apply body as YAML, to which NEL, LINE and PARAGRAPH SEPARATOR are line
    breaks (folded with the spaces around them) and DEL and the C1 controls are not printable: the
    client escapes them, so the stored strings are the ones sent (as create and merge patch store
    them)."""
    api = Api(client, CONFIGMAPS, "default")
    data = {
        "ls": "a \u2028 b",
        "ps": "a \u2029 b",
        "nel": "a \x85 b",
        "controls": "\x7f\x80\x9f",
        "kept": "é € 😀 \xa0 \ufeff",
    }
    applied = await api.patch("odd", _cm("odd", **data), patch_type="apply", field_manager="applier")
    assert applied["data"] == data
    assert (await api.get("odd"))["data"] == data


async def test_server_side_apply_conflict_and_force(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.patch("a", _cm("a", owned="one"), patch_type="apply", field_manager="first")
    with pytest.raises(ApiError) as caught:
        await api.patch("a", _cm("a", owned="two"), patch_type="apply", field_manager="second")
    assert caught.value.is_conflict
    forced = await api.patch(
        "a", _cm("a", owned="two"), patch_type="apply", field_manager="second", force=True
    )
    assert forced["data"]["owned"] == "two"


async def test_patch_argument_checks(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    with pytest.raises(ValueError, match="field_manager"):
        await api.patch("a", {}, patch_type="apply")
    with pytest.raises(ValueError, match="force"):
        await api.patch("a", {}, force=True)
    with pytest.raises(ValueError, match="patch_type"):
        await api.patch("a", {}, patch_type="yaml")  # type: ignore[arg-type]


async def test_delete_returns_status_or_the_finalized_object(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("plain"))
    status = await api.delete("plain", propagation_policy="Background")
    assert status["kind"] == "Status"
    assert status["status"] == "Success"
    assert await api.get_opt("plain") is None

    held = _cm("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await api.create(held)
    terminating = await api.delete("held", propagation_policy="Foreground")
    assert terminating["kind"] == "ConfigMap"
    assert terminating["metadata"]["deletionTimestamp"]
    await api.patch("held", {"metadata": {"finalizers": None}})
    assert await api.get_opt("held") is None


async def test_delete_preconditions(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    created = await api.create(_cm("a"))
    with pytest.raises(ApiError) as caught:
        await api.delete("a", preconditions={"uid": "not-the-uid"})
    assert caught.value.is_conflict
    await api.delete("a", preconditions={"uid": created["metadata"]["uid"]}, grace_period_seconds=0)
    assert await api.get_opt("a") is None


async def test_cluster_scoped_kind(client: Client) -> None:
    api = Api.all(client, NAMESPACES)
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}})
    names = [n["metadata"]["name"] for n in (await api.list())["items"]]
    assert "team-x" in names
    assert Api(client, NAMESPACES, "ignored").namespace is None


async def test_watch_and_watch_metadata(server: ApiServer, client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    start_rv = (await api.list())["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    metadata_seen: list[dict[str, Any]] = []

    async with (
        api.watch(resource_version=start_rv) as events,
        api.watch_metadata(resource_version=start_rv) as metas,
    ):
        await api.create(_cm("a", x="1"))
        await api.patch("a", {"data": {"x": "2"}})
        await api.delete("a")
        with anyio.fail_after(10):
            async for item in events:
                assert isinstance(item, WatchEvent)
                seen.append((item.type, item.object["metadata"]["name"]))
                if item.type == "DELETED":
                    break
            async for item in metas:
                assert isinstance(item, WatchEvent)
                metadata_seen.append(item.object)
                if item.type == "DELETED":
                    break
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert [m["kind"] for m in metadata_seen] == ["PartialObjectMetadata"] * 3
    assert all("data" not in m for m in metadata_seen)


async def test_watch_send_initial_events_ends_with_a_bookmark(client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a"))
    async with api.watch(
        send_initial_events=True, resource_version_match="NotOlderThan", resource_version=""
    ) as w:
        with anyio.fail_after(10):
            first = await w.__anext__()
            second = await w.__anext__()
    assert isinstance(first, WatchEvent)
    assert first.type == "ADDED"
    assert isinstance(second, WatchEvent)
    assert second.type == "BOOKMARK"
    assert second.object["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true"


async def test_watch_from_a_compacted_version_gets_410(server: ApiServer, client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a"))
    old_rv = (await api.get("a"))["metadata"]["resourceVersion"]
    await api.patch("a", {"data": {"x": "1"}})
    server.faults.compact()
    # as kube-apiserver does: the watch starts (200) and its first event is an ERROR with a 410 Status
    async with api.watch(resource_version=old_rv) as events:
        with anyio.fail_after(10):
            item = await events.__anext__()
    assert isinstance(item, ApiError)
    assert item.is_gone


async def test_server_closing_watches_ends_iteration(server: ApiServer, client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    async with api.watch(resource_version="0") as events:
        await api.create(_cm("a"))
        with anyio.fail_after(10):
            assert isinstance(await events.__anext__(), WatchEvent)
            server.faults.close_watches()
            rest = [item async for item in events]
    assert rest == []


async def test_server_going_away_breaks_the_watch(server: ApiServer, client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    await api.create(_cm("a"))
    async with api.watch(resource_version="0") as events:
        with anyio.fail_after(10):
            assert isinstance(await events.__anext__(), WatchEvent)
            await server.faults.stop_serving()
            try:
                async for _ in events:
                    pass
            except TransportError:
                pass  # connection cut mid-stream
    with pytest.raises(TransportError):
        await api.get("a")
    await server.faults.start_serving()
    assert (await api.get("a"))["metadata"]["name"] == "a"


async def test_ten_megabyte_object_round_trip(server: ApiServer, client: Client) -> None:
    api = Api(client, CONFIGMAPS, "default")
    big = "x" * (10 * 1024 * 1024)
    with pytest.raises(ApiError) as caught:  # the API server's request limit is 3 MiB, as in Kubernetes
        await api.create(_cm("huge", blob=big))
    assert caught.value.code == 413
    # Stored behind the HTTP limit (the embedded server checks no Pod's size; a ConfigMap's data
    # is at most 1 MiB), then read back: the client's reads must cope with any size.
    pods = Api(client, PODS, "default")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "huge"},
        "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "BLOB", "value": big}]}]},
    }
    server.ops.create(server.resource_type("pods"), "default", pod)

    def blob(obj: dict[str, Any]) -> str:
        return str(obj["spec"]["containers"][0]["env"][0]["value"])

    assert blob(await pods.get("huge")) == big
    listing = await pods.list()
    assert blob(listing["items"][0]) == big
    async with pods.watch(resource_version="0") as events:
        with anyio.fail_after(30):
            event = await events.__anext__()
    assert isinstance(event, WatchEvent)
    assert len(blob(event.object)) == len(big)
    patched = await pods.patch("huge", {"metadata": {"labels": {"small": "1"}}})
    assert blob(patched) == big


async def test_discover(client: Client) -> None:
    assert await discover(client, "apps", "v1", "Deployment") == DEPLOYMENTS
    assert await discover(client, "", "v1", "ConfigMap") == CONFIGMAPS
    assert (await discover(client, "", "", "Namespace")).namespaced is False
    assert (await discover(client, "apps", "", "Deployment")).version == "v1"
    with pytest.raises(KindNotFound):
        await discover(client, "apps", "v1", "Nothing")
    with pytest.raises(ApiError) as caught:
        await discover(client, "nope.example.com", "v1", "Thing")
    assert caught.value.code == 404


async def test_discover_caches_per_client(server: ApiServer, client: Client) -> None:
    await discover(client, "apps", "v1", "Deployment")
    before = server.app.requests
    await discover(client, "apps", "v1", "Deployment")
    with pytest.raises(KindNotFound):
        await discover(client, "apps", "v1", "NotAKind")  # answered from the cached list
    assert server.app.requests == before
    await discover(client, "apps", "v1", "Deployment", refresh=True)
    assert server.app.requests == before + 1


async def test_http_span_is_a_child_with_verb_and_status(
    server: ApiServer, client: Client, traces: Traces, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api = Api(client, CONFIGMAPS, "default")
    tracer = traces.provider.get_tracer("test")
    with tracer.start_as_current_span("reconcile") as parent:
        await api.create(_cm("a"))
        await api.get_opt("absent")
        async with api.watch(resource_version="0") as events:
            await events.__anext__()
        assert trace.get_current_span() is parent  # HTTP spans never become current
    spans = {s.name: s for s in traces.spans()}
    parent_context = spans["reconcile"].context
    for name in ("create", "get", "watch"):
        span = spans[name]
        assert span.parent is not None
        assert span.parent.span_id == parent_context.span_id
        assert span.context.trace_id == parent_context.trace_id
        assert span.kind == trace.SpanKind.CLIENT
    create = spans["create"]
    assert create.attributes is not None
    assert create.attributes["http.request.method"] == "POST"
    assert create.attributes["url.path"] == "/api/v1/namespaces/default/configmaps"
    assert create.attributes["http.response.status_code"] == 201
    assert float(create.attributes["http.client.request.duration"]) >= 0
    get = spans["get"]
    assert get.attributes is not None
    assert get.attributes["http.response.status_code"] == 404
    assert get.status.status_code == trace.StatusCode.ERROR
    watch_attributes = spans["watch"].attributes
    assert watch_attributes is not None
    assert watch_attributes["http.response.status_code"] == 200
    # the bearer token reaches neither spans nor logs
    exported = "".join(s.to_json() for s in traces.spans())
    assert server.token not in exported
    logged = "".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "get GET /api/v1/namespaces/default/configmaps/absent requesting" in logged
    assert server.token not in logged


async def test_requests_are_counted(server: ApiServer, client: Client, registry: CollectorRegistry) -> None:
    await Api(client, CONFIGMAPS, "default").get_opt("absent")
    host = f"127.0.0.1:{server.port}"
    assert (
        registry.get_sample_value(
            "rest_client_requests_total", {"code": "404", "method": "GET", "host": host}
        )
        == 1
    )
