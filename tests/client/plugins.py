"""Exec credential plugins and kubeconfig files written into temporary directories."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

PLUGIN = """#!{python}
import datetime, json, os, sys
counter = os.environ["PLUGIN_COUNTER"]
n = int(open(counter).read()) + 1 if os.path.exists(counter) else 1
open(counter, "w").write(str(n))
if os.environ.get("PLUGIN_FAIL"):
    sys.stderr.write("plugin is broken today\\n")
    sys.exit(3)
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False
status = {{}}
if os.environ.get("PLUGIN_CERT"):
    status["clientCertificateData"] = open(os.environ["PLUGIN_CERT"]).read()
    status["clientKeyData"] = open(os.environ["PLUGIN_KEY"]).read()
else:
    status["token"] = os.environ.get("PLUGIN_TOKEN_PREFIX", "exec-token-") + str(n)
lifetime = os.environ.get("PLUGIN_LIFETIME")
if lifetime:
    expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=float(lifetime))
    status["expirationTimestamp"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}}))
"""


def write_plugin(directory: Path) -> Path:
    path = directory / "credential-plugin"
    path.write_text(PLUGIN.format(python=sys.executable))
    path.chmod(0o755)
    return path


def plugin_calls(counter: Path) -> int:
    return int(counter.read_text()) if counter.exists() else 0


def write_kubeconfig(
    path: Path,
    *,
    server: str = "https://127.0.0.1:6443",
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    namespace: str | None = None,
    context_name: str = "test",
    extra_contexts: list[dict[str, Any]] | None = None,
    current: str | None = "test",
) -> Path:
    context: dict[str, Any] = {"cluster": f"{context_name}-cluster", "user": f"{context_name}-user"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"{context_name}-cluster", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": f"{context_name}-user", "user": user or {}}],
        "contexts": [{"name": context_name, "context": context}, *(extra_contexts or [])],
    }
    if current:
        document["current-context"] = current
    path.write_text(yaml.safe_dump(document))
    return path


def exec_env(counter: Path, **values: str) -> list[dict[str, str]]:
    env = {"PLUGIN_COUNTER": str(counter), **values}
    return [{"name": k, "value": v} for k, v in env.items()]


__all__ = ["exec_env", "plugin_calls", "write_kubeconfig", "write_plugin"]
