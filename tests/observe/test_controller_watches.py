"""A Controller's own watches carry the runtime watch metrics once ``Observability.add_controller``
instruments them (``Controller.instrument_watches``), scraped over HTTP from the observability
server: events per watch, relists and 410s after history compaction, and a last-event timestamp
that bookmarks keep moving on a watch that sees no change at all."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime import predicates
from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.controller.controller import Controller
from kube_runtime.controller.result import Reconciled
from kube_runtime.observe import Observability, ServerOptions
from kube_runtime.observe.observability import InstrumentableController
from kube_runtime.predicates import Predicate
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher.event import Init, InitDone
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.state import WatcherItem

CM = ApiResource.builtin("ConfigMap")
SECRET = ApiResource.builtin("Secret")
NAMESPACE = ApiResource.builtin("Namespace")
LOOPBACK = ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


async def scrape(http: httpx.AsyncClient, obs: Observability) -> Samples:
    text = (await http.get(f"{obs.server.metrics_url}/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def scrape_until(
    http: httpx.AsyncClient, obs: Observability, done: Callable[[Samples], bool], *, within: float = 30
) -> Samples:
    """Scrape until ``done(samples)`` holds (the controller runs in this process on the real clock)."""
    with anyio.fail_after(within):
        while True:
            samples = await scrape(http, obs)
            if done(samples):
                return samples
            await anyio.sleep(0.05)


async def requeue_later(_obj: dict[str, Any], _ctx: None) -> Action:
    return Action.requeue(3600)


async def test_watch_names_are_controller_slash_kind_and_unique(api_server: ApiServer) -> None:
    client = api_server.client
    controller = (
        Controller(Api(client, CM, "default"), name="app")
        .owns(Api(client, SECRET, "default"))
        .watches(Api(client, SECRET, "default"), None, lambda _obj: [])
    )
    assert controller.watch_names == ["app/ConfigMap", "app/Secret", "app/Secret#2"]
    instrumentable: InstrumentableController = controller  # what add_controller relies on (mypy)
    assert instrumentable.instrument_watches is not None


async def test_controller_watches_counted_relisting_after_compaction(api_server: ApiServer) -> None:
    """Events on the main and owns watches, then history compaction: each watch's resume gets a
    410, relists once and recovers; all read from /metrics."""
    registry = CollectorRegistry()
    async with Client.from_kubeconfig(str(api_server.kubeconfig_path), metrics_registry=registry) as client:
        cms = Api(client, CM, "default")
        secrets = Api(client, SECRET, "default")
        a = await cms.create(cm("a"))
        controller = Controller(cms, name="cms", registry=registry).owns(secrets)
        obs = Observability(LOOPBACK, registry=registry, lag_interval=0.05)
        recorder = obs.add_controller(controller)
        reconciled: list[str] = []
        run = controller.run(requeue_later, None, None)

        async def consume(results: AsyncIterable[Any]) -> None:
            async for item in recorder.observe(results):
                if isinstance(item, Reconciled):
                    reconciled.append(item.obj_ref.name)

        def watch(name: str, samples: Samples, kind: str, **labels: str) -> float | None:
            return sample(samples, name, watch=f"cms/{kind}", **labels)

        async with (
            obs,
            httpx.AsyncClient(timeout=10) as http,
            run as results,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(consume, results)
            with anyio.fail_after(30):
                await api_server.wait_for_watches(1, SECRET)  # so the Secret arrives as a watch event
            owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": a["metadata"]["uid"]}
            await secrets.create(
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "ownerReferences": [owner]}}
            )
            before = await scrape_until(
                http, obs, lambda s: watch("kube_runtime_watch_events_total", s, "Secret", type="apply") == 1
            )
            # History compacted past every watch's resume point, then the watches drop.
            await Api(client, NAMESPACE).create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
            )
            api_server.faults.compact()
            api_server.faults.close_watches()
            await cms.create(cm("b"))
            after = await scrape_until(
                http,
                obs,
                lambda s: (
                    all(
                        watch("kube_runtime_watch_relists_total", s, kind) == 1
                        and watch("kube_runtime_watch_restarts_total", s, kind) == 1
                        for kind in ("ConfigMap", "Secret")
                    )
                    and "b" in reconciled
                ),
            )
            run.shutdown()

    assert watch("kube_runtime_watch_events_total", before, "ConfigMap", type="init") == 1
    assert watch("kube_runtime_watch_events_total", before, "ConfigMap", type="init_apply") == 1
    assert watch("kube_runtime_watch_events_total", before, "ConfigMap", type="init_done") == 1
    assert watch("kube_runtime_watch_events_total", before, "Secret", type="init_apply") == 0
    assert watch("kube_runtime_watch_relists_total", before, "ConfigMap") == 0
    for kind in ("ConfigMap", "Secret"):
        assert watch("kube_runtime_watch_errors_total", after, kind, code="410") == 1
        assert watch("kube_runtime_watch_events_total", after, kind, type="init") == 2
        stamp = watch("kube_runtime_watch_last_event_timestamp_seconds", after, kind)
        assert stamp is not None
        assert stamp >= (watch("kube_runtime_watch_last_event_timestamp_seconds", before, kind) or 0) > 0
    assert reconciled.count("a") >= 2  # its own watch, then its owned Secret
    assert sample(after, "controller_runtime_reconcile_total", controller="cms", result="requeue_after")


@pytest.mark.parametrize("filters", [(), (predicates.generation,)], ids=["unfiltered", "with-predicate"])
async def test_bookmarks_keep_a_quiet_controller_watch_fresh(filters: tuple[Predicate, ...]) -> None:
    """No object ever changes in the watched namespace: only bookmarks (every 0.2 s here) arrive,
    and they alone move kube_runtime_watch_last_event_timestamp_seconds forward, with or without a
    predicate on the main watch (the filter sits after the instrumented watcher)."""
    async with ApiServer(bookmark_interval=0.2) as server:
        registry = CollectorRegistry()
        async with Client.from_kubeconfig(str(server.kubeconfig_path), metrics_registry=registry) as client:
            controller = Controller(
                Api(client, CM, "quiet"), name="quiet", registry=registry, predicates=filters
            )
            obs = Observability(LOOPBACK, registry=registry, lag_interval=0.05)
            obs.add_controller(controller)
            stamps: list[float] = []

            def moved_twice(samples: Samples) -> bool:
                stamp = sample(
                    samples, "kube_runtime_watch_last_event_timestamp_seconds", watch="quiet/ConfigMap"
                )
                if stamp and (not stamps or stamp > stamps[-1]):
                    stamps.append(stamp)
                return len(stamps) >= 3  # the list, then two bookmarks

            async with obs, httpx.AsyncClient(timeout=10) as http, controller.run(requeue_later, None, None):
                samples = await scrape_until(http, obs, moved_twice)
                assert server.watch_count(CM) >= 1

    def get(name: str, **labels: str) -> float | None:
        return sample(samples, name, watch="quiet/ConfigMap", **labels)

    assert [get("kube_runtime_watch_events_total", type=t) for t in ("init", "init_done")] == [1, 1]
    for quiet in ("init_apply", "apply", "delete"):
        assert get("kube_runtime_watch_events_total", type=quiet) == 0
    assert get("kube_runtime_watch_relists_total") == 0
    assert get("kube_runtime_watch_restarts_total") == 0
    assert not [
        k for k in samples if k[0] == "kube_runtime_watch_errors_total" and dict(k[1])["code"] != "410"
    ]


async def test_instruments_wrap_raw_watches_in_order_with_their_progress(api_server: ApiServer) -> None:
    """Each instrument sees the raw watcher items (before backoff) with the watch's name and the
    progress object the watcher stamps; several instruments compose."""
    seen: list[tuple[str, str, type]] = []
    progresses: dict[str, WatchProgress] = {}

    def recording(tag: str) -> Any:
        def wrap(stream: AsyncIterable[WatcherItem], watch: str, progress: WatchProgress) -> Any:
            progresses[watch] = progress

            async def passing() -> Any:
                async for item in stream:
                    seen.append((tag, watch, type(item)))
                    yield item

            return passing()

        return wrap

    await Api(api_server.client, CM, "default").create(cm("a"))
    controller = Controller(Api(api_server.client, CM, "default"), name="c", registry=CollectorRegistry())
    controller.instrument_watches(recording("outer-first")).instrument_watches(recording("second"))
    async with controller.run(requeue_later, None, None) as results:
        async for _ in results:
            break
    first = [(watch, kind) for tag, watch, kind in seen if tag == "outer-first"]
    second = [(watch, kind) for tag, watch, kind in seen if tag == "second"]
    assert seen[:2] == [("outer-first", "c/ConfigMap", Init), ("second", "c/ConfigMap", Init)]
    assert first[: len(second)] == second  # the second wraps the first: same items, after it
    assert ("c/ConfigMap", InitDone) in second
    assert progresses["c/ConfigMap"].received >= 1
    assert progresses["c/ConfigMap"].last_seen is not None


@pytest.mark.parametrize("with_progress", [False, True])
async def test_observe_watch_timestamp_follows_the_progress_object(
    registry: CollectorRegistry, with_progress: bool
) -> None:
    progress = WatchProgress(clock=iter([100.0, 250.0]).__next__) if with_progress else None

    async def events() -> Any:
        if progress is not None:
            progress.mark()  # the list page
        yield Init()
        yield InitDone()

    from kube_runtime.observe.watch_metrics import observe_watch

    async for _ in observe_watch(events(), "w", registry=registry, progress=progress):
        pass

    def stamp() -> float | None:
        return registry.get_sample_value("kube_runtime_watch_last_event_timestamp_seconds", {"watch": "w"})

    if progress is None:
        assert (stamp() or 0) > 1e9  # Unix time of the last item
        return
    assert stamp() == 100.0
    progress.mark()  # a bookmark: no item, the gauge still moves (read at scrape time)
    assert stamp() == 250.0
