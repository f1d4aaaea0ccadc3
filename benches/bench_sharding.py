"""Sharding benchmarks: the assigner's placement alone, and rings of 1, 2 and 3 replica processes.

    nice -n 10 python benches/bench_sharding.py                        # placement (1M ids) + replicas
    nice -n 10 python benches/bench_sharding.py --placement-only --identities 10000000
    nice -n 10 python benches/bench_sharding.py --replicas-only --objects 2000

Part A (no server): a :class:`~kube_runtime.sharding.HashRing` of ``--members`` members places
``--identities`` object keys: the load spread (max and min over mean objects per member), the share
of keys that move when one member joins or one leaves (consistent hashing promises about 1/N, all
of them to the joiner or from the leaver), and the CPU per placement.

Part B (embedded API server in this process, replicas as separate processes running
:mod:`examples.sharded.replica`): for 1, 2 and 3 replicas, ``--objects`` ConfigMaps are created
and each updated twice; per replica it reports its resident memory and its CPU per reconcile
(process CPU from /proc, reconciles from its records). With 2 and 3 replicas it then SIGKILLs one
that does not run the assigner and reports how long its objects took to be reconciled elsewhere
(the member Lease is 6 s: the figure is dominated by it). The server shares the machine: CPU
figures are per replica process only.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import anyio

from examples.sharded.main import CONVERGE_TIMEOUT, Demo, _read_records
from kube_runtime.sharding import HashRing
from kube_runtime.testing import ApiServer

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = resource.getpagesize()


# -- part A ----------------------------------------------------------------------------------------


def placement(members: int, identities: int) -> None:
    names = [f"replica-{i}" for i in range(members)]
    base = HashRing(names)
    joined = HashRing([*names, f"replica-{members}"])
    left = HashRing(names[1:])
    counts: dict[str, int] = dict.fromkeys(names, 0)
    moved_join = moved_leave = 0
    place_seconds = 0.0
    started = time.process_time()
    for i in range(identities):
        key = f"/ConfigMap/ns-{i % 1000}/object-{i}"
        t0 = time.process_time()
        owner = base.place(key)
        place_seconds += time.process_time() - t0
        assert owner is not None
        counts[owner] += 1
        if joined.place(key) != owner:
            moved_join += 1
        if owner == names[0]:
            moved_leave += 1
        elif left.place(key) != owner:
            raise AssertionError("a leave moved an object of another member")
    total = time.process_time() - started
    mean = identities / members
    print(f"placement: {members} members, {identities} identities ({total:.1f} s CPU for the whole pass)")
    print(f"  spread: max/mean {max(counts.values()) / mean:.3f}, min/mean {min(counts.values()) / mean:.3f}")
    print(f"  moved on join: {moved_join / identities:.4f} (1/N = {1 / (members + 1):.4f})")
    print(f"  moved on leave: {moved_leave / identities:.4f} (1/N = {1 / members:.4f})")
    print(f"  CPU per placement: {place_seconds / identities * 1e6:.2f} us (timer included)")


# -- part B ----------------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _rss_mib(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * _PAGE / 2**20


async def ring(replicas: int, objects: int) -> None:
    args = argparse.Namespace(replicas=replicas, objects=objects, kill_one=False)
    with tempfile.TemporaryDirectory(prefix="bench-sharding-") as tmp:
        async with ApiServer() as server:
            demo = Demo(args, server, Path(tmp))
            try:
                for i in range(replicas):
                    await demo.start_replica(f"replica-{i}")
                with anyio.fail_after(CONVERGE_TIMEOUT):
                    while len(demo.members()) < replicas:  # noqa: ASYNC110 (polls the server's Leases)
                        await anyio.sleep(0.1)
                idle = {name: _cpu_seconds(p.pid) for name, p in demo.processes.items()}
                names = [f"cm-{i:05d}" for i in range(objects)]
                for name in names:
                    await demo.api.create({"metadata": {"name": name}, "data": {"version": "0"}})
                for version in ("1", "2"):
                    await demo.wait_converged()
                    for name in names:
                        await demo.api.patch(name, {"data": {"version": version}})
                await demo.wait_converged()
                assert not demo.unreconciled(), "did not converge"
                print(f"ring of {replicas}: {objects} objects, each created and updated twice")
                for name, process in demo.processes.items():
                    events = sum(1 for r in _read_records(demo.records_path(name)) if r["event"] == "end")
                    cpu = _cpu_seconds(process.pid) - idle[name]
                    per = f"{cpu / events * 1e3:.2f} ms CPU per reconcile" if events else "no reconciles"
                    print(f"  {name}: {events} reconciles, {_rss_mib(process.pid):.0f} MiB resident, {per}")
                if replicas > 1:
                    victim = next(n for n in demo.live() if n != demo.assigner_holder())
                    await demo.kill(victim)
                    killed = time.monotonic()
                    await demo.wait_converged()
                    assert not demo.unreconciled(), "did not converge after the crash"
                    moved = time.monotonic() - killed
                    print(
                        f"  after SIGKILL of {victim}: its objects reconciled elsewhere within {moved:.1f} s"
                    )
            finally:
                with anyio.CancelScope(shield=True):
                    await demo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rings", default="1,2,3", help="replica counts to run, comma-separated")
    parser.add_argument("--placement-only", action="store_true")
    parser.add_argument("--replicas-only", action="store_true")
    args = parser.parse_args()
    if not args.replicas_only:
        placement(args.members, args.identities)
    if not args.placement_only:
        for replicas in (int(n) for n in args.rings.split(",")):
            anyio.run(ring, replicas, args.objects)


if __name__ == "__main__":
    main()
