"""The leader-election doubles: ManualElector's term, lease_held's hold and release."""

from __future__ import annotations

import anyio
import pytest

from kube_runtime.leader import LeaderElectionLost, LeaderElector
from kube_runtime.testing.leadership import ManualElector, lease_held
from kube_runtime.testing.server import ApiServer

pytestmark = pytest.mark.anyio


async def test_manual_elector_leads_when_told_and_loses_for_good() -> None:
    elector = ManualElector()
    assert not elector.is_leader
    elector.lead()
    await elector.wait_until_leading()
    assert elector.is_leader
    elector.lose()
    assert not elector.is_leader
    assert elector.lost.is_set()
    with pytest.raises(LeaderElectionLost):
        await elector.wait_until_leading()


async def test_a_term_that_ends_before_it_began_is_refused() -> None:
    elector = ManualElector()
    elector.lose()
    with pytest.raises(LeaderElectionLost):
        await elector.wait_until_leading()


async def test_lease_held_leads_until_released(api_server: ApiServer) -> None:
    timing = {"lease_duration": 4.0, "renew_deadline": 3.0, "retry_period": 0.5}
    holder = LeaderElector(api_server.client, "held", identity="holder", **timing)
    async with lease_held(holder) as release:
        assert holder.is_leader
        release()
        with anyio.fail_after(10):
            await holder.lost.wait()  # it left its block and gave the Lease up
        assert not holder.is_leader
    assert holder.lost_reason == "elector stopped"
