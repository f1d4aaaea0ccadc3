"""The webhook server: the registered webhooks over TLS on uvicorn, on the controller's event loop.

Like :class:`~kube_runtime.observe.server.ObservabilityServer` (same embedding: no signal capture,
no logging setup, graceful shutdown on cancellation), serving :meth:`Webhooks.routes` on
``bind_address`` (controller-runtime's default port is 9443) with the pair at
``cert_file``/``key_file`` reloaded when the files change
(:class:`~kube_runtime.webhooks.certs.ReloadingCertificate`, given to uvicorn through its public
``ssl_context_factory``), so cert-manager rotations need no restart and drop no connection.

Run it inside your own task group (``await tg.start(server.run)``) or ``async with server:``;
``url`` is the bound base URL once running (useful with port 0).
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from kube_runtime._tasks import BackgroundTasks
from kube_runtime.observe.server import _EmbeddedServer, parse_bind_address, tcp_listener
from kube_runtime.webhooks.certs import ReloadingCertificate
from kube_runtime.webhooks.registry import Webhooks

__all__ = ["WebhookOptions", "WebhookServer"]


@dataclass
class WebhookOptions:
    """The webhook server's command-line flags (the Helm chart passes them when webhooks are on)."""

    bind_address: str = ":9443"
    cert_file: str = "/etc/kube-runtime/webhook-tls/tls.crt"
    key_file: str = "/etc/kube-runtime/webhook-tls/tls.key"

    @staticmethod
    def add_arguments(parser: argparse._ActionsContainer) -> None:
        """Add ``--webhook-bind-address``, ``--webhook-cert-file`` and ``--webhook-key-file``."""
        defaults = WebhookOptions()
        parser.add_argument("--webhook-bind-address", default=defaults.bind_address)
        parser.add_argument(
            "--webhook-cert-file", default=defaults.cert_file, help="serving certificate (PEM)"
        )
        parser.add_argument("--webhook-key-file", default=defaults.key_file, help="serving key (PEM)")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> WebhookOptions:
        return cls(args.webhook_bind_address, args.webhook_cert_file, args.webhook_key_file)

    def server(self, webhooks: Webhooks, **kwargs: Any) -> WebhookServer:
        """A :class:`WebhookServer` for ``webhooks`` with these options (``kwargs`` go to it)."""
        return WebhookServer(
            webhooks,
            cert_file=self.cert_file,
            key_file=self.key_file,
            bind_address=self.bind_address,
            **kwargs,
        )


class WebhookServer:
    """Serves ``webhooks`` over TLS. Raises ``OSError``/``ssl.SSLError`` from the constructor when
    the pair cannot be loaded and ``OSError`` from :meth:`run` when the address cannot be bound."""

    def __init__(
        self,
        webhooks: Webhooks,
        *,
        cert_file: str | os.PathLike[str],
        key_file: str | os.PathLike[str],
        bind_address: str = ":9443",
        poll_interval: float = 1.0,
        shutdown_timeout: float = 5.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        address = parse_bind_address(bind_address)
        if address is None:
            raise ValueError("the webhook server needs a bind address")
        self.webhooks = webhooks
        self.address = address
        self.certificate = ReloadingCertificate(
            cert_file, key_file, poll_interval=poll_interval, registry=registry
        )
        self.shutdown_timeout = shutdown_timeout
        self._sock: socket.socket | None = None
        self._tasks: BackgroundTasks | None = None

    @property
    def url(self) -> str:
        """``https://host:port`` of the bound listener (loopback when bound to every address)."""
        if self._sock is None:
            raise RuntimeError("the webhook server is not running")
        host, port = self._sock.getsockname()[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{port}"

    def started_check(self) -> Callable[[], Awaitable[str | None]]:
        """A readiness check (``HealthChecks.add_readyz("webhooks", server.started_check())``), as
        controller-runtime's ``StartedChecker``: ready once a TLS handshake with the listener
        succeeds, so a pod is not sent API server calls before it can answer them."""

        async def check() -> str | None:
            if self._sock is None:
                return "webhook server not started"
            host, port = self.url.removeprefix("https://").rsplit(":", 1)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # only whether it serves TLS, as controller-runtime
            try:
                stream = await anyio.connect_tcp(
                    host.strip("[]"), int(port), tls=True, ssl_context=context, tls_standard_compatible=False
                )
            except OSError as exc:
                return f"webhook server not reachable: {exc}"
            await stream.aclose()
            return None

        return check

    def _ssl_factory(self, _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return self.certificate.context

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[WebhookServer] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Bind, serve and watch the certificate files until cancelled, then shut down gracefully."""
        sock = tcp_listener(*self.address, backlog=1024)
        config = uvicorn.Config(
            Starlette(routes=self.webhooks.routes()),
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(max(1, self.shutdown_timeout)),
            ssl_context_factory=self._ssl_factory,
        )
        server = _EmbeddedServer(config)
        self._sock = sock

        async def serve() -> None:
            with anyio.CancelScope(shield=True):  # uvicorn's own shutdown must complete
                await server.serve(sockets=[sock])

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve, name="kube_runtime webhook server")
                try:
                    await server.listening.wait()
                    await tg.start(self.certificate.run, name="kube_runtime webhook certificate reloader")
                    task_status.started(self)
                    await anyio.sleep_forever()
                finally:
                    server.should_exit = True
                    tg.cancel_scope.cancel()  # the reloader; serve() is shielded and drains
        finally:
            sock.close()
            self._sock = None

    async def __aenter__(self) -> WebhookServer:
        tasks = BackgroundTasks()
        await tasks.__aenter__()
        try:
            await tasks.start(self.run, name="kube_runtime webhook server")
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
