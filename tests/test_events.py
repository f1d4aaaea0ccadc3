"""The events Recorder against the embedded API server: create, series PATCH on repeats, the
6-minute cache (on the virtual clock), namespaces, limits, and concurrency."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api, ApiResource
from kube_runtime.events import (
    CACHE_TTL,
    EventReport,
    EventType,
    InvalidEvent,
    Recorder,
    Reporter,
    object_reference,
)
from kube_runtime.testing.clock import virtual_clock_backend

EVENTS = ApiResource.builtin("Event", "events.k8s.io/v1")
CONFIGMAP = ApiResource.builtin("ConfigMap")


def events_in(server: Any, namespace: str) -> list[dict[str, Any]]:
    return list(server.objects(EVENTS, namespace))


async def configmap(server: Any, name: str = "cm", namespace: str = "default") -> dict[str, Any]:
    api = Api(server.client, CONFIGMAP, namespace)
    return await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})


SCALED = EventReport(EventType.NORMAL, reason="Scaled", action="Scale", note="from 1 to 3")


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("ConfigMap", "n" * 253),
        ("ConfigMap", "a." + "b" * 240 + ".c"),
        ("ClusterRole", "system:Controller:Tester"),
        ("ClusterRole", "system:-odd-.name"),
        ("ClusterRole", ":::"),
    ],
)
async def test_an_object_whose_name_makes_no_event_name_still_gets_its_events(
    api_server: Any, kind: str, name: str
) -> None:
    """``<name>.<hex>`` is refused by the server for these (too long, or not a DNS subdomain); the
    event is still created, regarding the object by its exact name, and its repeats series."""
    reference = {"apiVersion": "v1", "kind": kind, "name": name, "uid": "4e4f2a1c"}
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    await recorder.publish(SCALED, reference)
    await recorder.publish(SCALED, reference)
    [event] = events_in(api_server, "default")
    assert event["regarding"]["name"] == name
    assert event["series"]["count"] == 2
    assert len(event["metadata"]["name"]) <= 253


def test_reporter_instance_defaults() -> None:
    assert Reporter("ctl").reporting_instance == "ctl"
    assert Reporter("ctl", "pod-7").reporting_instance == "pod-7"
    assert Reporter.with_hostname("ctl").instance  # kube-rs From<&str>: the hostname


async def test_first_publish_creates_an_event(api_server: Any) -> None:
    obj = await configmap(api_server)
    recorder = Recorder(api_server.client, Reporter("my-ctl", "pod-1"))
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert event["type"] == "Normal"
    assert (event["reason"], event["action"], event["note"]) == ("Scaled", "Scale", "from 1 to 3")
    assert event["reportingController"] == "my-ctl"
    assert event["reportingInstance"] == "pod-1"
    assert event["regarding"] == object_reference(obj)
    assert event["regarding"]["uid"] == obj["metadata"]["uid"]
    assert event["metadata"]["name"].startswith("cm.")
    assert event["eventTime"].endswith("Z")
    assert not event.get("series")


async def test_repeats_become_a_series(api_server: Any) -> None:
    obj = await configmap(api_server)
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    await recorder.publish(SCALED, obj)
    await recorder.publish(EventReport(EventType.NORMAL, "Scaled", "Scale", note="a different note"), obj)
    [event] = events_in(api_server, "default")
    assert event["series"]["count"] == 2  # the first repeat counts 2
    assert event["series"]["lastObservedTime"].endswith("Z")
    assert event["note"] == "from 1 to 3"  # the note is not part of the key; the first one stays
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert event["series"]["count"] == 3


async def test_a_different_key_makes_a_new_event(api_server: Any) -> None:
    obj = await configmap(api_server)
    other = await configmap(api_server, "other")
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    await recorder.publish(SCALED, obj)
    await recorder.publish(EventReport(EventType.WARNING, "Scaled", "Scale"), obj)
    await recorder.publish(EventReport(EventType.NORMAL, "Failed", "Scale"), obj)
    await recorder.publish(SCALED, other)
    await recorder.publish(EventReport(EventType.NORMAL, "Scaled", "Scale", secondary=other), obj)
    assert len(events_in(api_server, "default")) == 5
    assert recorder.cached_events() == 5


async def test_event_goes_to_the_regarding_namespace_or_default(api_server: Any) -> None:
    namespaces = Api(api_server.client, ApiResource.builtin("Namespace"))
    await namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    obj = await configmap(api_server, "in-team-a", "team-a")
    namespace = await namespaces.get("team-a")
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    await recorder.publish(SCALED, obj)
    await recorder.publish(SCALED, namespace)  # cluster-scoped
    assert [e["regarding"]["name"] for e in events_in(api_server, "team-a")] == ["in-team-a"]
    assert [e["regarding"]["name"] for e in events_in(api_server, "default")] == ["team-a"]


async def test_limits_are_checked_before_any_request(api_server: Any) -> None:
    obj = await configmap(api_server)
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    too_long = [
        (EventReport(EventType.NORMAL, "r" * 129, "Scale"), "reason"),
        (EventReport(EventType.NORMAL, "Scaled", "a" * 129), "action"),
        (EventReport(EventType.NORMAL, "Scaled", "Scale", note="é" * 513), "note"),  # 1026 bytes
        (EventReport(EventType.NORMAL, "", "Scale"), "reason"),
        (EventReport(EventType.NORMAL, "Scaled", ""), "action"),
    ]
    for event, field in too_long:
        with pytest.raises(InvalidEvent, match=field):
            await recorder.publish(event, obj)
    # At the limit is fine.
    await recorder.publish(EventReport(EventType.NORMAL, "r" * 128, "a" * 128, note="n" * 1024), obj)
    assert len(events_in(api_server, "default")) == 1


async def test_event_deleted_by_the_server_is_recreated(api_server: Any) -> None:
    obj = await configmap(api_server)
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    await Api(api_server.client, EVENTS, "default").delete(event["metadata"]["name"])
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert not event.get("series")
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert event["series"]["count"] == 2


async def test_concurrent_repeats_extend_one_series(api_server: Any) -> None:
    obj = await configmap(api_server)
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(recorder.publish, SCALED, obj)
    [event] = events_in(api_server, "default")
    assert event["series"]["count"] == 10


async def test_failed_publish_leaves_the_cache_alone(api_server: Any) -> None:
    obj = await configmap(api_server)
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    api_server.faults.fail_next(1, 500)
    with pytest.raises(Exception, match="500"):
        await recorder.publish(SCALED, obj)
    assert recorder.cached_events() == 0
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert not event.get("series")


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_cache_expires_after_six_minutes_on_the_virtual_clock(api_server: Any) -> None:
    obj = await configmap(api_server)
    wall = [datetime(2024, 1, 1, tzinfo=UTC)]
    recorder = Recorder(api_server.client, Reporter("my-ctl"), wall_clock=lambda: wall[0])
    start = anyio.current_time()
    await recorder.publish(SCALED, obj)

    await anyio.sleep(CACHE_TTL - 60)  # 5 minutes: still a repeat
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert event["series"]["count"] == 2

    await anyio.sleep(CACHE_TTL - 60)  # 5 more: measured from the last observation, still a repeat
    await recorder.publish(SCALED, obj)
    [event] = events_in(api_server, "default")
    assert event["series"]["count"] == 3

    await anyio.sleep(CACHE_TTL)  # 6 minutes of silence: the series is closed
    wall[0] = datetime(2024, 1, 1, 0, 20, tzinfo=UTC)
    await recorder.publish(SCALED, obj)
    events = sorted(events_in(api_server, "default"), key=lambda e: e["eventTime"])
    assert len(events) == 2
    assert events[1]["eventTime"] == "2024-01-01T00:20:00.000000Z"
    assert not events[1].get("series")
    assert anyio.current_time() - start >= 2 * (CACHE_TTL - 60) + CACHE_TTL


@pytest.mark.parametrize("controller", ["my controller", "", "a/b/c", "-ctl", "x" * 64, "Bad_Prefix/ctl"])
def test_a_reporter_that_the_api_server_would_refuse_cannot_be_made(controller: str) -> None:
    """kube-apiserver refuses an ``events.k8s.io/v1`` Event whose ``reportingController`` is not a
    qualified name (422 on every publish); the embedded server does not check it, so the check
    lives here."""
    with pytest.raises(InvalidEvent, match="qualified name"):
        Reporter(controller)


def test_qualified_reporter_names_are_accepted() -> None:
    for controller in ("ctl", "my-ctl", "example.com/my-ctl", "a_b.c-9"):
        assert Reporter(controller).controller == controller


@pytest.mark.parametrize("anyio_backend", [virtual_clock_backend()])
async def test_a_repeated_key_outlives_older_ones_in_the_cache(api_server: Any) -> None:
    """Expiry reads the cache oldest-observation first: a key observed again moves to the end,
    so it is kept while a key first seen after it, but not since, expires."""
    obj = await configmap(api_server)
    other = EventReport(EventType.NORMAL, "Deleted", "Delete")
    recorder = Recorder(api_server.client, Reporter("my-ctl"))
    await recorder.publish(SCALED, obj)  # t=0
    await anyio.sleep(60)
    await recorder.publish(other, obj)  # t=60
    await anyio.sleep(60)
    await recorder.publish(SCALED, obj)  # t=120: SCALED observed again
    await anyio.sleep(CACHE_TTL - 30)  # t=450: `other` is 390 s old, SCALED 330 s
    await recorder.publish(SCALED, obj)
    assert recorder.cached_events() == 1
    scaled = [e for e in events_in(api_server, "default") if e["reason"] == SCALED.reason]
    assert len(scaled) == 1
    assert scaled[0]["series"]["count"] == 3
