"""``ApiServer``: the embedded Kubernetes API server as an async context manager.

``async with ApiServer() as server`` serves the Kubernetes REST protocol on an ephemeral port on
127.0.0.1 with bearer-token auth, writes a kubeconfig for it, and (when ``kube_runtime.client`` is
available) opens a ready ``Client``. Everything it runs (listener, connections, garbage
collector, bookmark ticker, load generators) belongs to its task group and stops on exit.

Pitfalls: it must be entered and exited by the same task (it owns a task group). Objects returned
by :meth:`ApiServer.objects` are copies; change the server's state through the API (or
``server.ops``), never by mutating stored objects.
"""

from __future__ import annotations

import base64
import functools
import gc
import os
import secrets
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import orjson
import yaml

from kube_runtime.testing.apiserver.app import ApiApp, ServerSettings
from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.events import is_events_v1, to_events_v1
from kube_runtime.testing.apiserver.faults import Faults
from kube_runtime.testing.apiserver.gc import GarbageCollector
from kube_runtime.testing.apiserver.httpserver import HttpServer, Request, Response
from kube_runtime.testing.apiserver.loadgen import LoadGenerator
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.resources import CORE_EVENTS, ResourceType
from kube_runtime.testing.apiserver.settings import WatchListMode
from kube_runtime.testing.apiserver.status import StatusError, bad_request
from kube_runtime.testing.apiserver.storage import Storage
from kube_runtime.testing.apiserver.tls import ServingCertificates, make_certificates

__all__ = ["ApiServer"]

_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def kubeconfig_document(
    url: str, token: str, ca_pem: bytes | None = None, namespace: str = "default"
) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all named ``kube-runtime``."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-runtime", "cluster": cluster}],
        "users": [{"name": "kube-runtime", "user": {"token": token}}],
        "contexts": [
            {
                "name": "kube-runtime",
                "context": {"cluster": "kube-runtime", "user": "kube-runtime", "namespace": namespace},
            }
        ],
        "current-context": "kube-runtime",
        "preferences": {},
    }


class ApiServer:
    """An in-process Kubernetes API server for tests, demos and benchmarks.

    Parameters mirror kube-apiserver knobs where one exists: ``history_size`` is the number of
    events kept per resource for watch resumption (older resourceVersions get 410),
    ``bookmark_interval`` the period of BOOKMARK events on watches that allow them,
    ``watch_queue_size`` how far a watcher may fall behind before it is closed with a 410,
    ``watch_list`` whether streaming lists (``sendInitialEvents``) are served (``"on"``), refused as
    by kube-apiserver with its ``WatchList`` gate off (``"off"``), or ignored as by a server older
    than the parameter (``"ignored"``; see :data:`~kube_runtime.testing.apiserver.settings.WatchListMode`).
    It can be changed while the server runs (``server.settings.watch_list``).

    For benchmarks (the CLI sets both): ``monitor_stalls`` measures how late the server's event
    loop wakes up (``stats()["loopStalls"]``: a stalled server delays every watch event, which a
    client would otherwise be blamed for); ``freeze_after_load`` runs ``gc.collect(); gc.freeze()``
    after each admin bulk creation, so the server's own collector does not pause over the loaded
    objects. ``gc.freeze`` is process-wide: leave it off when clients share the process.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        kubeconfig_path: str | os.PathLike[str] | None = None,
        history_size: int = 10_000,
        bookmark_interval: float = 60.0,
        watch_queue_size: int = 100_000,
        default_watch_timeout: float = 1800.0,
        watch_list: WatchListMode = "on",
        create_client: bool = True,
        system_namespaces: bool = True,
        tls: bool = True,
        monitor_stalls: bool = False,
        freeze_after_load: bool = False,
    ) -> None:
        self.host = host
        self._monitor_stalls = monitor_stalls
        self._freeze_after_load = freeze_after_load
        self._stall_max = 0.0
        self._stalls_over_10ms = 0
        self.tls = tls
        self._certs: ServingCertificates | None = make_certificates(host) if tls else None
        self._requested_port = port
        self.token = token or secrets.token_urlsafe(24)
        self._kubeconfig_arg = Path(kubeconfig_path) if kubeconfig_path is not None else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.kubeconfig_path: Path = Path()
        self.settings = ServerSettings(
            bookmark_interval=bookmark_interval,
            watch_queue_size=watch_queue_size,
            default_watch_timeout=default_watch_timeout,
            watch_list=watch_list,
        )
        self.storage = Storage(history_size=history_size)
        self.registry = Registry()
        self.ops = ObjectOps(self.storage, self.registry)
        self.gc = GarbageCollector(self.storage, self.registry, self.ops)
        self.load = LoadGenerator(self.ops)
        self.faults = Faults(self.storage, stop_serving=self._stop_serving, start_serving=self._start_serving)
        self.app = ApiApp(
            storage=self.storage,
            registry=self.registry,
            ops=self.ops,
            faults=self.faults,
            settings=self.settings,
            token=lambda: self.token,
            address=lambda: f"{self.host}:{self.port}",
            admin=self._admin,
        )
        self._http: HttpServer | None = None
        self._watch_started = anyio.Event()
        self.app.on_watch = self._watch_registered
        self._create_client = create_client
        self._client: Any = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._state_dir: tempfile.TemporaryDirectory[str] | None = None
        self._ca_path: Path | None = None
        self._serve_scope: anyio.CancelScope | None = None
        self._serving_done: anyio.Event | None = None
        self.port = 0
        self._cpu_start = time.process_time()
        if system_namespaces:
            ns_type = self.registry.lookup("", "v1", "namespaces")
            assert ns_type is not None
            for name in _SYSTEM_NAMESPACES:
                self.ops.create(
                    ns_type, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )

    # Lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The PEM of the CA that signed the serving certificate (None without TLS)."""
        return self._certs.ca_pem if self._certs is not None else None

    @property
    def ca_path(self) -> Path | None:
        """A file holding :attr:`ca_pem` (next to the kubeconfig), for clients that want a path."""
        return self._ca_path

    @property
    def client(self) -> Any:
        """A ready ``kube_runtime.client.Client`` for this server (closed when the server exits)."""
        if self._client is None:
            raise RuntimeError(
                "ApiServer.client is unavailable: kube_runtime.client.Client could not be imported or "
                "create_client=False was passed"
            )
        return self._client

    async def __aenter__(self) -> ApiServer:
        self._state_dir = tempfile.TemporaryDirectory(prefix="kube-runtime-apiserver-state-")
        ssl_context = None
        if self._certs is not None:
            state = Path(self._state_dir.name)
            ssl_context = self._certs.server_context(state)
            self._ca_path = state / "ca.crt"
            self._ca_path.write_bytes(self._certs.ca_pem)
        self._http = HttpServer(self.app.handle, ssl_context)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            self.port = await tg.start(self._serve, self._requested_port)
            tg.start_soon(self.gc.run)
            tg.start_soon(self._bookmark_ticker)
            if self._monitor_stalls:
                tg.start_soon(self._stall_monitor)
            self._write_kubeconfig()
            if self._create_client:
                self._client = await self._open_client()
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            self._cleanup_files()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            if self._client is not None:
                with anyio.CancelScope(shield=True):
                    await self._client.aclose()
                self._client = None
            assert self._tg is not None
            self.faults.close_watches()
            self._tg.cancel_scope.cancel()
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._tg = None
            self._cleanup_files()

    async def _open_client(self) -> Any:
        try:
            from kube_runtime.client import Client  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            try:
                from kube_runtime.client.client import Client  # type: ignore[no-redef,import-not-found,unused-ignore]
            except ImportError:
                return None
        client = Client.from_kubeconfig(str(self.kubeconfig_path))
        if hasattr(client, "__await__"):
            client = await client
        return client

    def _write_kubeconfig(self) -> None:
        if self._kubeconfig_arg is not None:
            path = self._kubeconfig_arg
        else:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="kube-runtime-apiserver-")
            path = Path(self._tmpdir.name) / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        doc = kubeconfig_document(self.url, self.token, self.ca_pem)
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        os.chmod(tmp, 0o600)
        tmp.replace(path)
        self.kubeconfig_path = path

    def _cleanup_files(self) -> None:
        if self._state_dir is not None:
            self._state_dir.cleanup()
            self._state_dir = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def _serve(
        self, port: int, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        done = anyio.Event()
        self._serving_done = done
        try:
            with anyio.CancelScope() as scope:
                self._serve_scope = scope
                assert self._http is not None
                await self._http.serve(self.host, port, task_status=task_status)
        finally:
            self._serve_scope = None
            done.set()

    async def _stop_serving(self) -> None:
        scope, done = self._serve_scope, self._serving_done
        if scope is None or done is None:
            return
        scope.cancel()
        await done.wait()

    async def _start_serving(self) -> None:
        if self._serve_scope is not None:
            return
        if self._tg is None:
            raise RuntimeError("the server is not running")
        await self._tg.start(self._serve, self.port)

    async def _bookmark_ticker(self) -> None:
        while True:
            await anyio.sleep(self.settings.bookmark_interval)
            if self.faults.bookmarks_paused:
                continue
            rv = self.storage.rv
            for coll in list(self.storage.collections.values()):
                for watcher in list(coll.watchers):
                    watcher.offer_bookmark(rv)

    async def _stall_monitor(self, period: float = 0.005) -> None:
        while True:
            due = anyio.current_time() + period
            await anyio.sleep(period)
            late = anyio.current_time() - due
            if late > self._stall_max:
                self._stall_max = late
            if late > 0.010:
                self._stalls_over_10ms += 1

    # Test helpers ----------------------------------------------------------------------------

    def resource_type(self, resource: Any) -> ResourceType:
        """Resolve an ``ApiResource``, ``"configmaps"``, ``"deployments.apps"`` or a ResourceType."""
        if isinstance(resource, ResourceType):
            return resource
        if hasattr(resource, "group") and hasattr(resource, "plural"):
            found = self.registry.by_storage_key((resource.group, resource.plural))
        elif isinstance(resource, str):
            plural, _, group = resource.partition(".")
            found = self.registry.by_storage_key((group, plural))
            if found is None and "/" in resource:
                parts = resource.strip("/").split("/")
                group, plural = ("" if len(parts) == 2 else parts[0]), parts[-1]
                found = self.registry.by_storage_key((group, plural))
        else:
            found = None
        if found is None:
            raise KeyError(f"unknown resource {resource!r}")
        return found

    def objects(self, resource: Any, namespace: str | None = None) -> list[dict[str, Any]]:
        """The server's current objects of ``resource`` (copies), sorted by namespace and name."""
        rtype = self.resource_type(resource)
        coll = self.storage.collections.get(_stored_as(rtype).storage_key)
        if coll is None:
            return []
        found = [
            coll.objects[k].copy_obj() for k in coll.sorted_keys() if namespace is None or k[0] == namespace
        ]
        return [to_events_v1(o) for o in found] if is_events_v1(rtype) else found

    def watch_count(self, resource: Any = None) -> int:
        """How many watches are open (on ``resource``, or on anything)."""
        if resource is not None:
            coll = self.storage.collections.get(_stored_as(self.resource_type(resource)).storage_key)
            return len(coll.watchers) if coll is not None else 0
        return sum(len(c.watchers) for c in self.storage.collections.values())

    async def wait_for_watches(self, count: int = 1, resource: Any = None) -> None:
        """Wait until at least ``count`` watches are open (so a test knows a client is watching)."""
        while self.watch_count(resource) < count:
            await self._watch_started.wait()

    def _watch_registered(self) -> None:
        event, self._watch_started = self._watch_started, anyio.Event()
        event.set()

    def cpu_seconds(self) -> float:
        """CPU seconds of this process since start (the server's own cost when run by the CLI)."""
        return time.process_time() - self._cpu_start

    def stats(self) -> dict[str, Any]:
        watchers = sum(len(c.watchers) for c in self.storage.collections.values())
        return {
            "cpuSeconds": self.cpu_seconds(),
            "resourceVersion": self.storage.rv,
            "requests": self.app.requests,
            "watchers": watchers,
            "objects": {
                (f"{k[1]}.{k[0]}" if k[0] else k[1]): len(c.objects)
                for k, c in self.storage.collections.items()
            },
            "churns": [c.as_dict() for c in self.load.churns],
            **(
                {"loopStalls": {"maxSeconds": self._stall_max, "over10ms": self._stalls_over_10ms}}
                if self._monitor_stalls
                else {}
            ),
        }

    # Admin endpoint (same token) -------------------------------------------------------------

    async def _admin(self, request: Request, parts: list[str]) -> Response:
        op = "/".join(parts)
        body: dict[str, Any] = {}
        if request.body:
            try:
                decoded = orjson.loads(request.body)
            except orjson.JSONDecodeError as exc:
                return _err(bad_request(f"invalid JSON: {exc}"))
            if not isinstance(decoded, dict):
                return _err(bad_request("the admin request body must be an object"))
            body = decoded
        try:
            result = await self._admin_op(request.method, op, body)
        except StatusError as exc:
            return _err(exc)
        except (KeyError, ValueError, TypeError) as exc:
            return _err(bad_request(f"bad admin request: {exc}"))
        return Response(200, orjson.dumps(result), "application/json")

    async def _admin_op(self, method: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        faults = self.faults
        if op == "stats" and method == "GET":
            return self.stats()
        if method != "POST":
            raise StatusError(405, "MethodNotAllowed", f"use POST for /admin/{op}")
        if op == "close-watches":
            return {"closed": faults.close_watches()}
        if op == "fail":
            retry = body.get("retryAfter")
            faults.fail_next(
                int(body.get("count", 1)),
                int(body.get("code", 503)),
                retry_after=None if retry is None else int(retry),
            )
            return {}
        if op == "latency":
            faults.set_latency(float(body.get("seconds", 0.0)))
            return {}
        if op == "compact":
            return {"resourceVersion": str(faults.compact())}
        if op == "expire-token":
            faults.expire_token()
            return {}
        if op == "restore-token":
            faults.restore_token()
            return {}
        if op == "reset":
            faults.reset()
            return {}
        if op == "restart":
            down = float(body.get("downSeconds", 0.5))
            assert self._tg is not None
            self._tg.start_soon(self._restart_after_reply, down)
            return {"downSeconds": down}
        if op == "bulk-create":
            rtype = self.resource_type(body["resource"])
            created = await self.load.bulk_create(
                rtype,
                body.get("namespace"),
                int(body["count"]),
                template=body.get("template"),
                size=int(body.get("size", 1024)),
                name_prefix=str(body.get("namePrefix", "obj-")),
                labels=body.get("labels"),
            )
            if self._freeze_after_load:
                gc.collect()
                gc.freeze()
            return {"created": created, "resourceVersion": str(self.storage.rv)}
        if op == "churn":
            rtype = self.resource_type(body["resource"])
            assert self._tg is not None
            self._tg.start_soon(
                self._run_churn,
                rtype,
                body.get("namespace"),
                int(body["count"]),
                float(body.get("rate", 0.0)),
                body.get("namePrefix"),
            )
            return {"started": True, "index": len(self.load.churns)}
        if op == "lifecycle":
            rtype = self.resource_type(body["resource"])
            assert self._tg is not None
            self._tg.start_soon(
                functools.partial(
                    self.load.lifecycle,
                    rtype,
                    body.get("namespace"),
                    int(body["count"]),
                    rate=float(body["rate"]),
                    linger=int(body.get("linger", 0)),
                    name_prefix=str(body.get("namePrefix", "cycle-")),
                )
            )
            return {"started": True, "index": len(self.load.churns)}
        if op == "reset-cpu":
            self._cpu_start = time.process_time()
            return {}
        if op == "reset-stalls":
            self._stall_max, self._stalls_over_10ms = 0.0, 0
            return {}
        raise StatusError(404, "NotFound", f"unknown admin operation {op!r}")

    async def _run_churn(
        self,
        rtype: ResourceType,
        namespace: str | None,
        count: int,
        rate: float,
        name_prefix: str | None = None,
    ) -> None:
        await self.load.churn(rtype, namespace, count, rate=rate, name_prefix=name_prefix)

    async def _restart_after_reply(self, down: float) -> None:
        await anyio.sleep(0.05)  # let the admin reply go out first
        await self.faults.stop_serving()
        await anyio.sleep(down)
        await self.faults.start_serving()


def _err(err: StatusError) -> Response:
    return Response(err.code, orjson.dumps(err.status()), "application/json")


def _stored_as(rtype: ResourceType) -> ResourceType:
    """The type whose collection holds ``rtype``'s objects (events.k8s.io/v1 Events are core/v1 ones)."""
    return CORE_EVENTS if is_events_v1(rtype) else rtype
