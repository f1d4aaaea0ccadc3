"""The control plane itself: :class:`Envtest` starts, readies, stops and faults etcd,
kube-apiserver and kube-controller-manager (guarantees and pitfalls: the package docstring,
:mod:`kube_runtime.testing.envtest`)."""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx

from kube_runtime.testing.envtest.binaries import EnvtestBinaries, EnvtestError, MissingEnvtestBinaries
from kube_runtime.testing.envtest.credentials import Pki, make_pki, write_kubeconfig
from kube_runtime.testing.envtest.processes import Child, free_ports, pdeathsig_prefix

__all__ = ["SERVICE_CLUSTER_IP_RANGE", "Envtest"]


SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"


class Envtest:
    """etcd + kube-apiserver (+ optional kube-controller-manager) as owned child processes.

    ``authorization_mode`` is ``"RBAC"`` (the admin token and client cert are in ``system:masters``;
    ``limited_token`` is a user with no bindings) or ``"AlwaysAllow"``. ``controllers`` is passed to
    kube-controller-manager's ``--controllers`` (``"-root-ca-certificate-publisher-controller"`` stops the
    ``kube-root-ca.crt`` ConfigMap from appearing in every namespace). ``watch_cache=False`` makes watches
    read etcd directly (see the module docstring about compaction). ``extra_apiserver_args`` are appended
    last, so they override the defaults.
    """

    def __init__(
        self,
        binaries: EnvtestBinaries | None = None,
        *,
        authorization_mode: Literal["RBAC", "AlwaysAllow"] = "RBAC",
        watch_cache: bool = True,
        controller_manager: bool = False,
        controllers: Sequence[str] = ("*",),
        feature_gates: Mapping[str, bool] | None = None,
        extra_apiserver_args: Sequence[str] = (),
        start_timeout: float = 90.0,
        stop_timeout: float = 20.0,
        kill_on_parent_death: bool = True,
        keep_data: bool = False,
    ) -> None:
        self.binaries = binaries or EnvtestBinaries.locate(controller_manager=controller_manager)
        if controller_manager and self.binaries.kube_controller_manager is None:
            raise MissingEnvtestBinaries(self.binaries.kube_apiserver.parent, ["kube-controller-manager"])
        self.authorization_mode = authorization_mode
        self.watch_cache = watch_cache
        self.controller_manager = controller_manager
        self.controllers = list(controllers)
        self.feature_gates = dict(feature_gates or {})
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.kill_on_parent_death = kill_on_parent_death
        self.keep_data = keep_data
        self._stack: AsyncExitStack | None = None
        self._dir: Path | None = None
        self._pki: Pki | None = None
        self._etcd: Child | None = None
        self._apiserver: Child | None = None
        self._kcm: Child | None = None
        self._env: dict[str, str] = {}
        self.etcd_port = 0
        self.etcd_peer_port = 0
        self.port = 0
        self.kcm_port = 0

    # ------------------------------------------------------------------------------ public state

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>`` of kube-apiserver."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        """``http://127.0.0.1:<port>`` of etcd's client endpoint (gRPC and the v3 JSON gateway)."""
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def data_dir(self) -> Path:
        if self._dir is None:
            raise EnvtestError("envtest is not started")
        return self._dir

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def token(self) -> str:
        """Bearer token of ``envtest-admin`` (group ``system:masters``)."""
        return self._require_pki().admin_token

    @property
    def limited_token(self) -> str:
        """Bearer token of ``envtest-user``: authenticated, but no RBAC bindings."""
        return self._require_pki().limited_token

    @property
    def ca_path(self) -> Path:
        """CA bundle that verifies the API server's serving certificate."""
        return self._require_pki().serving_ca

    @property
    def client_cert_path(self) -> Path:
        """Client certificate of ``envtest-admin`` (``O=system:masters``), with :attr:`client_key_path`."""
        return self._require_pki().client_cert

    @property
    def client_key_path(self) -> Path:
        return self._require_pki().client_key

    @property
    def pids(self) -> dict[str, int]:
        """Last known pid of every child that was started, running or not (for leak checks)."""
        children = [c for c in (self._etcd, self._apiserver, self._kcm) if c is not None]
        return {c.name: c.last_pid for c in children if c.last_pid is not None}

    def log_path(self, name: Literal["etcd", "kube-apiserver", "kube-controller-manager"]) -> Path:
        return self.data_dir / f"{name}.log"

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts the API server's serving CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def http_client(self, *, token: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """A new (unopened) httpx client for the API server, authenticated as admin unless ``token``."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.AsyncClient(base_url=self.url, verify=self.ssl_context(), headers=headers, **kwargs)

    # ------------------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Envtest:
        if self._stack is not None:
            raise EnvtestError("envtest is already started")
        stack = AsyncExitStack()
        try:
            self._dir = Path(
                await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="kube-runtime-envtest-"))
            )
            stack.push_async_callback(self._remove_dir)
            self._pki = await anyio.to_thread.run_sync(make_pki, self._dir / "certs")
            self.etcd_port, self.etcd_peer_port, self.port, self.kcm_port = free_ports(4)
            self._env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
            await anyio.to_thread.run_sync(write_kubeconfig, self.kubeconfig_path, self.url, self._pki)
            self._etcd = Child("etcd", self._etcd_argv(), self.log_path("etcd"))
            self._apiserver = Child("kube-apiserver", self._apiserver_argv(), self.log_path("kube-apiserver"))
            stack.push_async_callback(self._etcd.stop, self.stop_timeout)
            await self.start_etcd()
            stack.push_async_callback(self._apiserver.stop, self.stop_timeout)
            await self.start_apiserver()
            if self.controller_manager:
                self._kcm = Child(
                    "kube-controller-manager", self._kcm_argv(), self.log_path("kube-controller-manager")
                )
                stack.push_async_callback(self._kcm.stop, self.stop_timeout)
                await self._start_kcm()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            with anyio.CancelScope(shield=True):
                await stack.aclose()

    async def _remove_dir(self) -> None:
        if self._dir is not None and not self.keep_data:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(self.data_dir, ignore_errors=True))

    # ------------------------------------------------------------------------------ fault controls

    async def stop_apiserver(self, *, kill: bool = False) -> None:
        """Stop kube-apiserver; its port goes dark.

        By default a graceful SIGTERM (open watches are ended within the two-second watch termination grace
        period), SIGKILL after ``stop_timeout``. ``kill=True`` sends SIGKILL at once: a crash, in which
        open connections simply break.
        """
        await self._require(self._apiserver).stop(self.stop_timeout, kill=kill)

    async def start_apiserver(self) -> None:
        """Start kube-apiserver on the same port and wait for ``/readyz`` and the ``default`` namespace."""
        child = self._require(self._apiserver)
        await child.start(self._env)
        await self._wait_apiserver_ready(child)

    async def restart_apiserver(self, *, kill: bool = False) -> None:
        await self.stop_apiserver(kill=kill)
        await self.start_apiserver()

    async def stop_etcd(self, *, kill: bool = False) -> None:
        """Stop etcd; kube-apiserver keeps running and fails storage requests until etcd is back.

        A graceful stop takes several seconds while kube-apiserver holds watch streams on etcd;
        ``kill=True`` sends SIGKILL at once.
        """
        await self._require(self._etcd).stop(self.stop_timeout, kill=kill)

    async def start_etcd(self) -> None:
        """Start etcd on the same ports and data dir; waits for its health, then for the API server."""
        child = self._require(self._etcd)
        await child.start(self._env)
        await self._wait_http_ok(child, f"{self.etcd_url}/health", verify=False, headers={})
        if self._apiserver is not None and self._apiserver.running:
            await self._wait_apiserver_ready(self._apiserver)

    async def restart_etcd(self, *, kill: bool = False) -> None:
        await self.stop_etcd(kill=kill)
        await self.start_etcd()

    async def etcd_revision(self) -> int:
        """etcd's current store revision (what the next write's resourceVersion will exceed)."""
        body = await self._etcd_gateway("/v3/kv/range", {"key": base64.b64encode(b"\0").decode(), "limit": 1})
        return int(body["header"]["revision"])

    async def compact(self, revision: int | None = None, *, physical: bool = True) -> int:
        """Compact etcd history up to ``revision`` (default: the current revision); returns it.

        Afterwards a watch that must replay events older than ``revision`` gets 410 Gone (from etcd directly,
        or from the watch cache once its window no longer covers them).
        """
        target = revision if revision is not None else await self.etcd_revision()
        await self._etcd_gateway("/v3/kv/compaction", {"revision": str(target), "physical": physical})
        return target

    # ------------------------------------------------------------------------------ internals

    def _require_pki(self) -> Pki:
        if self._pki is None:
            raise EnvtestError("envtest is not started")
        return self._pki

    @staticmethod
    def _require(child: Child | None) -> Child:
        if child is None:
            raise EnvtestError("envtest is not started")
        return child

    def _prefix(self) -> list[str]:
        return pdeathsig_prefix() if self.kill_on_parent_death else []

    def _etcd_argv(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        return [
            *self._prefix(),
            str(self.binaries.etcd),
            "--name=envtest",
            f"--data-dir={self.data_dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=envtest={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_argv(self) -> list[str]:
        pki = self._require_pki()
        args = [
            *self._prefix(),
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--cert-dir={self.data_dir / 'certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.client_ca}",
            f"--token-auth-file={pki.token_file}",
            f"--secure-port={self.port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount",
            f"--authorization-mode={self.authorization_mode}",
            f"--service-account-issuer=https://127.0.0.1:{self.port}/",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            # Without it a graceful stop waits out the HTTP server's shutdown timeout for open watches.
            "--shutdown-watch-termination-grace-period=2s",
        ]
        if not self.watch_cache:
            args.append("--watch-cache=false")
        if self.feature_gates:
            gates = ",".join(f"{k}={str(v).lower()}" for k, v in sorted(self.feature_gates.items()))
            args.append(f"--feature-gates={gates}")
        return args + self.extra_apiserver_args

    def _kcm_argv(self) -> list[str]:
        pki = self._require_pki()
        assert self.binaries.kube_controller_manager is not None
        return [
            *self._prefix(),
            str(self.binaries.kube_controller_manager),
            f"--kubeconfig={self.kubeconfig_path}",
            f"--authentication-kubeconfig={self.kubeconfig_path}",
            f"--authorization-kubeconfig={self.kubeconfig_path}",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki.sa_private_key}",
            f"--root-ca-file={pki.serving_ca}",
            f"--controllers={','.join(self.controllers)}",
            "--use-service-account-credentials=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.kcm_port}",
            f"--cert-dir={self.data_dir / 'kcm-certs'}",
        ]

    async def _start_kcm(self) -> None:
        child = self._require(self._kcm)
        await child.start(self._env)
        await self._wait_http_ok(
            child, f"https://127.0.0.1:{self.kcm_port}/healthz", verify=False, headers={}
        )

    async def _wait_apiserver_ready(self, child: Child) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        await self._wait_http_ok(child, f"{self.url}/readyz", verify=self.ssl_context(), headers=headers)
        # The system namespaces are created by a post-start controller after /readyz may already pass.
        await self._wait_http_ok(
            child, f"{self.url}/api/v1/namespaces/default", verify=self.ssl_context(), headers=headers
        )

    async def _wait_http_ok(
        self, child: Child, url: str, *, verify: ssl.SSLContext | bool, headers: Mapping[str, str]
    ) -> None:
        """Poll ``url`` until it answers 200; fail fast if ``child`` exits, time out after start_timeout."""
        last = "no answer yet"
        async with httpx.AsyncClient(verify=verify, headers=dict(headers), timeout=5.0) as http:
            try:
                with anyio.fail_after(self.start_timeout):
                    while True:
                        if not child.running:
                            raise child.failure(f"exited while waiting for {url}")
                        try:
                            response = await http.get(url)
                            if response.status_code == 200:
                                return
                            last = f"HTTP {response.status_code}: {response.text[:300]}"
                        except httpx.TransportError as exc:
                            last = f"{type(exc).__name__}: {exc}"
                        await anyio.sleep(0.1)
            except TimeoutError:
                raise child.failure(
                    f"not ready at {url} within {self.start_timeout}s (last: {last})"
                ) from None

    async def _etcd_gateway(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.etcd_url, timeout=30.0) as http:
            response = await http.post(path, json=dict(body))
        if response.status_code != 200:
            raise EnvtestError(f"etcd {path} failed: HTTP {response.status_code}: {response.text[:500]}")
        result: dict[str, Any] = response.json()
        return result
