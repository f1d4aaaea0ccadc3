"""Reconciles caused by a (re)list run only once the store shows the listed state.

kube-rs's ``Controller::new`` triggers a reconcile for every ``InitApply`` of a relist
(``applied_objects`` passes them), while its store keeps serving the old state until ``InitDone``
swaps the buffer in (store completeness). A reconcile started during a paged relist therefore reads
the old object, or none (``ObjectNotFound`` for an object created while the controller was cut off),
and nothing triggers it again after the swap (stackabletech/hdfs-operator#774). Here the main trigger
fires per ``Apply`` and, at ``InitDone``, for every object of the new state.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import (
    Action,
    Controller,
    ControllerResult,
    ObjectNotFound,
    QueueError,
    Reconciled,
)
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import InitialListStrategy, WatcherConfig, WatchError
from tests.controller.conftest import CONFIG_MAP, config_map

pytestmark = pytest.mark.anyio

EXISTING = 2000


class Recorder:
    """What the reconciler saw: every (name, resourceVersion) reconciled, and overlaps per object."""

    def __init__(self) -> None:
        self.reconciled: dict[str, set[str]] = {}
        self.running: set[str] = set()
        self.overlaps: list[str] = []
        self.not_found: list[str] = []
        self.watch_errors: list[BaseException] = []
        #: The server's state being waited for (name -> resourceVersion), and what of it is not
        #: reconciled yet (kept up to date per reconcile: recomputing it per result is quadratic).
        self.expected: dict[str, str] = {}
        self.outstanding: set[str] = set()
        self.changed = anyio.Event()

    async def reconcile(self, obj: dict[str, Any], _ctx: None) -> Action:
        meta = obj["metadata"]
        name = meta["name"]
        if name in self.running:
            self.overlaps.append(name)
        self.running.add(name)
        try:
            await anyio.lowlevel.checkpoint()  # let another reconcile of it start, were that possible
            self.reconciled.setdefault(name, set()).add(meta["resourceVersion"])
            if self.expected.get(name) == meta["resourceVersion"]:
                self.outstanding.discard(name)
        finally:
            self.running.discard(name)
        return Action.await_change()

    def add(self, item: ControllerResult) -> None:
        if isinstance(item, ObjectNotFound):
            self.not_found.append(item.obj_ref.name)
        elif isinstance(item, QueueError):  # the cut: broken watch, refused connections, the 410
            self.watch_errors.append(item.watcher_error)
        elif not isinstance(item, Reconciled):
            raise AssertionError(f"unexpected result {item!r}")
        self.changed.set()
        self.changed = anyio.Event()

    def expect(self, server: ApiServer) -> None:
        """Wait for the server's current state from now on."""
        self.expected = {
            o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in server.objects(CONFIG_MAP)
        }
        self.outstanding = {n for n, rv in self.expected.items() if rv not in self.reconciled.get(n, ())}

    def missing(self) -> list[str]:
        """Expected objects whose expected resourceVersion was never reconciled."""
        return sorted(f"{name}@{self.expected[name]}" for name in self.outstanding)


def cm_name(i: int) -> str:
    return f"cm-{i:04d}"


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(WatcherConfig(), id="paged-500"),
        pytest.param(WatcherConfig(page_size=50), id="paged-50"),
        pytest.param(WatcherConfig(initial_list_strategy=InitialListStrategy.STREAMING_LIST), id="streaming"),
    ],
)
async def test_a_relist_after_410_reconciles_every_object_against_the_listed_state(
    api_server: ApiServer, config: WatcherConfig
) -> None:
    """2,000 ConfigMaps; the controller is cut off, 20 are created, 50 patched and 10 deleted
    meanwhile, history is compacted (its resumed watch gets 410) and it relists. In the end every
    object's latest version has been reconciled, nothing is ``ObjectNotFound`` (the deleted ones
    vanish at the swap) and no object was reconciled twice at once. kube-rs's ``Controller::new``
    fails this: it triggers on each ``InitApply`` before the store swap, so the new objects end as
    ``ObjectNotFound`` and patched ones are reconciled in their old version only."""
    ops, rtype = api_server.ops, api_server.resource_type(CONFIG_MAP)
    for i in range(EXISTING):
        ops.create(rtype, "default", config_map(cm_name(i), v="0"))
    recorder = Recorder()
    controller = Controller(Api(api_server.client, CONFIG_MAP, "default"), config)

    async with controller.run(recorder.reconcile, None, None) as results, anyio.create_task_group() as tg:

        async def consume() -> None:
            async for item in results:
                recorder.add(item)

        async def until_all_reconciled() -> None:
            recorder.expect(api_server)
            with anyio.fail_after(600):
                while recorder.outstanding:
                    await recorder.changed.wait()

        tg.start_soon(consume)
        await until_all_reconciled()
        assert not recorder.not_found

        # Cut off: the watch breaks and reconnecting fails while the changes it misses happen.
        await api_server.faults.stop_serving()
        # Spread over every page of the relist: each 100th name gets a new neighbour, each 40th
        # is patched, each 200th (offset 7) deleted.
        for i in range(0, EXISTING, 100):
            ops.create(rtype, "default", config_map(f"{cm_name(i)}-new", v="0"))
        for i in range(3, EXISTING, 40):
            current = ops.get(rtype, "default", cm_name(i)).copy_obj()
            current["data"] = {"v": "1"}
            ops.update(rtype, "default", cm_name(i), current, require_rv=False)
        for i in range(7, EXISTING, 200):
            ops.delete(rtype, "default", cm_name(i))
        api_server.faults.compact()  # the resumed watch gets 410 Gone: relist
        await api_server.faults.start_serving()

        try:
            await until_all_reconciled()
        except TimeoutError:
            pass  # reported below, outside the task group
        else:
            # Quiescence on the virtual clock: whatever is still queued runs and reports meanwhile.
            await anyio.sleep(30)
        tg.cancel_scope.cancel()

    missing, not_found = recorder.missing(), sorted(set(recorder.not_found))
    assert not missing, (
        f"{len(missing)} objects never reconciled in their latest version: {missing[:10]}; "
        f"ObjectNotFound for {len(not_found)}: {not_found[:10]}"
    )
    assert any(isinstance(e, WatchError) and e.code == 410 for e in recorder.watch_errors), "no relist"
    assert recorder.not_found == [], "ObjectNotFound for objects that exist (or vanished at the swap)"
    assert recorder.overlaps == []
    assert len(api_server.objects(CONFIG_MAP, "default")) == EXISTING + 20 - 10
    recorder.expect(api_server)
    assert not recorder.missing()
