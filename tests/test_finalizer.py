"""The finalizer helper against the embedded API server: the kube-rs patch table, the ``test``-op
guards under concurrent changes (422), and Terminating objects kept until cleanup succeeds."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime.client import Api, ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.finalizer import (
    AddFinalizer,
    ApplyFailed,
    CleanupFailed,
    FinalizerApply,
    FinalizerCleanup,
    FinalizerEvent,
    InvalidFinalizer,
    RemoveFinalizer,
    UnnamedObject,
    finalizer,
)
from kube_runtime.testing import ApiServer

CONFIGMAP = ApiResource.builtin("ConfigMap")
OURS = "example.com/cleanup"
OTHER = "other.io/keep"


class Handler:
    """Records every event; optionally fails."""

    def __init__(self, action: Action | None = None, fail_with: Exception | None = None) -> None:
        self.events: list[FinalizerEvent] = []
        self.action = action or Action.requeue(300)
        self.fail_with = fail_with

    async def __call__(self, event: FinalizerEvent) -> Action:
        self.events.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        return self.action


def configmaps(server: Any) -> Api:
    return Api(server.client, CONFIGMAP, "default")


async def make(api: Api, name: str, finalizers: list[str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if finalizers is not None:
        metadata["finalizers"] = finalizers
    return await api.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": "v"}}
    )


async def test_adds_the_finalizer_first_then_applies(api_server: Any) -> None:
    api = configmaps(api_server)
    obj = await make(api, "fresh")
    handler = Handler()

    assert await finalizer(api, OURS, obj, handler) == Action.await_change()
    assert handler.events == []  # Apply waits for the reconcile the patch triggers
    fresh = await api.get("fresh")
    assert fresh["metadata"]["finalizers"] == [OURS]

    assert await finalizer(api, OURS, fresh, handler) == Action.requeue(300)
    assert handler.events == [FinalizerApply(fresh)]


async def test_appends_after_other_finalizers(api_server: Any) -> None:
    api = configmaps(api_server)
    obj = await make(api, "shared", [OTHER])
    assert await finalizer(api, OURS, obj, Handler()) == Action.await_change()
    assert (await api.get("shared"))["metadata"]["finalizers"] == [OTHER, OURS]


async def test_add_guard_rejects_a_concurrent_change_with_422(api_server: Any) -> None:
    api = configmaps(api_server)
    stale = await make(api, "racy", [OTHER])
    # Someone else changes the list after our read.
    await api.patch("racy", {"metadata": {"finalizers": [OTHER, "third.io/x"]}}, patch_type="merge")
    with pytest.raises(AddFinalizer) as raised:
        await finalizer(api, OURS, stale, Handler())
    assert raised.value.error.code == 422
    # Nothing clobbered, nothing duplicated (Kubernetes does not deduplicate, kube-rs #964).
    assert (await api.get("racy"))["metadata"]["finalizers"] == [OTHER, "third.io/x"]


async def test_add_guard_on_an_empty_list_rejects_a_concurrent_add(api_server: Any) -> None:
    api = configmaps(api_server)
    stale = await make(api, "racy-empty")
    await api.patch("racy-empty", {"metadata": {"finalizers": ["third.io/x"]}}, patch_type="merge")
    with pytest.raises(AddFinalizer) as raised:
        await finalizer(api, OURS, stale, Handler())
    assert raised.value.error.code == 422
    assert (await api.get("racy-empty"))["metadata"]["finalizers"] == ["third.io/x"]


async def test_explicit_empty_list_kube_rs_null_guard_pitfall(api_server: Any) -> None:
    """kube-rs tests ``/metadata/finalizers == null`` whenever the list is empty, which fails forever
    on a server that stores an explicit ``[]`` (the pitfall in kube-rs's finalizer docs). Both the
    observed ``[]`` and a stale view without the key must still add the finalizer."""
    api = configmaps(api_server)
    obj = await make(api, "explicit-empty", [])
    assert obj["metadata"]["finalizers"] == []
    assert await finalizer(api, OURS, obj, Handler()) == Action.await_change()
    assert (await api.get("explicit-empty"))["metadata"]["finalizers"] == [OURS]

    # A view that lost the empty key (e.g. re-serialized with omitempty) while the server keeps [].
    obj = await make(api, "explicit-empty-2", [])
    view = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "finalizers"}}
    assert await finalizer(api, OURS, view, Handler()) == Action.await_change()
    assert (await api.get("explicit-empty-2"))["metadata"]["finalizers"] == [OURS]


async def test_cleanup_failure_keeps_the_object_terminating_until_cleanup_succeeds(api_server: Any) -> None:
    api = configmaps(api_server)
    await make(api, "doomed", [OURS])
    await api.delete("doomed")
    terminating = await api.get("doomed")
    assert terminating["metadata"]["deletionTimestamp"]

    failing = Handler(fail_with=RuntimeError("cloud API down"))
    with pytest.raises(CleanupFailed) as raised:
        await finalizer(api, OURS, terminating, failing)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert failing.events == [FinalizerCleanup(terminating)]
    still = await api.get("doomed")
    assert still["metadata"]["finalizers"] == [OURS]
    assert still["metadata"]["deletionTimestamp"]

    ok = Handler(action=Action.requeue(5))
    assert await finalizer(api, OURS, still, ok) == Action.requeue(5)
    assert ok.events == [FinalizerCleanup(still)]
    assert await api.get_opt("doomed") is None  # our finalizer was the last one


async def test_cleanup_removes_only_our_finalizer(api_server: Any) -> None:
    api = configmaps(api_server)
    await make(api, "shared-doomed", [OTHER, OURS])
    await api.delete("shared-doomed")
    obj = await api.get("shared-doomed")
    await finalizer(api, OURS, obj, Handler())
    remaining = await api.get("shared-doomed")
    assert remaining["metadata"]["finalizers"] == [OTHER]  # still Terminating, held by OTHER


async def test_remove_guard_rejects_a_moved_finalizer(api_server: Any) -> None:
    api = configmaps(api_server)
    await make(api, "shifted", [OTHER, OURS])
    await api.delete("shifted")
    stale = await api.get("shifted")  # ours at index 1
    await api.patch("shifted", [{"op": "remove", "path": "/metadata/finalizers/0"}], patch_type="json")
    handler = Handler()
    with pytest.raises(RemoveFinalizer) as raised:
        await finalizer(api, OURS, stale, handler)
    assert raised.value.error.code == 422
    assert len(handler.events) == 1  # cleanup ran (it is idempotent) but the guard held
    fresh = await api.get("shifted")
    assert fresh["metadata"]["finalizers"] == [OURS]
    await finalizer(api, OURS, fresh, handler)
    assert await api.get_opt("shifted") is None


async def test_a_stale_cleanup_of_an_object_already_gone_succeeds(api_server: Any) -> None:
    api = configmaps(api_server)
    await make(api, "raced", [OURS])
    await api.delete("raced")
    stale = await api.get("raced")
    handler = Handler(action=Action.await_change())
    assert await finalizer(api, OURS, stale, handler) == Action.await_change()
    assert await api.get_opt("raced") is None
    # A second reconcile of the same stale copy: the cleanup runs again, the remove patch gets 404.
    assert await finalizer(api, OURS, stale, handler) == Action.await_change()
    assert handler.events == [FinalizerCleanup(stale), FinalizerCleanup(stale)]


async def test_a_stale_copy_never_removes_the_finalizer_of_a_recreated_object(api_server: Any) -> None:
    """A copy of a deleted object (a lagging cache) names a newer object of the same name that is
    Terminating and whose own cleanup has not run: the guarded remove must not let it go."""
    api = configmaps(api_server)
    await make(api, "reborn", [OURS])
    await api.delete("reborn")
    stale = await api.get("reborn")
    await finalizer(api, OURS, stale, Handler())
    assert await api.get_opt("reborn") is None
    newer = await make(api, "reborn", [OURS])
    await api.delete("reborn")
    handler = Handler()
    with pytest.raises(RemoveFinalizer) as raised:
        await finalizer(api, OURS, stale, handler)
    assert raised.value.error.code == 422
    current = await api.get("reborn")
    assert current["metadata"]["uid"] == newer["metadata"]["uid"]
    assert current["metadata"]["finalizers"] == [OURS]  # still Terminating: its cleanup has not run
    await finalizer(api, OURS, current, handler)
    assert handler.events[-1] == FinalizerCleanup(current)
    assert await api.get_opt("reborn") is None


async def test_a_stale_copy_never_adds_the_finalizer_to_a_recreated_object(api_server: Any) -> None:
    api = configmaps(api_server)
    stale = await make(api, "again", [])
    await api.delete("again")
    await make(api, "again", [])
    with pytest.raises(AddFinalizer) as raised:
        await finalizer(api, OURS, stale, Handler())
    assert raised.value.error.code == 422
    assert not (await api.get("again"))["metadata"].get("finalizers")


async def test_deleted_before_the_finalizer_was_added_needs_no_cleanup(api_server: Any) -> None:
    api = configmaps(api_server)
    await make(api, "never-applied", [OTHER])
    await api.delete("never-applied")
    obj = await api.get("never-applied")
    handler = Handler()
    assert await finalizer(api, OURS, obj, handler) == Action.await_change()
    assert handler.events == []
    assert (await api.get("never-applied"))["metadata"]["finalizers"] == [OTHER]


async def test_apply_errors_are_wrapped(api_server: Any) -> None:
    api = configmaps(api_server)
    obj = await make(api, "applying", [OURS])
    with pytest.raises(ApplyFailed) as raised:
        await finalizer(api, OURS, obj, Handler(fail_with=ValueError("bad spec")))
    assert isinstance(raised.value.__cause__, ValueError)


async def test_cancellation_is_not_wrapped(api_server: Any) -> None:
    api = configmaps(api_server)
    obj = await make(api, "cancelled", [OURS])

    async def slow(event: FinalizerEvent) -> Action:
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.move_on_after(0.05) as scope:
        await finalizer(api, OURS, obj, slow)
    assert scope.cancelled_caught


async def test_unnamed_object_and_invalid_finalizer(api_server: Any) -> None:
    api = configmaps(api_server)
    with pytest.raises(UnnamedObject):
        await finalizer(api, OURS, {"metadata": {}}, Handler())
    for bad in ["", "Example.com/x", "example.com/", "/x", "a" * 64, "example.com/bad name"]:
        with pytest.raises(InvalidFinalizer):
            await finalizer(api, bad, {"metadata": {"name": "x"}}, Handler())


finalizer_lists = st.lists(
    st.sampled_from(["a.io/one", "b.io/two", "c.io/three", OURS]), unique=True, max_size=4
)


@settings(max_examples=15, deadline=None)
@given(initial=finalizer_lists, deleting=st.booleans())
def test_property_patch_table(initial: list[str], deleting: bool) -> None:
    """For any starting finalizer list and deletion state, one call does exactly what the table says
    and never touches another controller's finalizer."""

    async def scenario() -> None:
        async with ApiServer() as server:
            api = configmaps(server)
            await make(api, "p", initial)
            if deleting:
                await api.delete("p")
            obj = await api.get_opt("p")
            if obj is None:  # deleting with no finalizers at all: gone already
                assert deleting
                assert not initial
                return
            handler = Handler()
            action = await finalizer(api, OURS, obj, handler)
            after = await api.get_opt("p")
            others = [f for f in initial if f != OURS]
            if OURS in initial and not deleting:
                assert handler.events == [FinalizerApply(obj)]
                assert action == handler.action
                assert after is not None
                assert after["metadata"]["finalizers"] == initial
            elif OURS in initial:
                assert handler.events == [FinalizerCleanup(obj)]
                assert action == handler.action
                if others:
                    assert after is not None
                    assert after["metadata"]["finalizers"] == others
                else:
                    assert after is None
            elif not deleting:
                assert handler.events == []
                assert action == Action.await_change()
                assert after is not None
                assert after["metadata"]["finalizers"] == [*initial, OURS]
            else:
                assert handler.events == []
                assert action == Action.await_change()
                assert after is not None
                assert after["metadata"].get("finalizers") == initial

    anyio.run(scenario)
