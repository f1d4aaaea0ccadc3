"""A hypothesis state machine drives the embedded API server (creates, updates, deletes, dropped
connections, injected errors, history compaction, frequent bookmarks) while a reflector runs.

At every quiescent point the store must equal the server's state exactly, the event log must be
correctly bracketed (Init, InitApply*, InitDone; Apply/Delete only outside a list), and between two
relists no change may be delivered twice or out of order. The server serves streaming lists, refuses
them, or ignores the parameter (``watch_list``); a streaming reflector falls back to paged lists at
most once, and never opens a streaming watch after that.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kube_runtime.client.api import Api
from kube_runtime.client.idle import IdleTimedStream
from kube_runtime.client.resource import ApiResource
from kube_runtime.store import Store, store
from kube_runtime.testing import ApiServer
from kube_runtime.testing.apiserver.settings import WATCH_LIST_MODES, WatchListMode
from kube_runtime.watcher import (
    Apply,
    Delete,
    ExponentialBackoff,
    Init,
    InitApply,
    InitDone,
    WatcherConfig,
    watcher,
)

CM = ApiResource.builtin("ConfigMap")
NAMES = st.sampled_from([f"cm-{i}" for i in range(6)])
_namespaces = itertools.count()


class Harness:
    """One API server on a loop in a helper thread, shared by every example (one namespace each)."""

    def __init__(self, portal: BlockingPortal, server: ApiServer) -> None:
        self.portal = portal
        self.server = server


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with start_blocking_portal() as portal:
        server_cm = ApiServer(tls=False, bookmark_interval=0.05, history_size=50)
        with portal.wrap_async_context_manager(server_cm) as server:
            yield Harness(portal, server)


class StreamingCount(logging.Handler):
    """Counts the streaming-list watches a reflector opens, and how many there were when the
    watcher logged its fallback to paged lists."""

    def __init__(self, api: Api) -> None:
        super().__init__(logging.WARNING)
        self.api = api
        self.resource = api.resource
        self.list_raw = api.list_raw
        self.list = api.list
        self.streaming_watches = 0
        self.at_fallback: list[int] = []

    def watch(self, **params: Any) -> AbstractAsyncContextManager[IdleTimedStream[Any]]:
        self.streaming_watches += bool(params.get("send_initial_events"))
        return self.api.watch(**params)

    def emit(self, record: logging.LogRecord) -> None:
        if "does not serve streaming lists" in record.getMessage():
            self.at_fallback.append(self.streaming_watches)


class Reflecting:
    """A reflector over one namespace, run in a task on the server's loop; logs every event."""

    def __init__(self, server: ApiServer, namespace: str, streaming: bool) -> None:
        self.server = server
        self.namespace = namespace
        self.reader, self.writer = store(CM, gc_policy=None)
        self.log: list[Any] = []
        self.errors = 0
        config = WatcherConfig().streaming_lists() if streaming else WatcherConfig().with_page_size(2)
        self.api = StreamingCount(Api(server.client, CM, namespace))
        self.stream = (
            watcher(self.api, config)
            .backoff(ExponentialBackoff(0.005, 0.05, jitter=False))
            .reflect(self.writer)
        )
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()

    async def run(self) -> None:
        logger = logging.getLogger("kube_runtime.watcher")
        logger.addHandler(self.api)
        try:
            with self.scope:
                async with self.stream:
                    async for item in self.stream:
                        if isinstance(item, Exception):
                            self.errors += 1
                        else:
                            self.log.append(item)
        finally:
            logger.removeHandler(self.api)
        self.done.set()


def server_state(server: ApiServer, namespace: str) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in server.objects(CM, namespace)}


def store_state(reader: Store) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in reader.state()}


class ReflectorMachine(RuleBasedStateMachine):
    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.counter = 0
        self.refl: Reflecting | None = None

    @property
    def server(self) -> ApiServer:
        return self.harness.server

    def call(self, fn: Any, *args: Any) -> Any:
        return self.harness.portal.call(fn, *args)

    @initialize(streaming=st.booleans(), watch_list=st.sampled_from(WATCH_LIST_MODES))
    def start(self, streaming: bool, watch_list: WatchListMode) -> None:
        self.namespace = f"model-{next(_namespaces)}"
        self.streaming, self.watch_list = streaming, watch_list
        self.server.settings.watch_list = watch_list
        ns_type = self.server.resource_type("namespaces")
        self.call(
            lambda: self.server.ops.create(
                ns_type, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
            )
        )

        async def make() -> Reflecting:
            return Reflecting(self.server, self.namespace, streaming)

        self.refl = self.call(make)
        self.harness.portal.start_task_soon(self.refl.run)
        self.rtype = self.server.resource_type(CM)

    def teardown(self) -> None:
        if self.refl is not None:
            refl = self.refl

            async def stop() -> None:
                refl.scope.cancel()
                with anyio.fail_after(10):
                    await refl.done.wait()

            self.call(stop)
            self.call(self.server.faults.reset)
        self.server.settings.watch_list = "on"

    def _sync(self, fn: Any) -> Any:
        def run() -> Any:
            try:
                return fn()
            except Exception as exc:  # an operation the server refuses (e.g. already exists) is a no-op
                return exc

        return self.call(run)

    # -- changes ---------------------------------------------------------------------------------

    @rule(name=NAMES)
    def create(self, name: str) -> None:
        self.counter += 1
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"n": str(self.counter)},
        }
        self._sync(lambda: self.server.ops.create(self.rtype, self.namespace, obj))

    @rule(name=NAMES)
    def update(self, name: str) -> None:
        self.counter += 1
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": {"n": str(self.counter)},
        }
        self._sync(lambda: self.server.ops.update(self.rtype, self.namespace, name, obj, require_rv=False))

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        self._sync(lambda: self.server.ops.delete(self.rtype, self.namespace, name))

    # -- faults ----------------------------------------------------------------------------------

    @rule()
    def drop_connections(self) -> None:
        self.call(self.server.faults.close_watches)

    @rule(count=st.integers(1, 3), code=st.sampled_from([500, 410, 403]))
    def inject_errors(self, count: int, code: int) -> None:
        self.call(self.server.faults.fail_next, count, code)

    @rule()
    def compact_history(self) -> None:
        self.call(self.server.faults.compact)

    @rule(name=NAMES)
    def outage_past_history(self, name: str) -> None:
        """The watch drops, the object changes and history is compacted before the watcher is back:
        resuming gets 410 and only a relist can see the change."""
        self.counter += 1
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"n": str(self.counter)},
        }

        def outage() -> None:
            self.server.faults.close_watches()
            if self.server.ops.collection(self.rtype).get(self.namespace, name) is None:
                self.server.ops.create(self.rtype, self.namespace, obj)
            else:
                self.server.ops.delete(self.rtype, self.namespace, name)
            self.server.faults.compact()

        self._sync(outage)

    @rule(seconds=st.sampled_from([0.0, 0.01, 0.1]))
    def let_time_pass(self, seconds: float) -> None:
        self.call(anyio.sleep, seconds)

    # -- checks ----------------------------------------------------------------------------------

    @precondition(lambda self: self.refl is not None)
    @rule()
    def quiesce_and_compare(self) -> None:
        """Let the reflector catch up; then the store equals the server exactly."""
        assert self.refl is not None
        refl = self.refl

        async def settle() -> tuple[dict[str, str], dict[str, str]]:
            with anyio.move_on_after(20):
                while True:
                    expected = server_state(self.server, self.namespace)
                    if refl.reader.is_ready() and store_state(refl.reader) == expected:
                        break
                    await anyio.sleep(0.005)
            return server_state(self.server, self.namespace), store_state(refl.reader)

        expected, got = self.call(settle)
        assert got == expected
        if self.streaming and self.watch_list != "on":
            assert refl.api.at_fallback, "synced without falling back to paged lists"

    @invariant()
    def falls_back_once_and_for_good(self) -> None:
        if self.refl is None:
            return
        api = self.refl.api
        assert len(api.at_fallback) <= 1, "the fallback was logged more than once"
        if api.at_fallback:
            assert api.streaming_watches == api.at_fallback[0], "a streaming watch after the fallback"
        if not self.streaming:
            assert api.streaming_watches == 0

    @invariant()
    def bracketing_and_no_duplicates(self) -> None:
        if self.refl is None:
            return
        in_list = False
        seen: set[tuple[str, str]] = set()
        last_rv = 0
        for item in list(self.refl.log):
            if isinstance(item, Init):
                in_list, seen, last_rv = True, set(), 0
            elif isinstance(item, InitApply):
                assert in_list, "InitApply outside a list"
            elif isinstance(item, InitDone):
                assert in_list, "InitDone without Init"
                in_list = False
            elif isinstance(item, Apply | Delete):
                assert not in_list, "Apply/Delete inside a list"
                meta = item.object["metadata"]
                key = (meta["name"], meta["resourceVersion"])
                assert key not in seen, f"duplicate delivery {key}"
                seen.add(key)
                rv = int(meta["resourceVersion"])
                assert rv > last_rv, "change delivered out of order"
                last_rv = rv


@pytest.mark.timeout(900)
def test_reflector_matches_server_under_faults(harness: Harness) -> None:
    ReflectorMachine.harness = harness
    run = ReflectorMachine.TestCase
    run.settings = settings(
        max_examples=25,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    run().runTest()
