"""Credential sources with refresh: static tokens, token files, exec plugins.

kr8s's ``KubeAuth`` reads credentials once per (re)authentication and only re-reads them after a
401/403 (kr8s#27). It runs exec plugins but drops ``expirationTimestamp``, and it has no
``tokenFile`` support. This module replaces that piece so credentials are refreshed *before* they
lapse:

* :class:`ExecPlugin` re-runs the plugin ahead of the credential's ``expirationTimestamp``
  (:func:`refresh_margin` before it), not after a failed request.
* :class:`TokenFile` re-reads its file periodically (every 60 s by default, like client-go's
  cached file token source), which is how projected service-account tokens rotate.
* :class:`Authenticator` caches the current :class:`Credentials`, runs one refresh at a time for
  all concurrent requests, and on a 401 refreshes at most once per stale credential
  (:meth:`Authenticator.reauthenticate`).

Guarantees and pitfalls:

* Refreshing is lazy-but-early: it happens on the first request after the refresh point, so no
  background task is needed. A refresh that fails while the cached credential has not yet expired
  keeps the cached one (logged at WARNING) and tries again ``retry_interval`` later; once expired,
  the failure is raised as :class:`AuthenticationError`.
* Plugin output and tokens are never logged; error messages carry the plugin's stderr (first 1 KiB)
  and command name only.
* ``expirationTimestamp`` is wall-clock time; it is converted once, at fetch, into a deadline on the
  event loop clock (``anyio.current_time()``), so refresh scheduling follows the loop clock.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import anyio
import orjson

from kube_runtime._offload import in_thread
from kube_runtime.client.errors import AuthenticationError
from kube_runtime.client.redact import redact, remember_secret

__all__ = [
    "Authenticator",
    "CredentialSource",
    "Credentials",
    "ExecPlugin",
    "StaticToken",
    "TokenFile",
    "refresh_margin",
]

logger = logging.getLogger("kube_runtime.client.auth")


class Credentials:
    """One snapshot of what to present: a bearer token and/or a client certificate (PEM bytes).

    ``refresh_at`` and ``expires_at`` are loop-clock deadlines (``anyio.current_time()``); ``None``
    means never. The token is kept out of ``repr`` and remembered for
    :func:`~kube_runtime.client.redact.redact`, which log output and error texts go through.
    """

    __slots__ = ("client_cert_pem", "client_key_pem", "expires_at", "refresh_at", "token")

    def __init__(
        self,
        *,
        token: str | None = None,
        client_cert_pem: bytes | None = None,
        client_key_pem: bytes | None = None,
        refresh_at: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        self.token = token
        remember_secret(token)
        self.client_cert_pem = client_cert_pem
        self.client_key_pem = client_key_pem
        self.refresh_at = refresh_at
        self.expires_at = expires_at

    def __repr__(self) -> str:
        kind = "token" if self.token else "client-certificate" if self.client_cert_pem else "none"
        return f"Credentials({kind}, refresh_at={self.refresh_at}, expires_at={self.expires_at})"


class CredentialSource(Protocol):
    """Where credentials come from. ``fetch`` goes to the origin every time (no caching)."""

    @property
    def description(self) -> str:
        """Names the source in errors and logs (never includes secrets)."""
        ...

    async def fetch(self) -> Credentials: ...


class StaticToken:
    """A bearer token given in the configuration; never changes."""

    def __init__(self, token: str) -> None:
        self._token = token

    @property
    def description(self) -> str:
        return "static token"

    async def fetch(self) -> Credentials:
        return Credentials(token=self._token)


class TokenFile:
    """A bearer token read from a file and re-read every ``reread_interval`` seconds.

    Used for kubeconfig ``tokenFile`` and for the in-cluster service-account token (kubelet rotates
    projected tokens by swapping the file). The file is read in a worker thread.
    """

    def __init__(self, path: str | os.PathLike[str], *, reread_interval: float = 60.0) -> None:
        self.path = os.fspath(path)
        self.reread_interval = reread_interval

    @property
    def description(self) -> str:
        return f"token file {self.path}"

    async def fetch(self) -> Credentials:
        try:
            token = (await in_thread(_read_text, self.path)).strip()
        except OSError as exc:
            raise AuthenticationError(f"cannot read token file {self.path}: {exc.strerror}") from exc
        if not token:
            raise AuthenticationError(f"token file {self.path} is empty")
        return Credentials(token=token, refresh_at=anyio.current_time() + self.reread_interval)


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def refresh_margin(remaining: float) -> float:
    """How long before expiry an exec credential is refreshed: 10% of its remaining life, at most
    60 s (a one-hour token is renewed at 59 min, a two-minute token at 108 s)."""
    return min(60.0, max(remaining, 0.0) * 0.1)


class ExecPlugin:
    """A ``client.authentication.k8s.io`` exec credential plugin (``v1`` or ``v1beta1``).

    The plugin runs with ``KUBERNETES_EXEC_INFO`` set (non-interactive), its configured ``env`` on top
    of ours, and a ``timeout`` (default 60 s). It runs in a worker thread under
    ``subprocess.run(timeout=...)``: the timeout guards an external process, so it is wall-clock
    time, not loop time (a virtual test clock must not kill a plugin that is merely slow to start).
    Cancelling the caller abandons the thread; the plugin is still bounded by ``timeout``.
    Its ``ExecCredential`` may carry ``token`` or
    ``clientCertificateData``/``clientKeyData`` and an optional ``expirationTimestamp``; without
    one, the credential is cached until a 401 asks for a new one (as in client-go).
    """

    SUPPORTED_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        api_version: str = "client.authentication.k8s.io/v1",
        install_hint: str | None = None,
        cluster: dict[str, Any] | None = None,
        timeout: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if api_version not in self.SUPPORTED_API_VERSIONS:
            raise AuthenticationError(f"exec plugin apiVersion {api_version!r} is not supported")
        self.command = command
        self.args = list(args)
        self.env = dict(env or {})
        self.api_version = api_version
        self.install_hint = install_hint
        self.cluster = cluster
        self.timeout = timeout
        self._wall_clock = wall_clock

    @classmethod
    def from_kubeconfig(
        cls, exec_config: dict[str, Any], cluster: dict[str, Any] | None = None
    ) -> ExecPlugin:
        """Build from a kubeconfig ``users[].user.exec`` stanza."""
        command = exec_config.get("command")
        if not command:
            raise AuthenticationError("exec plugin has no command")
        env = {str(e["name"]): str(e.get("value", "")) for e in exec_config.get("env") or ()}
        return cls(
            str(command),
            [str(a) for a in exec_config.get("args") or ()],
            env,
            api_version=str(exec_config.get("apiVersion") or "client.authentication.k8s.io/v1"),
            install_hint=exec_config.get("installHint"),
            cluster=cluster if exec_config.get("provideClusterInfo") else None,
        )

    @property
    def description(self) -> str:
        return f"exec plugin {os.path.basename(self.command)}"

    async def fetch(self) -> Credentials:
        exec_info: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
        if self.cluster is not None:
            exec_info["spec"]["cluster"] = self.cluster
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": orjson.dumps(exec_info).decode()}

        def run() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                [self.command, *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )

        try:
            done = await in_thread(run)
        except subprocess.TimeoutExpired as exc:
            raise AuthenticationError(f"{self.description} did not finish within {self.timeout}s") from exc
        except OSError as exc:
            hint = f" ({self.install_hint})" if self.install_hint else ""
            raise AuthenticationError(f"cannot run {self.description}: {exc.strerror}{hint}") from exc
        if done.returncode != 0:
            # A plugin may quote a token in its complaint: redact what we know of.
            stderr = redact(done.stderr[:1024].decode("utf-8", "replace").strip())
            raise AuthenticationError(f"{self.description} exited with {done.returncode}: {stderr}")
        return self._parse(done.stdout)

    def _parse(self, output: bytes) -> Credentials:
        try:
            credential = orjson.loads(output)
        except orjson.JSONDecodeError as exc:
            raise AuthenticationError(f"{self.description} printed no ExecCredential JSON") from exc
        status = credential.get("status") if isinstance(credential, dict) else None
        if not isinstance(status, dict):
            raise AuthenticationError(f"{self.description} printed an ExecCredential without status")
        token = status.get("token") or None
        cert = status.get("clientCertificateData")
        key = status.get("clientKeyData")
        if not token and not (cert and key):
            raise AuthenticationError(f"{self.description} returned neither a token nor a client certificate")
        refresh_at = expires_at = None
        stamp = status.get("expirationTimestamp")
        if stamp:
            remaining = _parse_rfc3339(str(stamp), self.description) - self._wall_clock()
            now = anyio.current_time()
            expires_at = now + remaining
            refresh_at = expires_at - refresh_margin(remaining)
        return Credentials(
            token=str(token) if token else None,
            client_cert_pem=_pem(cert) if cert and key else None,
            client_key_pem=_pem(key) if cert and key else None,
            refresh_at=refresh_at,
            expires_at=expires_at,
        )


def _parse_rfc3339(stamp: str, source: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise AuthenticationError(f"{source} returned a bad expirationTimestamp {stamp!r}") from exc


def _pem(data: str) -> bytes:
    """Exec plugins return PEM text; tolerate base64-wrapped PEM too."""
    if "-----BEGIN" in data:
        return data.encode()
    return base64.b64decode(data)


class Authenticator:
    """Caches credentials from one source and refreshes them when due or when the server says 401.

    Guarantees: at most one fetch runs at a time; concurrent callers waiting on a refresh all get its
    result; :meth:`reauthenticate` refreshes only if the caller's credential is still the current
    one, so N requests failing with the same stale token cause one refresh, not N.
    """

    def __init__(self, source: CredentialSource, *, retry_interval: float = 10.0) -> None:
        self.source = source
        self.retry_interval = retry_interval
        self._current: Credentials | None = None
        self._lock = anyio.Lock()

    @property
    def current(self) -> Credentials | None:
        """The cached credential, without refreshing."""
        return self._current

    async def credentials(self) -> Credentials:
        """The credential to use now, refreshed first if its refresh point has passed."""
        current = self._current
        if current is not None and (current.refresh_at is None or anyio.current_time() < current.refresh_at):
            return current
        async with self._lock:
            current = self._current
            if current is not None and (
                current.refresh_at is None or anyio.current_time() < current.refresh_at
            ):
                return current
            return await self._refresh_locked(current)

    async def reauthenticate(self, stale: Credentials | None) -> Credentials:
        """After a 401 with ``stale``: fetch anew unless another request already replaced it."""
        async with self._lock:
            current = self._current
            if current is not None and current is not stale:
                return current
            logger.info("re-authenticating after 401 Unauthorized", extra={"source": self.source.description})
            self._current = await self.source.fetch()
            return self._current

    async def _refresh_locked(self, current: Credentials | None) -> Credentials:
        try:
            fresh = await self.source.fetch()
        except AuthenticationError as exc:
            now = anyio.current_time()
            if current is None or (current.expires_at is not None and now >= current.expires_at):
                raise
            logger.warning(
                "credential refresh failed; keeping the current credential until it expires: %s",
                exc,
                extra={"source": self.source.description},
            )
            current.refresh_at = now + self.retry_interval
            return current
        self._current = fresh
        return fresh
