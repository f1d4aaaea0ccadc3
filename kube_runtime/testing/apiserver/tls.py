"""A throwaway certificate authority and serving certificate for the embedded server.

kubectl (client-go) never sends a bearer token over plain HTTP, so the server speaks TLS by
default: a CA and a certificate for ``127.0.0.1``/``localhost``/the bind host
(:mod:`kube_runtime.testing.pki`), generated in a few milliseconds at start. The kubeconfig carries the CA.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kube_runtime.testing.pki import issue_certificate, key_pem, new_key, subject_name

__all__ = ["ServingCertificates", "make_certificates"]


@dataclass(frozen=True, slots=True)
class ServingCertificates:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def server_context(self, directory: Path) -> ssl.SSLContext:
        """An SSL context serving the certificate (files are written under ``directory``)."""
        cert_file = directory / "apiserver.crt"
        key_file = directory / "apiserver.key"
        cert_file.write_bytes(self.cert_pem + self.ca_pem)
        key_file.write_bytes(self.key_pem)
        key_file.chmod(0o600)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert_file), str(key_file))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def make_certificates(host: str = "127.0.0.1") -> ServingCertificates:
    ca_key = new_key()
    ca_cert = issue_certificate(subject_name("kube-runtime-test-ca"), ca_key, None, ca=True)
    key = new_key()
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        ip = ipaddress.ip_address(host)
        if str(ip) != "127.0.0.1":
            sans.append(x509.IPAddress(ip))
    except ValueError:
        if host != "localhost":
            sans.append(x509.DNSName(host))
    cert = issue_certificate(
        subject_name("kube-apiserver"),
        key,
        (ca_cert, ca_key),
        sans=sans,
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    return ServingCertificates(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key_pem(key),
    )
