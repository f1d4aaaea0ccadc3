"""Where the API server is and how to authenticate to it, found the way kubectl/client-go find it.

Lookup order of :meth:`ClientConfig.infer`: an explicit kubeconfig path, then ``$KUBECONFIG``
(colon-separated files, merged), then the in-cluster service account, then ``~/.kube/config``.
(kr8s prefers any kubeconfig over in-cluster; client-go and controller-runtime do not, and neither
do we.)

Kubeconfig files are read and merged here, with client-go's rules: several files merge entry by
entry, the first file to define a context, cluster or user name wins, and relative paths resolve
against the file that defined each entry. (kr8s offers no public interface for merging or lookup,
and its merge is last-wins.) The files are read synchronously, they are small and read once at
startup; :meth:`ClientConfig.infer` reads them in a worker thread, so ``from_kubeconfig`` can stay a
plain function.

Credentials come from :mod:`kube_runtime.client.auth`'s refreshing sources (exec plugins refreshed
before ``expirationTimestamp``, ``tokenFile`` re-read, PEM data kept in memory); this module only
decides which source a configuration uses (exec plugin, then ``tokenFile``, then ``token``).

Pitfall: a ``ClientConfig`` holds secrets (token, key data, a password in the proxy URL); its
``repr`` hides them, keep it so. It is a dataclass: ``dataclasses.asdict`` and serialisers that
walk dataclasses (orjson's default) do not go through ``repr`` and show everything.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from kube_runtime._offload import in_thread
from kube_runtime.client.auth import CredentialSource, ExecPlugin, StaticToken, TokenFile
from kube_runtime.client.errors import ConfigError

__all__ = ["SERVICE_ACCOUNT_DIR", "ClientConfig"]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_SECRET_FIELDS = frozenset({"token", "client_key_data", "exec_plugin"})


@dataclass
class ClientConfig:
    """Everything a :class:`~kube_runtime.client.client.Client` needs to connect and authenticate.

    Build one with :meth:`from_kubeconfig`, :meth:`in_cluster` or ``await`` :meth:`infer`, or
    directly (``ClientConfig(server="http://127.0.0.1:8080", token="...")``). PEM ``*_data`` fields
    hold decoded PEM bytes, not base64.

    Timeouts (seconds): ``connect_timeout`` and ``write_timeout`` apply to every request (kube-rs's
    30 s / 295 s); ``read_timeout`` applies to non-streaming requests only, watches have none (the
    server ends them after ``timeoutSeconds``; idle detection belongs to the watcher);
    ``pool_timeout`` bounds the wait for a free connection. Each of those bounds one operation, so on
    their own a server or proxy sending a body a few bytes at a time, each within ``read_timeout``,
    could keep a request open for ever. ``request_timeout`` bounds every non-streaming request as a whole
    (client-go's ``rest.Config.Timeout``; kube-rs has none): the wait for a connection, connecting,
    sending, every retry and its wait, re-authentication, the headers and the whole body; past it the
    call raises :class:`~kube_runtime.client.errors.RequestTimeout` and the connection is closed.
    ``None`` removes the bound (client-go's default); watches and streaming lists never get it,
    their idle timeout guards them. The default, 90 s, is kube-apiserver's own bound on a
    non-streaming request (``--request-timeout``, 60 s from its arrival by default, queueing in
    Priority and Fairness included: past it the server answers 504, or aborts a response under way)
    plus ``connect_timeout``'s 30 s for the way there. A healthy API server has answered or given up
    by then, so the bound only cuts what is stuck, and a stall becomes an error within a minute and
    a half. Lower it for latency-sensitive callers (or per call); raise it for a server run with a
    longer ``--request-timeout``.

    At most ``max_watches`` watches hold connections of their own at once (HTTP/1.1); the pool
    holds ``max_watches + max_concurrent_requests`` connections.
    """

    server: str
    namespace: str = "default"
    token: str | None = None
    token_file: str | None = None
    token_file_reread_interval: float = 60.0
    exec_plugin: ExecPlugin | None = None
    ca_file: str | None = None
    ca_data: bytes | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    connect_timeout: float = 30.0
    write_timeout: float = 295.0
    read_timeout: float | None = 295.0
    pool_timeout: float | None = 60.0
    request_timeout: float | None = 90.0
    max_watches: int = 200
    max_concurrent_requests: int = 64
    http2: bool = False
    user_agent: str = "kube-runtime/0.1.0"
    context: str | None = None
    origin: str = field(default="explicit")

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value is not None:
                value = "<hidden>" if f.name != "exec_plugin" else value.description
            elif f.name in ("server", "proxy_url") and value:
                value = _hide_password(value)
            shown.append(f"{f.name}={value!r}")
        return f"ClientConfig({', '.join(shown)})"

    def credential_source(self) -> CredentialSource | None:
        """The configured source: exec plugin, else token file, else token, else none."""
        if self.exec_plugin is not None:
            return self.exec_plugin
        if self.token_file:
            return TokenFile(self.token_file, reread_interval=self.token_file_reread_interval)
        if self.token:
            return StaticToken(self.token)
        return None

    # -- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str] | None = None, context: str | None = None
    ) -> ClientConfig:
        """Load from kubeconfig: ``path`` (may be colon-separated), else ``$KUBECONFIG``, else
        ``~/.kube/config``; ``context`` overrides ``current-context``. Raises :class:`ConfigError`."""
        if path is None:
            path = os.environ.get("KUBECONFIG") or "~/.kube/config"
        paths = [os.path.expanduser(p) for p in os.fspath(path).split(os.pathsep) if p]
        documents: list[tuple[str, dict[str, Any]]] = []
        for p in paths:
            document = _read_kubeconfig(p, required=len(paths) == 1)
            if document is not None:
                documents.append((p, document))
        if not documents:
            raise ConfigError(f"no kubeconfig file found at {os.pathsep.join(paths)}")
        return _from_documents(documents, context)

    @classmethod
    def in_cluster(
        cls, service_account_dir: str = SERVICE_ACCOUNT_DIR, environ: Mapping[str, str] | None = None
    ) -> ClientConfig:
        """Load the pod's service account: server from ``KUBERNETES_SERVICE_HOST``/``_PORT``, the
        token file (re-read every minute), ``ca.crt`` and ``namespace``. Raises :class:`ConfigError`
        when not running in a cluster."""
        env = os.environ if environ is None else environ
        host = env.get("KUBERNETES_SERVICE_HOST")
        port = env.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise ConfigError("not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset")
        token_file = os.path.join(service_account_dir, "token")
        if not os.path.isfile(token_file):
            raise ConfigError(f"not in a cluster: no service account token at {token_file}")
        ca_file = os.path.join(service_account_dir, "ca.crt")
        namespace = "default"
        try:
            with open(os.path.join(service_account_dir, "namespace"), encoding="utf-8") as handle:
                namespace = handle.read().strip() or "default"
        except OSError:
            pass
        return cls(
            server=f"https://{_host_port(host, port)}",
            namespace=namespace,
            token_file=token_file,
            ca_file=ca_file if os.path.isfile(ca_file) else None,
            origin="in-cluster",
        )

    @classmethod
    async def infer(
        cls,
        path: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        service_account_dir: str = SERVICE_ACCOUNT_DIR,
    ) -> ClientConfig:
        """Explicit ``path`` > ``$KUBECONFIG`` > in-cluster > ``~/.kube/config``; files are read in a
        worker thread. Raises :class:`ConfigError` naming every place tried."""

        def load() -> ClientConfig:
            if path is not None:
                return cls.from_kubeconfig(path, context)
            if os.environ.get("KUBECONFIG"):
                return cls.from_kubeconfig(None, context)
            tried = []
            try:
                return cls.in_cluster(service_account_dir)
            except ConfigError as exc:
                tried.append(str(exc))
            try:
                return cls.from_kubeconfig("~/.kube/config", context)
            except ConfigError as exc:
                tried.append(str(exc))
            raise ConfigError("no cluster configuration found: " + "; ".join(tried))

        return await in_thread(load)


# -- kubeconfig ---------------------------------------------------------------------------------


def _read_kubeconfig(path: str, *, required: bool) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"kubeconfig {path} does not exist") from None
        return None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    if document is None:
        return None
    if not isinstance(document, dict):
        raise ConfigError(f"kubeconfig {path} is not a mapping")
    _resolve_relative_paths(document, os.path.dirname(os.path.abspath(path)))
    return document


_PATH_KEYS = {
    "clusters": ("cluster", ("certificate-authority",)),
    "users": ("user", ("client-certificate", "client-key", "tokenFile")),
}


def _resolve_relative_paths(document: dict[str, Any], base: str) -> None:
    """Make file references absolute against the defining file's directory (client-go rule)."""
    for section, (inner, keys) in _PATH_KEYS.items():
        for entry in document.get(section) or ():
            body = entry.get(inner) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            for key in keys:
                value = body.get(key)
                if isinstance(value, str) and value and not os.path.isabs(value):
                    body[key] = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
            exec_config = body.get("exec") if inner == "user" else None
            if isinstance(exec_config, dict):
                command = exec_config.get("command")
                if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
                    exec_config["command"] = os.path.normpath(os.path.join(base, command))


def _from_documents(documents: list[tuple[str, dict[str, Any]]], context: str | None) -> ClientConfig:
    origin = ":".join(p for p, _ in documents)
    context_name = context or next(
        (d.get("current-context") for _, d in documents if d.get("current-context")), None
    )
    if not context_name:
        raise ConfigError(f"kubeconfig {origin} has no current-context and no context was given")
    ctx = _named_entry(documents, "contexts", "context", context_name, origin)
    if not isinstance(ctx.get("cluster"), str):
        raise ConfigError(f"kubeconfig {origin}: context {context_name!r} names no cluster")
    cluster = _named_entry(documents, "clusters", "cluster", ctx["cluster"], origin)
    user = _named_entry(documents, "users", "user", ctx["user"], origin) if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise ConfigError(f"kubeconfig {origin}: cluster of context {context_name!r} has no server")
    if "username" in user or "password" in user:
        raise ConfigError("basic authentication (username/password) was removed in Kubernetes 1.19")
    if "auth-provider" in user:
        raise ConfigError("auth-provider credentials are not supported; use an exec plugin")
    exec_plugin = None
    if isinstance(user.get("exec"), dict):
        try:
            exec_plugin = ExecPlugin.from_kubeconfig(user["exec"], _cluster_info(cluster))
        except Exception as exc:
            raise ConfigError(f"kubeconfig {origin}: {exc}") from exc
    return ClientConfig(
        server=str(server).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        token=user.get("token") or None,
        token_file=user.get("tokenFile") or None,
        exec_plugin=exec_plugin,
        ca_file=cluster.get("certificate-authority") or None,
        ca_data=_pem_field(cluster, "certificate-authority-data"),
        client_cert_file=user.get("client-certificate") or None,
        client_key_file=user.get("client-key") or None,
        client_cert_data=_pem_field(user, "client-certificate-data"),
        client_key_data=_pem_field(user, "client-key-data"),
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=cluster.get("proxy-url") or None,
        context=context_name,
        origin=f"kubeconfig:{origin}",
    )


def _named_entry(
    documents: list[tuple[str, dict[str, Any]]], section: str, inner: str, name: str, origin: str
) -> dict[str, Any]:
    """The body of the first ``section`` entry called ``name`` across the files (client-go: first wins)."""
    for _, document in documents:
        for entry in document.get(section) or ():
            if isinstance(entry, dict) and entry.get("name") == name:
                body = entry.get(inner)
                if body is None:
                    return {}
                if not isinstance(body, dict):
                    raise ConfigError(f"kubeconfig {origin}: {inner} {name!r} is not a mapping")
                return body
    raise ConfigError(f"kubeconfig {origin}: no {inner} named {name!r}")


def _pem_field(entry: dict[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    if not value:
        return None
    text = str(value)
    if "-----BEGIN" in text:
        return text.encode()
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"kubeconfig field {key} is not base64") from exc


def _cluster_info(cluster: dict[str, Any]) -> dict[str, Any]:
    """The ``Cluster`` object handed to exec plugins that set ``provideClusterInfo``."""
    info: dict[str, Any] = {"server": cluster.get("server")}
    for source, target in (
        ("certificate-authority-data", "certificate-authority-data"),
        ("tls-server-name", "tls-server-name"),
        ("insecure-skip-tls-verify", "insecure-skip-tls-verify"),
        ("proxy-url", "proxy-url"),
    ):
        if cluster.get(source):
            info[target] = cluster[source]
    return info


def _host_port(host: str, port: str) -> str:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return f"{host}:{port}"
    return f"[{host}]:{port}"


def _hide_password(url: str) -> str:
    """``url`` with the password of its userinfo (``scheme://user:password@host``) hidden."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:<hidden>@{host}"
