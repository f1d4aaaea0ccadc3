"""Serving certificates: a TLS context reloaded in place when its files change, and a self-signed
CA issuing serving pairs for local runs and tests.

:class:`ReloadingCertificate` serves ``cert_file``/``key_file`` (``tls.crt``/``tls.key`` of a
cert-manager Secret mounted as a volume, or any pair on disk). :meth:`~ReloadingCertificate.run`
polls the files' identity (inode, size, mtime: a Secret volume update swaps a symlink, so the
inode changes) and, on a change, reloads the pair into the **same** ``ssl.SSLContext`` with
``load_cert_chain``. OpenSSL copies the certificate into each connection when it is created, so
established connections and handshakes in progress keep the old pair and nothing is dropped; new
handshakes present the new one.

Guarantees: the pair is read once per reload into a private snapshot and checked (key matches
certificate) on a scratch context before the live context is touched, so a rotation caught half
way (new certificate, old key) never breaks the live context: it is logged, counted in
``kube_runtime_webhook_certificate_reloads_total{result="error"}``, and retried at the next poll.

Pitfall: nothing here renews certificates; the self-signed CA is for local runs and tests (a week
of validity, keys in memory).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from prometheus_client import CollectorRegistry

from kube_runtime.testing.pki import issue_certificate, key_pem, new_key, subject_name
from kube_runtime.webhooks.metrics import webhook_metrics

__all__ = ["ReloadingCertificate", "SelfSignedCA", "ServingPair"]

log = structlog.get_logger("kube_runtime.webhooks")


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


@contextlib.contextmanager
def _snapshot(cert_file: Path, key_file: Path) -> Iterator[tuple[str, str]]:
    """Copies of the pair in a private directory, read once, so both loads see the same bytes."""
    with tempfile.TemporaryDirectory(prefix="kube-runtime-tls-") as tmp:
        cert_copy, key_copy = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert_copy.write_bytes(cert_file.read_bytes())
        fd = os.open(key_copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key_file.read_bytes())
        yield str(cert_copy), str(key_copy)


class ReloadingCertificate:
    """A server ``ssl.SSLContext`` (``context``) serving the pair at ``cert_file``/``key_file``.

    Raises ``OSError``/``ssl.SSLError`` from the constructor when the initial pair cannot be
    loaded. ``generation`` counts successful loads (1 after construction).
    """

    def __init__(
        self,
        cert_file: str | os.PathLike[str],
        key_file: str | os.PathLike[str],
        *,
        poll_interval: float = 1.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self.poll_interval = poll_interval
        self.context = _server_context()
        self.generation = 0
        self._reloads = webhook_metrics(registry).certificate_reloads
        self._changed = anyio.Event()
        self._seen: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
        if not self.reload():
            raise ssl.SSLError(f"cannot load the serving pair {self.cert_file} / {self.key_file}")

    def reload(self) -> bool:
        """Load the pair now if it loads (key matching certificate); ``False`` (logged, counted)
        when it does not, leaving the live context as it was."""
        try:
            seen = (_identity(self.cert_file), _identity(self.key_file))
            with _snapshot(self.cert_file, self.key_file) as (cert, key):
                _server_context().load_cert_chain(cert, key)  # validates without touching the live one
                self.context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("serving certificate not reloaded", cert_file=str(self.cert_file), error=str(exc))
            self._reloads.labels("error").inc()
            return False
        self._seen = seen
        self.generation += 1
        self._reloads.labels("success").inc()
        self._changed.set()
        self._changed = anyio.Event()
        if self.generation > 1:
            log.info(
                "serving certificate reloaded", cert_file=str(self.cert_file), generation=self.generation
            )
        return True

    def changed_on_disk(self) -> bool:
        try:
            return (_identity(self.cert_file), _identity(self.key_file)) != self._seen
        except OSError:
            return False  # a file missing mid-rotation: look again at the next poll

    async def wait_generation(self, generation: int) -> None:
        """Return once ``generation`` loads have happened (for tests and readiness gates)."""
        while self.generation < generation:
            await self._changed.wait()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Poll the files every ``poll_interval`` seconds and reload on change, until cancelled."""
        task_status.started()
        while True:
            await anyio.sleep(self.poll_interval)
            if self.changed_on_disk():
                self.reload()


@dataclass(frozen=True)
class ServingPair:
    """Where a serving pair was written, and the CA bundle (PEM) that verifies it."""

    cert_file: Path
    key_file: Path
    ca_pem: bytes

    @property
    def ca_bundle(self) -> str:
        """``caBundle`` for a webhook configuration: the CA PEM, base64-encoded."""
        return base64.b64encode(self.ca_pem).decode()

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA."""
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


class SelfSignedCA:
    """A throwaway CA issuing serving certificates for ``hosts`` (DNS names or IP addresses)."""

    def __init__(self, name: str = "kube-runtime webhook CA") -> None:
        self._key = new_key()
        self._cert = issue_certificate(subject_name(name), self._key, None, ca=True)

    @property
    def pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, directory: str | os.PathLike[str], hosts: Sequence[str] = ("localhost", "127.0.0.1")
    ) -> ServingPair:
        """Write ``tls.crt``, ``tls.key`` and ``ca.crt`` into ``directory`` (each file replaced
        atomically, certificate first, as a Secret volume update would), replacing any pair there."""
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        key: ec.EllipticCurvePrivateKey = new_key()
        cert = issue_certificate(
            subject_name(hosts[0]),
            key,
            (self._cert, self._key),
            sans=sans,
            usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        )
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        pair = ServingPair(out / "tls.crt", out / "tls.key", self.pem)
        _write_atomically(out / "ca.crt", self.pem)
        _write_atomically(pair.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        _write_atomically(pair.key_file, key_pem(key), 0o600)
        return pair
