"""The metrics and health server: Starlette apps on uvicorn, run as a task beside the controller.

Two listeners like controller-runtime's manager: ``--metrics-bind-address`` (default ``:8080``,
``0`` disables) serves ``/metrics``; ``--health-probe-bind-address`` (default ``:8081``, empty or
``0`` disables) serves ``/readyz``, ``/livez`` and ``/healthz``. The same address for both gives
one listener serving everything. ``/metrics`` can require a bearer token reviewed by the API
server (``--metrics-secure`` with a :class:`TokenReviewAuthorizer`) and serve TLS
(``--metrics-cert-file``/``--metrics-key-file``). ``/debug/tasks`` (an asyncio task dump) is
added to the metrics listener with ``--enable-task-dump``.

Run it inside your own task group (``await tg.start(server.run)``) or as ``async with server:``.
uvicorn is embedded without its signal handling (the application owns SIGTERM) and without its
logging setup (records go to the root logger, i.e. :func:`configure_logging`'s output). On
cancellation the listeners close and in-flight requests get ``shutdown_timeout`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kube_runtime._offload import in_thread
from kube_runtime._tasks import BackgroundTasks
from kube_runtime.observe.auth import ReviewClient, TokenReviewAuthorizer, bearer_token
from kube_runtime.observe.health import HealthChecks
from kube_runtime.observe.taskdump import format_task_dump

__all__ = ["ObservabilityServer", "ServerOptions", "parse_bind_address", "tcp_listener"]


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """``":8080"`` -> ``("0.0.0.0", 8080)``, ``"127.0.0.1:0"`` (any free port), ``"[::1]:80"``;
    ``""`` and ``"0"`` -> ``None`` (disabled). Raises ``ValueError`` for anything else."""
    address = address.strip()
    if address in ("", "0"):
        return None
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"bind address must be host:port or :port, got {address!r}")
    host = host.strip("[]") or "0.0.0.0"
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port out of range in {address!r}")
    return host, port


def tcp_listener(host: str, port: int, *, backlog: int) -> socket.socket:
    """A listening TCP socket whose accepted connections get ``TCP_NODELAY``.

    asyncio turns Nagle's algorithm off only on sockets whose ``proto`` is ``IPPROTO_TCP``, and
    accepted sockets inherit the listener's (``socket.create_server`` leaves it 0). With Nagle
    on, a response written in two pieces (headers, then body; two TLS records) waits for the client's
    delayed ACK: about 40 ms added to every response."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as socket.create_server
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class ServerOptions:
    """Listener options, named after controller-runtime's manager flags."""

    metrics_bind_address: str = ":8080"
    health_probe_bind_address: str = ":8081"
    metrics_secure: bool = False
    metrics_cert_file: str | None = None
    metrics_key_file: str | None = None
    enable_task_dump: bool = False
    shutdown_timeout: float = 5.0

    @staticmethod
    def add_arguments(parser: argparse._ActionsContainer) -> None:
        """Add ``--metrics-bind-address``, ``--health-probe-bind-address``, ``--metrics-secure``,
        ``--metrics-cert-file``, ``--metrics-key-file`` and ``--enable-task-dump`` to a parser
        or an argument group."""
        parser.add_argument("--metrics-bind-address", default=":8080", help="'0' disables metrics")
        parser.add_argument("--health-probe-bind-address", default=":8081", help="'0' disables probes")
        parser.add_argument(
            "--metrics-secure",
            action=argparse.BooleanOptionalAction,
            default=False,
            help="require a bearer token allowed to get /metrics (TokenReview + SubjectAccessReview)",
        )
        parser.add_argument(
            "--metrics-cert-file", default=None, help="TLS certificate for the metrics listener"
        )
        parser.add_argument("--metrics-key-file", default=None, help="TLS key for the metrics listener")
        parser.add_argument(
            "--enable-task-dump",
            action="store_true",
            default=False,
            help="serve /debug/tasks (asyncio task dump)",
        )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ServerOptions:
        return cls(
            metrics_bind_address=args.metrics_bind_address,
            health_probe_bind_address=args.health_probe_bind_address,
            metrics_secure=args.metrics_secure,
            metrics_cert_file=args.metrics_cert_file,
            metrics_key_file=args.metrics_key_file,
            enable_task_dump=args.enable_task_dump,
        )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without process-level signal capture, reporting when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.listening.set()


@dataclass
class _Listener:
    name: str
    sock: socket.socket
    server: _EmbeddedServer
    tls: bool

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


class ObservabilityServer:
    """Serves ``/metrics`` from ``registry`` (default ``REGISTRY``) and the probes of ``checks``.

    ``metrics_url``/``health_url`` give the bound base URLs once running (useful with port 0).
    With ``metrics_secure``, scrapes are reviewed by ``authorizer``, or by a
    :class:`TokenReviewAuthorizer` built on ``client`` when no authorizer is given; without
    ``metrics_secure`` both are ignored. Raises ``ValueError`` for ``metrics_secure`` with neither,
    and ``OSError`` from ``run`` when an address cannot be bound.
    """

    def __init__(
        self,
        options: ServerOptions | None = None,
        *,
        checks: HealthChecks | None = None,
        registry: CollectorRegistry | None = None,
        authorizer: TokenReviewAuthorizer | None = None,
        client: ReviewClient | None = None,
    ) -> None:
        self.options = options or ServerOptions()
        self.checks = checks or HealthChecks()
        self.registry = REGISTRY if registry is None else registry
        self.authorizer: TokenReviewAuthorizer | None = None
        if self.options.metrics_secure:
            if authorizer is None:
                if client is None:
                    raise ValueError(
                        "metrics_secure needs client= (the API client that reviews tokens) or an authorizer"
                    )
                authorizer = TokenReviewAuthorizer(client)
            self.authorizer = authorizer
        self._listeners: dict[str, _Listener] = {}
        self._shared = False
        self._tasks: BackgroundTasks | None = None

    # -- endpoints ---------------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response | None:
        if self.authorizer is None:
            return None
        token = bearer_token(request.headers.get("authorization"))
        decision = await self.authorizer.authorize(token, path=request.url.path)
        if decision.allowed:
            return None
        text = "Unauthorized" if decision.status == 401 else "Forbidden"
        return PlainTextResponse(f"{text}: {decision.reason}\n", status_code=decision.status)

    async def _metrics(self, request: Request) -> Response:
        denied = await self._authorize(request)
        if denied is not None:
            return denied
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        # Collection reads /proc and walks every collector: keep it off the event loop.
        body = await in_thread(encoder, self.registry)
        return Response(body, media_type=content_type)

    async def _task_dump(self, request: Request) -> Response:
        denied = await self._authorize(request)
        if denied is not None:
            return denied
        return PlainTextResponse(format_task_dump())

    def metrics_routes(self) -> list[Route]:
        routes = [Route("/metrics", self._metrics, methods=["GET"])]
        if self.options.enable_task_dump:
            routes.append(Route("/debug/tasks", self._task_dump, methods=["GET"]))
        return routes

    # -- lifetime ----------------------------------------------------------------------------------

    def _plan(self) -> list[tuple[str, tuple[str, int], list[Route], bool]]:
        opts = self.options
        metrics_at = parse_bind_address(opts.metrics_bind_address)
        health_at = parse_bind_address(opts.health_probe_bind_address)
        tls = bool(opts.metrics_cert_file and opts.metrics_key_file)
        self._shared = metrics_at is not None and metrics_at == health_at and metrics_at[1] != 0
        if self._shared and metrics_at is not None:
            return [("metrics", metrics_at, self.metrics_routes() + self.checks.routes(), tls)]
        plan: list[tuple[str, tuple[str, int], list[Route], bool]] = []
        if metrics_at is not None:
            plan.append(("metrics", metrics_at, self.metrics_routes(), tls))
        if health_at is not None:
            plan.append(("health", health_at, self.checks.routes(), False))
        return plan

    def _listener(self, name: str, address: tuple[str, int], routes: list[Route], tls: bool) -> _Listener:
        host, port = address
        sock = tcp_listener(host, port, backlog=128)
        extra: dict[str, Any] = {}
        if tls:
            extra = {
                "ssl_certfile": self.options.metrics_cert_file,
                "ssl_keyfile": self.options.metrics_key_file,
            }
        config = uvicorn.Config(
            Starlette(routes=routes),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(max(1, self.options.shutdown_timeout)),
            **extra,
        )
        return _Listener(name, sock, _EmbeddedServer(config), tls)

    @property
    def metrics_url(self) -> str | None:
        listener = self._listeners.get("metrics")
        return listener.url if listener else None

    @property
    def health_url(self) -> str | None:
        listener = self._listeners.get("health")
        if listener is None and self._shared:
            listener = self._listeners.get("metrics")
        return listener.url if listener else None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[ObservabilityServer] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, serve until cancelled, then shut the listeners down gracefully."""
        listeners: list[_Listener] = []
        try:
            for name, address, routes, tls in self._plan():
                listeners.append(self._listener(name, address, routes, tls))
        except BaseException:
            for listener in listeners:
                listener.sock.close()
            raise
        self._listeners = {listener.name: listener for listener in listeners}

        async def serve(listener: _Listener) -> None:
            with anyio.CancelScope(shield=True):  # uvicorn's own shutdown must complete
                await listener.server.serve(sockets=[listener.sock])

        try:
            async with anyio.create_task_group() as tg:
                for listener in listeners:
                    tg.start_soon(serve, listener, name=f"kube_runtime {listener.name} server")
                try:
                    for listener in listeners:
                        await listener.server.listening.wait()
                    task_status.started(self)
                    await anyio.sleep_forever()
                finally:
                    for listener in listeners:
                        listener.server.should_exit = True
        finally:
            for listener in listeners:
                listener.sock.close()

    async def __aenter__(self) -> ObservabilityServer:
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        try:
            await tasks.start(self.run, name="kube_runtime observability server")
        except BaseException as exc:
            await tasks.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._tasks = tasks
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tasks, self._tasks = self._tasks, None
        assert tasks is not None
        return await tasks.__aexit__(exc_type, exc, tb)
