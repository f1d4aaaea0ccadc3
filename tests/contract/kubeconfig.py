"""A tiny kubeconfig reader for the contract suite (server URL, token, CA, client certificate).

Deliberately independent of ``kube_runtime.client`` so the suite checks the server, not our client.
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ContractTarget", "read_kubeconfig"]


@dataclass
class ContractTarget:
    """Where the suite sends requests: base URL, auth headers and TLS settings."""

    name: str
    base_url: str
    headers: dict[str, str]
    verify: ssl.SSLContext | bool
    cert: tuple[str, str] | None = None
    embedded: Any = None
    kubeconfig_path: Path | None = None  # the file read (for clients such as kubectl)
    _files: list[Any] = field(default_factory=list)

    def client_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base_url": self.base_url, "headers": self.headers, "verify": self.verify}
        if self.cert is not None:
            out["cert"] = self.cert
        return out


def _data(entry: dict[str, Any], key: str) -> bytes | None:
    data = entry.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = entry.get(key)
    if path:
        return Path(path).read_bytes()
    return None


def read_kubeconfig(path: str | Path, name: str = "kubeconfig") -> ContractTarget:
    """Read the current context of a kubeconfig file."""
    doc = yaml.safe_load(Path(path).read_text())
    context_name = doc.get("current-context")
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or ()}
    context = contexts.get(context_name) or next(iter(contexts.values()))
    cluster = {c["name"]: c["cluster"] for c in doc.get("clusters") or ()}[context["cluster"]]
    user = {u["name"]: u["user"] for u in doc.get("users") or ()}.get(context.get("user"), {}) or {}
    headers: dict[str, str] = {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    verify: ssl.SSLContext | bool = True
    if cluster.get("insecure-skip-tls-verify"):
        verify = False
    else:
        ca = _data(cluster, "certificate-authority")
        if ca is not None:
            verify = ssl.create_default_context(cadata=ca.decode())
    target = ContractTarget(name, str(cluster["server"]).rstrip("/"), headers, verify)
    target.kubeconfig_path = Path(path)
    cert = _data(user, "client-certificate")
    key = _data(user, "client-key")
    if cert is not None and key is not None:
        # Kept open (and so on disk) for the target's lifetime: httpx and ssl want file paths.
        cert_file = tempfile.NamedTemporaryFile(suffix=".crt")  # noqa: SIM115
        key_file = tempfile.NamedTemporaryFile(suffix=".key")  # noqa: SIM115
        cert_file.write(cert)
        key_file.write(key)
        cert_file.flush()
        key_file.flush()
        target._files += [cert_file, key_file]
        target.cert = (cert_file.name, key_file.name)
        if isinstance(verify, ssl.SSLContext):
            verify.load_cert_chain(cert_file.name, key_file.name)
    return target
