"""Secure metrics: bearer tokens reviewed by the API server (TokenReview, then
SubjectAccessReview for GET /metrics), over real HTTP to a small review-serving API server, and
TLS on the metrics listener."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kube_runtime.client.client import Client
from kube_runtime.client.config import ClientConfig
from kube_runtime.observe.auth import TokenReviewAuthorizer
from kube_runtime.observe.server import ObservabilityServer, ServerOptions
from kube_runtime.testing.apiserver.tls import make_certificates

CONTROLLER_TOKEN = "controller-sa-token"
PROMETHEUS = "system:serviceaccount:monitoring:prometheus"
USERS = {"prom-token": PROMETHEUS, "bob-token": "bob"}


class ReviewApi:
    """The two review endpoints of an API server; allows only Prometheus to GET /metrics."""

    def __init__(self) -> None:
        self.reviews: list[str] = []

    async def token_review(self, request: Request) -> JSONResponse:
        assert request.headers["authorization"] == f"Bearer {CONTROLLER_TOKEN}"
        body = await request.json()
        self.reviews.append("TokenReview")
        user = USERS.get(body["spec"]["token"])
        status: dict[str, Any] = {"authenticated": user is not None}
        if user is not None:
            status["user"] = {"username": user, "uid": "u-1", "groups": ["system:authenticated"]}
        else:
            status["error"] = "invalid bearer token"
        return JSONResponse({**body, "status": status}, status_code=201)

    async def access_review(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.reviews.append("SubjectAccessReview")
        spec = body["spec"]
        allowed = spec["user"] == PROMETHEUS and spec["nonResourceAttributes"] == {
            "path": "/metrics",
            "verb": "get",
        }
        assert spec["groups"] == ["system:authenticated"]
        assert spec["uid"] == "u-1"
        return JSONResponse({**body, "status": {"allowed": allowed}}, status_code=201)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/apis/authentication.k8s.io/v1/tokenreviews", self.token_review, methods=["POST"]),
                Route(
                    "/apis/authorization.k8s.io/v1/subjectaccessreviews", self.access_review, methods=["POST"]
                ),
            ]
        )


@pytest.fixture
async def review_api() -> AsyncIterator[tuple[ReviewApi, str]]:
    api = ReviewApi()
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api.app(), lifespan="off", log_config=None, access_log=False))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes no started event)
            await anyio.sleep(0.01)
        yield api, f"http://127.0.0.1:{sock.getsockname()[1]}"
        server.should_exit = True


async def test_tokens_are_reviewed_and_decisions_cached(review_api: tuple[ReviewApi, str]) -> None:
    api, url = review_api
    registry = CollectorRegistry()
    Counter("secret_things", "x", registry=registry).inc()
    options = ServerOptions(
        metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0", metrics_secure=True,
        enable_task_dump=True,
    )  # fmt: skip
    async with (
        Client(ClientConfig(server=url, token=CONTROLLER_TOKEN)) as client,
        ObservabilityServer(options, registry=registry, authorizer=TokenReviewAuthorizer(client)) as server,
        httpx.AsyncClient(timeout=10) as http,
    ):
        metrics = f"{server.metrics_url}/metrics"

        async def get(token: str | None, path: str = metrics) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await http.get(path, headers=headers)

        assert (await get(None)).status_code == 401
        assert api.reviews == []  # no token, no review
        unknown = await get("stolen-token")
        assert unknown.status_code == 401
        assert "invalid bearer token" in unknown.text
        denied = await get("bob-token")
        assert denied.status_code == 403
        allowed = await get("prom-token")
        assert allowed.status_code == 200
        assert "secret_things_total 1.0" in allowed.text
        reviews = len(api.reviews)
        assert (await get("prom-token")).status_code == 200
        assert len(api.reviews) == reviews  # cached
        assert (await get("prom-token", f"{server.metrics_url}/debug/tasks")).status_code == 403
        assert (await http.get(f"{server.health_url}/readyz")).status_code == 200  # probes stay open
    assert api.reviews.count("TokenReview") == 4
    assert api.reviews.count("SubjectAccessReview") == 3


async def test_unreachable_api_server_denies_without_caching() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    async with Client(ClientConfig(server=url, token=CONTROLLER_TOKEN, connect_timeout=2)) as client:
        authorizer = TokenReviewAuthorizer(client)
        decision = await authorizer.authorize("prom-token", path="/metrics")
    assert (decision.allowed, decision.status) == (False, 401)
    assert "token review failed" in decision.reason


async def test_metrics_over_tls(tmp_path: Path) -> None:
    certs = make_certificates("127.0.0.1")
    cert, key, ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    cert.write_bytes(certs.cert_pem + certs.ca_pem)
    key.write_bytes(certs.key_pem)
    ca.write_bytes(certs.ca_pem)
    options = ServerOptions(
        metrics_bind_address="127.0.0.1:0", health_probe_bind_address="0",
        metrics_cert_file=str(cert), metrics_key_file=str(key),
    )  # fmt: skip
    async with ObservabilityServer(options, registry=CollectorRegistry()) as server:
        assert server.metrics_url is not None
        assert server.metrics_url.startswith("https://")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca))) as http:
            assert (await http.get(f"{server.metrics_url}/metrics")).status_code == 200


async def test_observability_builds_the_authorizer_from_the_client(review_api: tuple[ReviewApi, str]) -> None:
    """``Observability(options, client=client)``: no ``TokenReviewAuthorizer(client) if ... else None``."""
    from kube_runtime.observe import Observability

    api, url = review_api
    options = ServerOptions(
        metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0", metrics_secure=True
    )
    with pytest.raises(ValueError, match="client="):
        Observability(options, registry=CollectorRegistry())
    async with Client(ClientConfig(server=url, token=CONTROLLER_TOKEN)) as client:
        obs = Observability(options, registry=CollectorRegistry(), client=client, lag_interval=0.05)
        assert isinstance(obs.server.authorizer, TokenReviewAuthorizer)
        async with obs, httpx.AsyncClient(timeout=10) as http:
            metrics = f"{obs.server.metrics_url}/metrics"
            assert (await http.get(metrics)).status_code == 401
            allowed = await http.get(metrics, headers={"Authorization": "Bearer prom-token"})
            assert allowed.status_code == 200
    assert api.reviews == ["TokenReview", "SubjectAccessReview"]
    # Without metrics_secure the client is not used for scrapes.
    plain = Observability(ServerOptions("0", "0"), registry=CollectorRegistry(), client=client)
    assert plain.server.authorizer is None
