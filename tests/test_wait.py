"""await_condition, the conditions and delete_and_finalize: the conditions as pure functions
(hypothesis for the combinators) and the waits against the embedded API server, including
the resilience kube-rs lacks (errors retried with backoff, a timeout)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kube_runtime.client import Api, ApiResource
from kube_runtime.wait import (
    ConditionTimeout,
    DeleteFailed,
    WaitCondition,
    await_condition,
    conditions,
    delete_and_finalize,
    is_crd_established,
    is_created,
    is_deleted,
    is_deployment_completed,
    is_ingress_provisioned,
    is_job_completed,
    is_pod_running,
    is_service_loadbalancer_provisioned,
)
from kube_runtime.watcher import ExponentialBackoff

CONFIGMAP = ApiResource.builtin("ConfigMap")
POD = ApiResource.builtin("Pod")
DEPLOYMENT = ApiResource.builtin("Deployment")
CRD = ApiResource.builtin("CustomResourceDefinition")
FAST_BACKOFF = {"backoff": ExponentialBackoff(0.01, 0.05, jitter=False)}


def status(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "x", "uid": "u1"}, "status": fields}


def cond(type_: str, status_: str = "True", reason: str | None = None) -> dict[str, Any]:
    return {"type": type_, "status": status_, **({"reason": reason} if reason else {})}


# -- conditions as functions ---------------------------------------------------------------------


def test_conditions_on_object_states() -> None:
    assert is_deleted("u1")(None)
    assert not is_deleted("u1")(status())
    assert is_deleted("u1")({"metadata": {"uid": "u2"}})  # recreated under the same name
    assert is_created()(status())
    assert not is_created()(None)
    assert is_crd_established()(status(conditions=[cond("NamesAccepted"), cond("Established")]))
    assert not is_crd_established()(status(conditions=[cond("Established", "False")]))
    assert not is_crd_established()(None)
    assert is_pod_running()(status(phase="Running"))
    assert not is_pod_running()(status(phase="Pending"))
    assert not is_pod_running()(None)
    assert is_job_completed()(status(conditions=[cond("Complete")]))
    assert not is_job_completed()(status(conditions=[cond("Failed")]))
    assert is_deployment_completed()(
        status(conditions=[cond("Progressing", reason="NewReplicaSetAvailable")])
    )
    assert not is_deployment_completed()(status(conditions=[cond("Progressing", reason="ReplicaSetUpdated")]))
    assert not is_deployment_completed()(
        status(conditions=[cond("Progressing", "False", reason="NewReplicaSetAvailable")])
    )
    cluster_ip = {"spec": {"type": "ClusterIP"}}
    lb = {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}
    lb_pending = {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{}]}}}
    assert is_service_loadbalancer_provisioned()(cluster_ip)
    assert is_service_loadbalancer_provisioned()(lb)
    assert not is_service_loadbalancer_provisioned()(lb_pending)
    assert not is_service_loadbalancer_provisioned()({"spec": {"type": "LoadBalancer"}})
    ingress = {"status": {"loadBalancer": {"ingress": [{"hostname": "a.example.com"}]}}}
    assert is_ingress_provisioned()(ingress)
    assert not is_ingress_provisioned()({"status": {}})
    assert conditions.is_pod_running()(status(phase="Running"))


states = st.one_of(
    st.none(),
    st.builds(
        lambda uid, phase: {"metadata": {"uid": uid}, "status": {"phase": phase}},
        st.sampled_from(["u1", "u2"]),
        st.sampled_from(["Running", "Pending"]),
    ),
)
atoms = st.sampled_from(
    [is_created(), is_deleted("u1"), is_pod_running(), WaitCondition(lambda o: True, "true")]
)


@given(state=states, a=atoms, b=atoms)
def test_property_combinators_are_boolean_logic(
    state: dict[str, Any] | None, a: WaitCondition, b: WaitCondition
) -> None:
    assert (~a)(state) == (not a(state)) == a.not_()(state)
    assert (a & b)(state) == (a(state) and b(state)) == a.and_(b)(state)
    assert (a | b)(state) == (a(state) or b(state)) == a.or_(b)(state)
    assert a.matches_object(state) == a(state)
    assert "not(" in repr(~a)


# -- waits against the embedded API server --------------------------------------------------------


class Background:
    """A wait running in a task group: ``result`` or ``error`` once ``done`` fires."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: Any = None
        self.error: Exception | None = None

    async def finished(self, seconds: float = 10) -> None:
        with anyio.fail_after(seconds):
            await self.done.wait()


async def wait_in_background(wait: Callable[[], Awaitable[Any]], tg: Any) -> Background:
    box = Background()

    async def run() -> None:
        try:
            box.result = await wait()
        except Exception as exc:
            box.error = exc
        box.done.set()

    tg.start_soon(run)
    return box


async def test_is_created_waits_for_creation(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(lambda: await_condition(api, "later", is_created(), timeout=10), tg)
        await api_server.wait_for_watches(1)
        assert not box.done.is_set()
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}})
        await box.finished()
    assert box.result["metadata"]["name"] == "later"


async def test_already_true_returns_at_once(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "here"}})
    found = await await_condition(api, "here", is_created(), timeout=5)
    assert found is not None
    assert found["metadata"]["name"] == "here"
    assert await await_condition(api, "absent", is_deleted("anything"), timeout=5) is None


async def test_is_deleted_waits_for_that_uid(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    obj = await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone"}})
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(
            lambda: await_condition(api, "gone", is_deleted(obj["metadata"]["uid"]), timeout=10), tg
        )
        await api_server.wait_for_watches(1)
        await api.patch("gone", {"data": {"still": "here"}})
        await anyio.sleep(0.05)
        assert not box.done.is_set()
        await api.delete("gone")
        await box.finished()
    assert box.error is None
    assert box.result is None


async def test_pod_running(api_server: Any) -> None:
    api = Api(api_server.client, POD, "default")
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
    )
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(lambda: await_condition(api, "p", is_pod_running(), timeout=10), tg)
        await api.patch_status("p", {"status": {"phase": "Pending"}})
        await api.patch_status("p", {"status": {"phase": "Running"}})
        await box.finished()
    assert box.result["status"]["phase"] == "Running"


async def test_deployment_completed(api_server: Any) -> None:
    api = Api(api_server.client, DEPLOYMENT, "default")
    await api.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}})
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(
            lambda: await_condition(api, "d", is_deployment_completed(), timeout=10), tg
        )
        await api.patch_status(
            "d", {"status": {"conditions": [cond("Progressing", reason="ReplicaSetUpdated")]}}
        )
        await api.patch_status(
            "d", {"status": {"conditions": [cond("Progressing", reason="NewReplicaSetAvailable")]}}
        )
        await box.finished()
    assert box.error is None
    assert box.result is not None


def crd_body(group: str, kind: str, plural: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                    "subresources": {"status": {}},
                }
            ],
        },
    }


async def test_crd_established_and_job_completed(api_server: Any) -> None:
    crds = Api(api_server.client, CRD)
    body = crd_body("batch.test.io", "Job", "jobs")
    await crds.create(body)
    established = await await_condition(crds, "jobs.batch.test.io", is_crd_established(), timeout=10)
    assert established is not None

    jobs = Api(api_server.client, ApiResource("batch.test.io", "v1", "Job", "jobs"), "default")
    await jobs.create({"apiVersion": "batch.test.io/v1", "kind": "Job", "metadata": {"name": "j"}})
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(lambda: await_condition(jobs, "j", is_job_completed(), timeout=10), tg)
        await jobs.patch_status("j", {"status": {"conditions": [cond("Complete", "False")]}})
        await jobs.patch_status("j", {"status": {"conditions": [cond("Complete")]}})
        await box.finished()
    assert box.result["status"]["conditions"] == [cond("Complete")]


async def test_combinators_over_http(api_server: Any) -> None:
    api = Api(api_server.client, POD, "default")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "q"},
        "spec": {"containers": [{"name": "c"}]},
    }
    await api.create(pod)
    uid = (await api.get("q"))["metadata"]["uid"]
    # Running, or gone: whichever comes first.
    either = is_pod_running() | is_deleted(uid)
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(lambda: await_condition(api, "q", either, timeout=10), tg)
        await api.delete("q")
        await box.finished()
    assert box.result is None


async def test_timeout_reports_the_last_state(api_server: Any) -> None:
    api = Api(api_server.client, POD, "default")
    await api.create(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"}, "spec": {"containers": []}}
    )
    with pytest.raises(ConditionTimeout) as raised:
        await await_condition(api, "slow", is_pod_running(), timeout=0.3)
    assert raised.value.last_seen is not None
    assert raised.value.last_seen["metadata"]["name"] == "slow"
    assert isinstance(raised.value, TimeoutError)
    assert "present" in str(raised.value)


async def test_watch_errors_are_retried_not_fatal(api_server: Any) -> None:
    """kube-rs returns ProbeFailed on the first watcher error; here the wait rides through failures."""
    api = Api(api_server.client, CONFIGMAP, "default")
    api_server.faults.fail_next(3, 500)
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(
            lambda: await_condition(api, "eventually", is_created(), timeout=10, **FAST_BACKOFF), tg
        )
        await api_server.wait_for_watches(1)
        api_server.faults.close_watches()
        await api_server.wait_for_watches(1)
        api_server.faults.compact()
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "eventually"}})
        await box.finished()
    assert box.error is None
    assert box.result["metadata"]["name"] == "eventually"


async def test_persistent_errors_end_in_a_timeout_naming_the_error(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    api_server.faults.fail_next(10_000, 500)
    with pytest.raises(ConditionTimeout) as raised:
        await await_condition(api, "never", is_created(), timeout=0.5, **FAST_BACKOFF)
    assert raised.value.last_error is not None
    assert "500" in str(raised.value.last_error)
    assert "never observed" in str(raised.value)


async def test_delete_and_finalize_waits_for_finalizers(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        }
    )
    async with anyio.create_task_group() as tg:
        box = await wait_in_background(lambda: delete_and_finalize(api, "held", timeout=10), tg)
        await api_server.wait_for_watches(1)
        await anyio.sleep(0.05)
        assert not box.done.is_set()
        held = await api.get("held")
        assert held["metadata"]["deletionTimestamp"]
        await api.patch("held", {"metadata": {"finalizers": None}})
        await box.finished()
    assert box.error is None
    assert await api.get_opt("held") is None


async def test_delete_and_finalize_without_finalizers_uses_the_status_uid(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "quick"}})
    with anyio.fail_after(10):
        await delete_and_finalize(api, "quick", timeout=5)
    assert await api.get_opt("quick") is None


async def test_delete_and_finalize_errors(api_server: Any) -> None:
    api = Api(api_server.client, CONFIGMAP, "default")
    with pytest.raises(DeleteFailed) as raised:
        await delete_and_finalize(api, "missing", timeout=5)
    assert getattr(raised.value.error, "code", None) == 404

    await api.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "stuck", "finalizers": ["example.com/hold"]},
        }
    )
    with pytest.raises(ConditionTimeout):
        await delete_and_finalize(api, "stuck", timeout=0.3)
    assert (await api.get("stuck"))["metadata"]["deletionTimestamp"]
