"""Fixtures for the client tests: a throwaway PKI, a private metrics registry, captured spans."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry


@dataclass
class Pki:
    directory: Path
    ca_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    other_client_cert_pem: bytes
    other_client_key_pem: bytes
    sni_server_cert_pem: bytes
    sni_server_key_pem: bytes

    def path(self, name: str) -> str:
        return str(self.directory / name)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
    ip_san: bool = True,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        assert issuer is not None
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] * ip_san
                + [x509.DNSName("kubernetes.test")]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("test-ca", ca_key, None, ca_key, ca=True)
    server_key, client_key, other_key = _key(), _key(), _key()
    server = _cert("kubernetes", server_key, ca, ca_key, server=True)
    client = _cert("alice", client_key, ca, ca_key)
    other = _cert("bob", other_key, ca, ca_key)
    sni_key = _key()
    sni_server = _cert("kubernetes", sni_key, ca, ca_key, server=True, ip_san=False)
    pem = serialization.Encoding.PEM
    pki = Pki(
        directory,
        ca.public_bytes(pem),
        server.public_bytes(pem),
        _pem_key(server_key),
        client.public_bytes(pem),
        _pem_key(client_key),
        other.public_bytes(pem),
        _pem_key(other_key),
        sni_server.public_bytes(pem),
        _pem_key(sni_key),
    )
    for name, data in {
        "ca.crt": pki.ca_pem,
        "server.crt": pki.server_cert_pem,
        "server.key": pki.server_key_pem,
        "sni-server.crt": pki.sni_server_cert_pem,
        "sni-server.key": pki.sni_server_key_pem,
        "client.crt": pki.client_cert_pem,
        "client.key": pki.client_key_pem,
        "other-client.crt": pki.other_client_cert_pem,
        "other-client.key": pki.other_client_key_pem,
    }.items():
        (directory / name).write_bytes(data)
    return pki


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@dataclass
class Traces:
    provider: TracerProvider
    exporter: InMemorySpanExporter

    def spans(self) -> list:  # type: ignore[type-arg]
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traces() -> Traces:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Traces(provider, exporter)
