"""examples.shared_reflector: two controllers do their work from one watch, also across a dropped
watch, and each has its own reconcile metrics and readiness check."""

from __future__ import annotations

from typing import Any

from examples.shared_reflector.main import CONFIG_MAP, EVENTS, SUMMARY, TEAM, summary_of
from kube_runtime.client import Api
from kube_runtime.testing import ApiServer
from tests.examples.process import Example, run_example, value

MODULE = "examples.shared_reflector"


def config_map(name: str, team: str | None, *, watched: bool = True, **data: str) -> dict[str, Any]:
    labels = ({"example.com/summarize": "true"} if watched else {}) | ({TEAM: team} if team else {})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


def annotations_of(server: ApiServer, name: str) -> dict[str, str]:
    (found,) = [o for o in server.objects(CONFIG_MAP, "default") if o["metadata"]["name"] == name]
    return dict(found["metadata"].get("annotations") or {})


def ref(name: str) -> str:
    return f"ConfigMap.v1./{name}.default"


async def both_handled(ex: Example, name: str, summary: str, *, valid: bool) -> None:
    await ex.wait_for_log(
        "summary written", summary=summary, controller="annotator", **{"object.ref": ref(name)}
    )
    await ex.wait_for_log(
        "valid" if valid else "invalid", controller="validator", **{"object.ref": ref(name)}
    )


def test_summary_is_derived_from_labels_and_data() -> None:
    cm = config_map("x", "payments", a="é", b="12")
    assert summary_of(cm) == "team=payments keys=2 bytes=4"
    assert summary_of(config_map("y", None)) == "team=none keys=0 bytes=0"


async def test_one_watch_feeds_both_controllers(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIG_MAP, "default")
    await api.create(config_map("payments", "payments", currency="EUR"))
    await api.create(config_map("orphan", None, debug="true"))
    await api.create(config_map("unrelated", "x", watched=False, key="value"))
    async with run_example(MODULE, "--concurrency", "2", kubeconfig=api_server.kubeconfig_path) as ex:
        await both_handled(ex, "payments", "team=payments keys=1 bytes=3", valid=True)
        await both_handled(ex, "orphan", "team=none keys=1 bytes=4", valid=False)
        assert annotations_of(api_server, "payments")[SUMMARY] == "team=payments keys=1 bytes=3"
        assert SUMMARY not in annotations_of(api_server, "unrelated")  # outside the label selector
        warnings = api_server.objects(EVENTS, "default")
        assert {(e["reason"], e["regarding"]["name"]) for e in warnings} == {("MissingTeam", "orphan")}

        # Two controllers, one watch on the server, one list in the watch metrics.
        assert api_server.watch_count(CONFIG_MAP) == 1
        samples = await ex.scrape()
        assert value(samples, "kube_runtime_watch_events_total", watch="configmaps", type="init") == 1
        assert value(samples, "kube_runtime_watch_events_total", watch="configmaps", type="init_apply") == 2
        for name in ("annotator", "validator"):
            success = value(samples, "controller_runtime_reconcile_total", controller=name, result="success")
            assert success is not None
            assert success >= 2
            assert value(samples, "controller_runtime_reconcile_errors_total", controller=name) == 0
            assert value(samples, "controller_runtime_max_concurrent_reconciles", controller=name) == 2
        readyz = await ex.probe("/readyz?verbose")
        assert readyz.status_code == 200
        assert "[+]annotator ok" in readyz.text
        assert "[+]validator ok" in readyz.text

        # The cache is published once, under its own name; the annotator's writes did not
        # re-trigger the validator (it filters its subscription by labels).
        stores = {
            dict(labels)["store"]: v
            for (n, labels), v in samples.items()
            if n == "kube_runtime_store_objects"
        }
        assert stores == {"configmaps": 2}
        assert len(ex.matching("valid", controller="validator", **{"object.ref": ref("payments")})) == 1

        # A fix reaches both controllers.
        await api.patch("orphan", {"metadata": {"labels": {TEAM: "platform"}}})
        await both_handled(ex, "orphan", "team=platform keys=1 bytes=4", valid=True)

        # The watch drops: it is re-established once, for both, and changes made meanwhile arrive.
        api_server.faults.close_watches()
        await api.create(config_map("search", "search", engine="bm25"))
        await both_handled(ex, "search", "team=search keys=1 bytes=4", valid=True)
        await api_server.wait_for_watches(1, CONFIG_MAP)
        assert api_server.watch_count(CONFIG_MAP) == 1
        samples = await ex.scrape()
        assert value(samples, "kube_runtime_watch_events_total", watch="configmaps", type="init") == 1

        assert await ex.stop() == 0
    assert ex.logs[-1]["event"] == "stopped"
    assert ex.stray == []
    assert ex.library_noise() == []


async def test_embedded_demo_runs_with_one_command() -> None:
    async with run_example(MODULE, "--embedded") as ex:
        finished = await ex.wait_for_log("demo finished: press Ctrl+C to stop")
        assert finished["configmap_watches_open"] == 1
        assert finished["warnings"] == ["label example.com/team is required"]
        samples = await ex.scrape()
        for name in ("annotator", "validator"):
            success = value(samples, "controller_runtime_reconcile_total", controller=name, result="success")
            assert success is not None
            assert success >= 3
        assert await ex.stop() == 0
    assert ex.stray == []
