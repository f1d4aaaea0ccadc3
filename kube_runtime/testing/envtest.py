"""A real kube-apiserver + etcd for end-to-end tests, run the way controller-runtime's envtest runs them.

``async with Envtest() as env`` starts etcd and kube-apiserver (and optionally kube-controller-manager, for
garbage collection) as child processes on free loopback ports, waits until the API server answers
``/readyz`` and the ``default`` namespace exists, writes a kubeconfig, and on exit stops every child
(SIGTERM, then SIGKILL after ``stop_timeout``) and removes its temporary directory.

Guarantees:

- Children are owned by the context manager: they are stopped on normal exit, on an exception, on
  cancellation and on a failed start. When ``kill_on_parent_death`` is on (the default, Linux with
  ``setpriv``), the kernel also kills them if the test process itself dies without cleaning up.
- ``.url``, ``.token`` (admin, in ``system:masters``) and ``.kubeconfig_path`` stay valid across
  :meth:`Envtest.restart_apiserver` and :meth:`Envtest.restart_etcd`: ports, credentials and the etcd data
  directory are kept.
- Binaries come from ``KUBE_RUNTIME_ENVTEST_BIN`` or the cache that ``scripts/build-envtest.sh`` fills
  (``${KUBE_RUNTIME_ENVTEST_DIR:-~/.cache/kube-runtime/envtest}/<k8s-version>/bin``). When they are absent,
  :class:`MissingEnvtestBinaries` names them; the ``envtest`` pytest fixture and :func:`locate_or_skip`
  turn that into a skip (a failure when ``$KUBE_RUNTIME_REQUIRE_ENVTEST`` is set).
- Fault controls stop a process gracefully (SIGTERM; kube-apiserver ends open watches within two
  seconds) or, with ``kill=True``, crash it (SIGKILL).
- :class:`ThreadedEnvtest` hosts one on its own event loop in a worker thread, so a module- or
  package-scoped fixture can share it with tests running on any loop.

Pitfalls:

- The watch cache serves resumed watches from memory, so an etcd compaction alone does not make a watch
  from an old resourceVersion fail while the cached window still covers it. Pass ``watch_cache=False``
  (watches then go straight to etcd) or restart the API server after compacting to see the 410.
- kube-apiserver compacts etcd itself every five minutes (``--etcd-compaction-interval``).
- ``kill_on_parent_death`` uses the parent-death signal, which fires when the *thread* that started a
  child exits: start Envtest from the thread that runs the event loop, not from a short-lived worker.
- Nothing runs Pods; without ``controller_manager=True`` nothing collects garbage or finishes namespace
  deletion.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, ParamSpec, TypeVar

import anyio
import httpx
import pytest
import yaml
from anyio.abc import Process
from anyio.from_thread import BlockingPortal, start_blocking_portal
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kube_runtime.testing.pki import issue_certificate, key_pem, new_key, subject_name

__all__ = [
    "BIN_DIR_ENV",
    "CACHE_DIR_ENV",
    "REQUIRE_ENV",
    "Envtest",
    "EnvtestBinaries",
    "EnvtestError",
    "MissingEnvtestBinaries",
    "ThreadedEnvtest",
    "default_bin_dir",
    "envtest",
    "locate_or_skip",
    "main",
]

BIN_DIR_ENV = "KUBE_RUNTIME_ENVTEST_BIN"
#: Set (to anything but "" or "0") to make missing binaries fail the envtest tests instead of skipping them.
REQUIRE_ENV = "KUBE_RUNTIME_REQUIRE_ENVTEST"
CACHE_DIR_ENV = "KUBE_RUNTIME_ENVTEST_DIR"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
ADMIN_USER = "envtest-admin"
LIMITED_USER = "envtest-user"
_LOG_TAIL_LINES = 40
_P = ParamSpec("_P")
_T = TypeVar("_T")


class EnvtestError(RuntimeError):
    """A control-plane process failed to start, died, or did not become ready in time."""


class MissingEnvtestBinaries(EnvtestError):
    """Required binaries are not where they were looked for; ``.missing`` names them."""

    def __init__(self, bin_dir: Path, missing: Sequence[str]) -> None:
        self.bin_dir = bin_dir
        self.missing = tuple(missing)
        super().__init__(
            f"envtest binaries missing: {', '.join(self.missing)} (looked in {bin_dir}; "
            f"build them with scripts/build-envtest.sh or set {BIN_DIR_ENV})"
        )


def _cache_root() -> Path:
    root = os.environ.get(CACHE_DIR_ENV)
    return Path(root) if root else Path.home() / ".cache" / "kube-runtime" / "envtest"


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def default_bin_dir() -> Path:
    """``$KUBE_RUNTIME_ENVTEST_BIN``, else the newest cached version's ``bin`` that has kube-apiserver."""
    explicit = os.environ.get(BIN_DIR_ENV)
    if explicit:
        return Path(explicit)
    root = _cache_root()
    candidates = sorted(
        (d for d in root.glob("*/bin") if (d / "kube-apiserver").is_file()),
        key=lambda d: _version_key(d.parent.name),
    )
    return candidates[-1] if candidates else root / "<k8s-version>" / "bin"


@dataclass(frozen=True)
class EnvtestBinaries:
    """Paths of the control-plane binaries; ``kube_controller_manager`` is optional."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path | None = None

    @classmethod
    def locate(
        cls, bin_dir: Path | str | None = None, *, controller_manager: bool = False
    ) -> EnvtestBinaries:
        """Find the binaries in ``bin_dir`` (default :func:`default_bin_dir`).

        Raises :class:`MissingEnvtestBinaries` naming every required binary that is not an executable file.
        """
        directory = Path(bin_dir) if bin_dir is not None else default_bin_dir()
        names = ["kube-apiserver", "etcd"] + (["kube-controller-manager"] if controller_manager else [])
        missing = [n for n in names if not os.access(directory / n, os.X_OK) or not (directory / n).is_file()]
        if missing:
            raise MissingEnvtestBinaries(directory, missing)
        kcm = directory / "kube-controller-manager"
        return cls(
            etcd=directory / "etcd",
            kube_apiserver=directory / "kube-apiserver",
            kube_controller_manager=kcm if os.access(kcm, os.X_OK) else None,
        )


# --------------------------------------------------------------------------------------------- PKI


@dataclass(frozen=True)
class _Pki:
    """Files under the cert dir; all keys are ECDSA P-256."""

    serving_ca: Path
    serving_cert: Path
    serving_key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path
    sa_public_key: Path
    sa_private_key: Path
    token_file: Path
    admin_token: str
    limited_token: str


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _make_pki(cert_dir: Path) -> _Pki:
    """Generate the serving CA and cert, the client CA and admin cert, the SA key pair and the tokens."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM

    serving_ca_key = new_key()
    serving_ca = issue_certificate(subject_name("envtest-serving-ca"), serving_ca_key, None, ca=True)
    serving_key = new_key()
    serving_cert = issue_certificate(
        subject_name("kube-apiserver"),
        serving_key,
        (serving_ca, serving_ca_key),
        sans=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ],
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    client_ca_key = new_key()
    client_ca = issue_certificate(subject_name("envtest-client-ca"), client_ca_key, None, ca=True)
    client_key = new_key()
    client_cert = issue_certificate(
        subject_name(ADMIN_USER, "system:masters"),
        client_key,
        (client_ca, client_ca_key),
        usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    sa_key = new_key()
    admin_token = secrets.token_urlsafe(32)
    limited_token = secrets.token_urlsafe(32)
    tokens = (
        f'{admin_token},{ADMIN_USER},{ADMIN_USER}-uid,"system:masters"\n'
        f"{limited_token},{LIMITED_USER},{LIMITED_USER}-uid\n"
    )
    return _Pki(
        serving_ca=_write(cert_dir / "serving-ca.crt", serving_ca.public_bytes(pem)),
        serving_cert=_write(cert_dir / "apiserver.crt", serving_cert.public_bytes(pem)),
        serving_key=_write(cert_dir / "apiserver.key", key_pem(serving_key)),
        client_ca=_write(cert_dir / "client-cert-auth-ca.crt", client_ca.public_bytes(pem)),
        client_cert=_write(cert_dir / "admin.crt", client_cert.public_bytes(pem)),
        client_key=_write(cert_dir / "admin.key", key_pem(client_key)),
        sa_public_key=_write(
            cert_dir / "sa-signer.pub",
            sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
        ),
        sa_private_key=_write(cert_dir / "sa-signer.key", key_pem(sa_key)),
        token_file=_write(cert_dir / "tokens.csv", tokens.encode()),
        admin_token=admin_token,
        limited_token=limited_token,
    )


def _write_kubeconfig(path: Path, server: str, pki: _Pki) -> None:
    """One cluster, user and context, all named ``envtest``; the user authenticates with the admin token."""
    ca_pem = pki.serving_ca.read_bytes()
    token = pki.admin_token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "envtest",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "envtest", "user": {"token": token}}],
        "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "envtest"}}],
        "current-context": "envtest",
        "preferences": {},
    }
    _write(path, yaml.safe_dump(config, sort_keys=False).encode())


# --------------------------------------------------------------------------------------- processes


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open at once so none is handed out twice)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


@dataclass
class _Child:
    """One control-plane process: how to start it, and the running instance if any."""

    name: str
    argv: list[str]
    log_path: Path
    process: Process | None = None
    last_pid: int | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, env: Mapping[str, str]) -> None:
        if self.process is not None:
            raise EnvtestError(f"{self.name} is already running")
        self._log = await anyio.to_thread.run_sync(_open_log, self.log_path)
        try:
            self.process = await anyio.open_process(
                self.argv,
                stdin=None,
                stdout=self._log,
                stderr=self._log,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            self._log = None
            raise
        self.last_pid = self.process.pid

    async def stop(self, grace_period: float, *, kill: bool = False) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_period`` s (at once with ``kill``); always reaps.

        Shielded against cancellation.
        """
        process, self.process = self.process, None
        if process is None:
            return None
        with anyio.CancelScope(shield=True):
            try:
                if process.returncode is None:
                    if kill:
                        process.kill()
                    else:
                        process.terminate()
                    with anyio.move_on_after(grace_period):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                await process.wait()
                await process.aclose()
            finally:
                if self._log is not None:
                    self._log.close()
                    self._log = None
        return process.returncode

    def failure(self, what: str) -> EnvtestError:
        code = self.process.returncode if self.process is not None else None
        status = f" (exit code {code})" if code is not None else ""
        return EnvtestError(
            f"{self.name} {what}{status}; last log lines from {self.log_path}:\n{_log_tail(self.log_path)}"
        )


def _pdeathsig_prefix() -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


# ------------------------------------------------------------------------------------------ Envtest


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
        self._pki: _Pki | None = None
        self._etcd: _Child | None = None
        self._apiserver: _Child | None = None
        self._kcm: _Child | None = None
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
            self._pki = await anyio.to_thread.run_sync(_make_pki, self._dir / "certs")
            self.etcd_port, self.etcd_peer_port, self.port, self.kcm_port = _free_ports(4)
            self._env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
            await anyio.to_thread.run_sync(_write_kubeconfig, self.kubeconfig_path, self.url, self._pki)
            self._etcd = _Child("etcd", self._etcd_argv(), self.log_path("etcd"))
            self._apiserver = _Child(
                "kube-apiserver", self._apiserver_argv(), self.log_path("kube-apiserver")
            )
            stack.push_async_callback(self._etcd.stop, self.stop_timeout)
            await self.start_etcd()
            stack.push_async_callback(self._apiserver.stop, self.stop_timeout)
            await self.start_apiserver()
            if self.controller_manager:
                self._kcm = _Child(
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

    def _require_pki(self) -> _Pki:
        if self._pki is None:
            raise EnvtestError("envtest is not started")
        return self._pki

    @staticmethod
    def _require(child: _Child | None) -> _Child:
        if child is None:
            raise EnvtestError("envtest is not started")
        return child

    def _prefix(self) -> list[str]:
        return _pdeathsig_prefix() if self.kill_on_parent_death else []

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

    async def _wait_apiserver_ready(self, child: _Child) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        await self._wait_http_ok(child, f"{self.url}/readyz", verify=self.ssl_context(), headers=headers)
        # The system namespaces are created by a post-start controller after /readyz may already pass.
        await self._wait_http_ok(
            child, f"{self.url}/api/v1/namespaces/default", verify=self.ssl_context(), headers=headers
        )

    async def _wait_http_ok(
        self, child: _Child, url: str, *, verify: ssl.SSLContext | bool, headers: Mapping[str, str]
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


# ------------------------------------------------------------------------------------ thread-hosted


class ThreadedEnvtest:
    """An :class:`Envtest` running on its own event loop in a worker thread, for shared pytest fixtures.

    ``with ThreadedEnvtest(binaries, **options) as hosted:`` starts the control plane and stops it on exit;
    ``hosted.env`` gives its URL, tokens and kubeconfig. Because the children belong to the worker thread's
    loop, one instance can serve tests on any event loop (a session- or module-scoped sync fixture does not
    tie every test to one anyio runner).

    Pitfalls: call the async fault controls through :meth:`run` (from async code; it waits in a worker
    thread, so the caller's loop keeps running, but it cannot be cancelled midway) or :meth:`call` (from
    sync code), never by awaiting them directly on another loop.
    """

    def __init__(self, binaries: EnvtestBinaries | None = None, **options: Any) -> None:
        self.env = Envtest(binaries, **options)
        self._stack: ExitStack | None = None
        self._portal: BlockingPortal | None = None

    def __enter__(self) -> ThreadedEnvtest:
        stack = ExitStack()
        try:
            self._portal = stack.enter_context(start_blocking_portal("asyncio"))
            stack.enter_context(self._portal.wrap_async_context_manager(self.env))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._portal = self._stack, None, None
        if stack is not None:
            stack.close()

    def call(self, func: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``func(*args, **kwargs)`` on the envtest's loop and return its result (blocking)."""
        if self._portal is None:
            raise EnvtestError("envtest is not started")

        async def invoke() -> _T:
            return await func(*args, **kwargs)

        return self._portal.call(invoke)

    async def run(self, func: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Await ``func(*args, **kwargs)`` on the envtest's loop from another loop."""

        def invoke() -> _T:
            return self.call(func, *args, **kwargs)

        return await anyio.to_thread.run_sync(invoke)


# ------------------------------------------------------------------------------------------ pytest


def locate_or_skip(*, controller_manager: bool = False) -> EnvtestBinaries:
    """:meth:`EnvtestBinaries.locate` for a test: skips, naming the missing binaries, when they are not built.

    With ``$KUBE_RUNTIME_REQUIRE_ENVTEST`` set (CI, once it has found the cached binaries), it fails the
    test instead, so an end-to-end test can never be skipped silently.
    """
    try:
        return EnvtestBinaries.locate(controller_manager=controller_manager)
    except MissingEnvtestBinaries as exc:
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail(f"{exc} (and ${REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
async def envtest(anyio_backend: object) -> AsyncIterator[Envtest]:
    """A fresh :class:`Envtest` per test; skips, naming the missing binaries, when they are not built."""
    async with Envtest(locate_or_skip()) as env:
        yield env


# --------------------------------------------------------------------------------------------- CLI


async def _serve(args: argparse.Namespace) -> None:
    binaries = EnvtestBinaries.locate(args.bin_dir, controller_manager=args.controller_manager)
    async with Envtest(
        binaries,
        authorization_mode=args.authorization_mode,
        watch_cache=not args.no_watch_cache,
        controller_manager=args.controller_manager,
        controllers=args.controllers.split(","),
    ) as env:
        kubeconfig = env.kubeconfig_path
        if args.kubeconfig:
            kubeconfig = Path(args.kubeconfig)
            await anyio.to_thread.run_sync(shutil.copyfile, env.kubeconfig_path, kubeconfig)
        print(f"envtest ready: {env.url} pids={env.pids}", flush=True)
        print(f"KUBECONFIG={kubeconfig}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"envtest: {signal.Signals(signum).name}, stopping", flush=True)
                break


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m kube_runtime.testing.envtest``: run a control plane until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m kube_runtime.testing.envtest", description=main.__doc__)
    parser.add_argument("--bin-dir", default=None, help=f"binaries (default: ${BIN_DIR_ENV} or the cache)")
    parser.add_argument("--kubeconfig", default=None, help="also copy the kubeconfig to this path")
    parser.add_argument("--authorization-mode", choices=["RBAC", "AlwaysAllow"], default="RBAC")
    parser.add_argument("--no-watch-cache", action="store_true", help="serve watches from etcd directly")
    parser.add_argument("--controller-manager", action="store_true", help="also run kube-controller-manager")
    parser.add_argument(
        "--controllers", default="*", help="kube-controller-manager --controllers (default *)"
    )
    args = parser.parse_args(argv)
    anyio.run(_serve, args)


if __name__ == "__main__":
    main()
