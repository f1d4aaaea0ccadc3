"""The control plane's credentials: serving and client CAs, certificates, service-account keys, tokens,
and the kubeconfig that uses them.

Guarantees: every file is written mode 0600; the admin user (token and client certificate) is in
``system:masters``, the limited user has no group and no bindings. Pitfall: keys are ECDSA P-256,
freshly generated per control plane (a few milliseconds each).
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kube_runtime.testing.pki import issue_certificate, key_pem, new_key, subject_name

__all__ = ["ADMIN_USER", "LIMITED_USER", "Pki", "make_pki", "write_kubeconfig"]


ADMIN_USER = "envtest-admin"
LIMITED_USER = "envtest-user"


@dataclass(frozen=True)
class Pki:
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


def make_pki(cert_dir: Path) -> Pki:
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
    return Pki(
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


def write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
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
