"""A reflector (watcher + store) against a real kube-apiserver + etcd through the faults of production:
kube-apiserver killed mid-watch, etcd restarted, history compacted so the resumed watch gets 410,
and RBAC revoked so the relist gets 403. While a writer keeps changing ConfigMaps, the store must end
holding exactly the server's objects (same uid and resourceVersion set); the recovery time is reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest

from kube_runtime.testing.envtest import LIMITED_USER, ThreadedEnvtest
from kube_runtime.watcher import InitialListFailed
from tests.e2e.conftest import RecordProperty, RecoveryLog
from tests.e2e.harness import (
    ConfigMapWriter,
    Partition,
    ReflectorProbe,
    reflector_client,
    server_state,
    unique,
)

pytestmark = pytest.mark.envtest

RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
async def admin(fault_env: ThreadedEnvtest) -> AsyncIterator[httpx.AsyncClient]:
    async with fault_env.env.http_client(timeout=15) as http:
        yield http


@pytest.fixture
async def namespace(admin: httpx.AsyncClient) -> str:
    name = unique("e2e-faults")
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    (await admin.post("/api/v1/namespaces", json=body)).raise_for_status()
    return name


@asynccontextmanager
async def writing(admin: httpx.AsyncClient, namespace: str) -> AsyncIterator[ConfigMapWriter]:
    writer = ConfigMapWriter(admin, namespace)
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await writer.wait_for(lambda: writer.ok >= 15)
        try:
            yield writer
        finally:
            tg.cancel_scope.cancel()


def describe(probe: ReflectorProbe, writer: ConfigMapWriter) -> str:
    codes = Counter("transport" if c is None else str(c) for c in probe.error_codes())
    seen = ", ".join(f"{code} x{n}" for code, n in sorted(codes.items())) or "none"
    return f"errors: {seen}; lists: {probe.inits}; writes ok/failed: {writer.ok}/{writer.failed}"


async def converge_and_report(
    scenario: str,
    broken: float,
    repaired: float,
    admin: httpx.AsyncClient,
    namespace: str,
    probe: ReflectorProbe,
    writer: ConfigMapWriter,
    recovery_log: RecoveryLog,
    record_property: RecordProperty,
) -> float:
    """Stop the writer after 10 more successful writes, wait until the store equals the server's state,
    and report the time since the fault was repaired (``broken`` and ``repaired`` are loop times)."""
    await writer.settle(10)
    expected = await server_state(admin, namespace)
    assert expected, "the writer left no ConfigMap to compare"
    await probe.wait_for(lambda: probe.state() == expected)
    recovery = anyio.current_time() - repaired
    # Still equal once nothing moves (no late event undid it).
    assert probe.state() == await server_state(admin, namespace)
    detail = f"fault lasted {repaired - broken:.1f} s; {describe(probe, writer)}"
    record_property("recovery_seconds", round(recovery, 3))
    record_property("reflector", detail)
    print(f"\ne2e recovery: {scenario}: {recovery:.2f} s ({detail})")
    recovery_log.add(scenario, recovery, detail)
    return recovery


async def test_apiserver_killed_mid_watch(
    fault_env: ThreadedEnvtest,
    admin: httpx.AsyncClient,
    namespace: str,
    recovery_log: RecoveryLog,
    record_property: RecordProperty,
) -> None:
    env = fault_env.env
    async with (
        reflector_client(env.url, env.token, str(env.ca_path)) as client,
        ReflectorProbe.running(client, namespace) as probe,
        writing(admin, namespace) as writer,
    ):
        await probe.wait_for(lambda: probe.events >= 10)  # the watch is live
        broken = anyio.current_time()
        await fault_env.run(env.stop_apiserver, kill=True)
        await probe.wait_for(lambda: len(probe.errors) >= 1)  # its connection broke
        failed = writer.failed
        await writer.wait_for(lambda: writer.failed > failed)  # and nobody can write meanwhile
        await fault_env.run(env.start_apiserver)
        repaired = anyio.current_time()
        await converge_and_report(
            "kube-apiserver killed (SIGKILL) mid-watch, restarted",
            broken, repaired, admin, namespace, probe, writer, recovery_log, record_property,
        )  # fmt: skip
    assert probe.inits == 1, "a broken watch resumes from its resourceVersion, without relisting"


async def test_etcd_restarted(
    fault_env: ThreadedEnvtest,
    admin: httpx.AsyncClient,
    namespace: str,
    recovery_log: RecoveryLog,
    record_property: RecordProperty,
) -> None:
    env = fault_env.env
    async with (
        reflector_client(env.url, env.token, str(env.ca_path)) as client,
        ReflectorProbe.running(client, namespace) as probe,
        writing(admin, namespace) as writer,
    ):
        await probe.wait_for(lambda: probe.events >= 10)
        broken = anyio.current_time()
        await fault_env.run(env.stop_etcd)
        failed = writer.failed
        await writer.wait_for(lambda: writer.failed > failed)  # writes cannot commit without etcd
        await fault_env.run(env.start_etcd)
        repaired = anyio.current_time()
        await converge_and_report(
            "etcd restarted (SIGTERM) under a running kube-apiserver",
            broken, repaired, admin, namespace, probe, writer, recovery_log, record_property,
        )  # fmt: skip


async def test_compaction_makes_the_resumed_watch_relist(
    fault_env: ThreadedEnvtest,
    admin: httpx.AsyncClient,
    namespace: str,
    recovery_log: RecoveryLog,
    record_property: RecordProperty,
) -> None:
    """Cut off from the server, the reflector misses changes whose history is then compacted: its
    resumed watch gets 410 Gone and it relists."""
    env = fault_env.env
    async with (
        Partition(env.port).running() as partition,
        reflector_client(partition.url, env.token, str(env.ca_path)) as client,
        ReflectorProbe.running(client, namespace) as probe,
        writing(admin, namespace) as writer,
    ):
        await probe.wait_for(lambda: probe.events >= 10)
        broken = anyio.current_time()
        partition.cut()
        await probe.wait_for(lambda: len(probe.errors) >= 1)
        ok = writer.ok
        await writer.wait_for(lambda: writer.ok >= ok + 10)  # changes the reflector misses
        await fault_env.run(env.compact)
        partition.heal()
        repaired = anyio.current_time()
        await probe.wait_for(lambda: 410 in probe.error_codes())
        await converge_and_report(
            "history compacted while cut off (resumed watch: 410, relist)",
            broken, repaired, admin, namespace, probe, writer, recovery_log, record_property,
        )  # fmt: skip
    assert probe.inits >= 2


async def grant(admin: httpx.AsyncClient, namespace: str, role: str, verbs: list[str]) -> None:
    """A Role with ``verbs`` on ConfigMaps, bound to the envtest limited user."""
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs}]
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": role},
        "rules": rules,
    }
    (await admin.post(f"{RBAC}/namespaces/{namespace}/roles", json=body)).raise_for_status()
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": LIMITED_USER}],
    }
    response = await admin.post(f"{RBAC}/namespaces/{namespace}/rolebindings", json=binding)
    if response.status_code != 409:  # re-granting keeps the existing binding
        response.raise_for_status()


async def test_rbac_revoked_then_restored(
    fault_env: ThreadedEnvtest,
    admin: httpx.AsyncClient,
    namespace: str,
    recovery_log: RecoveryLog,
    record_property: RecordProperty,
) -> None:
    """The reflector runs as a token user with two Roles: get/watch, and list. The list Role is deleted,
    and the reflector, cut off meanwhile, must relist (410): its lists get 403 until the Role is
    re-created."""
    env = fault_env.env
    await grant(admin, namespace, "configmaps-watch", ["get", "watch"])
    await grant(admin, namespace, "configmaps-list", ["list"])
    async with (
        Partition(env.port).running() as partition,
        reflector_client(partition.url, env.limited_token, str(env.ca_path)) as client,
        ReflectorProbe.running(client, namespace) as probe,
        writing(admin, namespace) as writer,
    ):
        await probe.wait_for(lambda: probe.events >= 10)
        broken = anyio.current_time()
        deleted = await admin.delete(f"{RBAC}/namespaces/{namespace}/roles/configmaps-list")
        deleted.raise_for_status()
        partition.cut()
        await probe.wait_for(lambda: len(probe.errors) >= 1)
        ok = writer.ok
        await writer.wait_for(lambda: writer.ok >= ok + 10)
        await fault_env.run(env.compact)
        partition.heal()

        def forbidden_lists() -> int:
            return sum(
                1
                for err, code in zip(probe.errors, probe.error_codes(), strict=True)
                if isinstance(err, InitialListFailed) and code == 403
            )

        await probe.wait_for(lambda: forbidden_lists() >= 2)  # refused, and refused again on retry
        await grant(admin, namespace, "configmaps-list", ["list"])
        repaired = anyio.current_time()
        await converge_and_report(
            "RBAC list permission revoked (lists 403), then restored",
            broken, repaired, admin, namespace, probe, writer, recovery_log, record_property,
        )  # fmt: skip
    assert 410 in probe.error_codes()
