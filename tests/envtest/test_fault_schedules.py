"""The randomized Controller fault schedules against a real kube-apiserver + etcd (envtest).

Only the faults a real control plane supports run here (see ``EnvtestCluster``): kube-apiserver
stopped and started again, and etcd compaction (the API server runs without its watch cache, so a
watch resumed from before the compaction gets 410 Gone and the controller relists). Other fault
steps of a schedule are skipped and counted. Writes go through an admin client of their own; the
controller gets its own client.

Needs the binaries of scripts/build-envtest.sh: skipped (naming them) without them, a failure with
``KUBE_RUNTIME_REQUIRE_ENVTEST`` set. More seeds: ``KUBE_RUNTIME_ENVTEST_FAULT_SCHEDULES=20``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Client, ClientConfig
from kube_runtime.testing.clusters import EnvtestCluster
from kube_runtime.testing.controller_harness import check_controller
from kube_runtime.testing.envtest import ThreadedEnvtest, locate_or_skip
from kube_runtime.testing.schedules import (
    Compact,
    Pause,
    Schedule,
    StartServing,
    Step,
    StopServing,
    Update,
    random_schedule,
)
from tests.controller.mirror_spec import MIRROR

pytestmark = [pytest.mark.envtest, pytest.mark.anyio, pytest.mark.timeout(600)]

SEEDS = int(os.environ.get("KUBE_RUNTIME_ENVTEST_FAULT_SCHEDULES", "2"))


@pytest.fixture
def plane() -> Iterator[ThreadedEnvtest]:
    """A fresh control plane without the watch cache (resumed watches go to etcd: compaction 410s)."""
    with ThreadedEnvtest(locate_or_skip(), watch_cache=False) as hosted:
        yield hosted


def client_for(hosted: ThreadedEnvtest) -> Client:
    env = hosted.env
    config = ClientConfig(server=env.url, token=env.token, ca_file=str(env.ca_path), connect_timeout=5.0)
    return Client(config, metrics_registry=CollectorRegistry())


async def run(hosted: ThreadedEnvtest, schedule: Schedule) -> None:
    async with client_for(hosted) as admin, client_for(hosted) as client:
        cluster = EnvtestCluster(hosted, admin, client, "default")
        report = await check_controller(cluster, MIRROR, schedule, settle_timeout=60.0)
    print(f"\n{schedule.describe()}\n{report.summary()}")


async def test_restart_and_compaction_on_a_real_apiserver(plane: ThreadedEnvtest) -> None:
    """Settled on 100 objects; changes; kube-apiserver stopped, etcd compacted, started again (the
    resumed watches get 410 and relist); more changes."""
    steps: tuple[Step, ...] = (
        *(Update(i, "before") for i in range(0, 100, 9)),
        Pause(1.0),
        StopServing(),
        Compact(),
        StartServing(),
        Pause(3.0),
        *(Update(i, "after") for i in range(0, 100, 7)),
        Pause(1.0),
    )
    await run(plane, Schedule("paged", 50, 100, steps, settle_first=True))


@pytest.mark.parametrize("seed", range(SEEDS))
async def test_random_schedule_on_a_real_apiserver(plane: ThreadedEnvtest, seed: int) -> None:
    """A seeded schedule on 50 objects; its embedded-only faults are skipped."""
    await run(plane, random_schedule(seed, large_every=1, large_objects=50, max_steps=12))
