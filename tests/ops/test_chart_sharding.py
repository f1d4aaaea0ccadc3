"""The chart's sharding values: a ring of replicas, the Lease RBAC its members and assigner need,
and the combinations it refuses. Rendered with real helm (see tests/ops/test_chart.py)."""

from __future__ import annotations

import pytest

from tests.ops.test_chart import CHART, FULLNAME, NAMESPACE, container, env, helm, render

SHARDED = ["--set", "sharding.enabled=true", "--set", "replicaCount=3"]


def test_sharding_runs_every_replica_as_a_member_of_the_ring() -> None:
    objects = render(*SHARDED)
    role = objects[("Role", f"{FULLNAME}-sharding")]
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"],
        }
    ]
    assert objects[("RoleBinding", f"{FULLNAME}-sharding")]["roleRef"]["name"] == f"{FULLNAME}-sharding"
    assert ("Role", f"{FULLNAME}-leader-election") not in objects
    deployment = objects[("Deployment", FULLNAME)]["spec"]
    assert deployment["replicas"] == 3
    assert deployment["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    args = container(objects)["args"]
    assert f"--shard-ring={FULLNAME}" in args
    assert "--leader-elect" not in args
    assert "POD_NAME" in env(objects)  # the replica's identity: its member Lease and shard label value


def test_sharding_ring_name_is_configurable() -> None:
    assert (
        "--shard-ring=generators" in container(render(*SHARDED, "--set", "sharding.ring=generators"))["args"]
    )


def test_without_sharding_there_is_no_sharding_role() -> None:
    assert ("Role", f"{FULLNAME}-sharding") not in render()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["--set", "leaderElection.enabled=true"],
            "sharding.enabled and leaderElection.enabled exclude each other",
        ),
        (["--set", "sharding.ring=" + "r" * 64], "at '/sharding/ring'"),
    ],
    ids=["with-leader-election", "ring-name-too-long"],
)
def test_unsafe_sharding_values_are_refused(values: list[str], message: str) -> None:
    proc = helm("template", "demo", str(CHART), "--namespace", NAMESPACE, *SHARDED, *values)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_helm_lint_passes_with_sharding() -> None:
    proc = helm("lint", str(CHART), *SHARDED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
