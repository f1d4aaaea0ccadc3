"""examples.website: the Website operator on the Manager, run as a process against the embedded
API server with leader election: owned ConfigMap and Deployment, status through server-side
apply, a finalizer, events, metrics; SIGTERM exits 0 without a warning and releases the Lease.
It is at most half the lines of the same operator written without the Manager and predicates
(tests/examples/website_without_manager.py, run the same way)."""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from examples.website import FINALIZER, Website, WebsiteSpec
from kube_runtime.client import Api, ApiResource
from kube_runtime.leader import LEASE_RESOURCE
from kube_runtime.resources import ObjectMeta, TypedApi, find_condition
from kube_runtime.testing.server import ApiServer
from tests.examples.process import REPO, WAIT, run_example, value

CONFIG_MAP, DEPLOYMENT = ApiResource.builtin("ConfigMap"), ApiResource.builtin("Deployment")
EVENTS = ApiResource.builtin("Event", "events.k8s.io/v1")
MODULES = {"manager": "examples.website", "without-manager": "tests.examples.website_without_manager"}


def lines_of_code(path: Path) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    source = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    skipped = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
    }
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skipped:
            lines.update(n for n in range(token.start[0], token.end[0] + 1) if n not in docstrings)
    return len(lines)


def test_the_manager_version_is_at_most_half_the_lines() -> None:
    new = lines_of_code(REPO / "examples" / "website.py")
    old = lines_of_code(REPO / "tests" / "examples" / "website_without_manager.py")
    print(f"website operator: {new} lines of code on the Manager, {old} without ({new / old:.2f}x)")
    assert new * 2 <= old, (new, old)


async def until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    with anyio.fail_after(WAIT):
        while not await check():  # noqa: ASYNC110  (state of another process)
            await anyio.sleep(0.05)


@pytest.mark.parametrize("variant", list(MODULES))
async def test_the_operator_converges_as_a_process(variant: str) -> None:
    async with ApiServer() as server:
        client = server.client
        args = ("--install-crd", "--leader-elect", "--leader-election-namespace=default")
        async with run_example(MODULES[variant], *args, kubeconfig=server.kubeconfig_path) as ex:
            sites = TypedApi(client, Website, "default")
            await until("the CRD", lambda: _served(client))
            await sites.create(
                Website(metadata=ObjectMeta(name="home"), spec=WebsiteSpec(content="<h1>hi</h1>"))
            )
            config_maps, deployments = Api(client, CONFIG_MAP, "default"), Api(client, DEPLOYMENT, "default")

            async def converged(content: str, replicas: int) -> bool:
                site = await sites.get("home")
                cm, deployment = await config_maps.get_opt("home"), await deployments.get_opt("home")
                ready = find_condition(site.status.conditions if site.status else None, "Ready")
                return (
                    cm is not None
                    and cm["data"]["index.html"] == content
                    and deployment is not None
                    and deployment["spec"]["replicas"] == replicas
                    and ready is not None
                    and ready.status == "True"
                    and ready.observed_generation == site.metadata.generation
                )

            await until("children and status", lambda: converged("<h1>hi</h1>", 1))
            site = await sites.get("home")
            assert FINALIZER in (site.metadata.finalizers or [])
            for child in (await config_maps.get("home"), await deployments.get("home")):
                (owner,) = child["metadata"]["ownerReferences"]
                assert (owner["kind"], owner["uid"], owner["controller"]) == (
                    "Website",
                    site.metadata.uid,
                    True,
                )
            await sites.raw.patch("home", {"spec": {"content": "<h1>v2</h1>", "replicas": 3}})
            await until("the new generation", lambda: converged("<h1>v2</h1>", 3))
            await config_maps.delete("home")  # an owned child deleted: the operator restores it
            await until("the ConfigMap restored", lambda: converged("<h1>v2</h1>", 3))
            await sites.raw.delete("home")
            await until("the Website gone", lambda: _gone(sites, config_maps, deployments))

            reasons = {e.get("reason") for e in (await Api(client, EVENTS, "default").list())["items"]}
            assert {"Applied", "Deleted"} <= reasons
            samples = await ex.scrape()
            assert (
                value(samples, "controller_runtime_reconcile_total", controller="website", result="error")
                or 0
            ) == 0
            assert (
                value(samples, "controller_runtime_reconcile_total", controller="website", result="success")
                or 0
            ) > 0
            assert value(samples, "leader_election_master_status", name="website-operator") == 1
            assert value(samples, "kube_runtime_store_ready", store="website") == 1
            assert (await ex.probe("/readyz")).status_code == 200
            assert await ex.stop() == 0, ex.tail()
        lease = await Api(client, LEASE_RESOURCE, "default").get("website-operator")
        assert lease["spec"]["holderIdentity"] == ""
    assert [r for r in ex.logs if r.get("level") in ("warning", "error", "critical")] == [], ex.tail()


async def _served(client: Any) -> bool:
    crd = await Api(client, ApiResource.builtin("CustomResourceDefinition")).get_opt(
        "websites.website.kube-runtime.dev"
    )
    return crd is not None


async def _gone(sites: TypedApi[Website], config_maps: Api, deployments: Api) -> bool:
    return all(
        [
            await sites.get_opt("home") is None,
            await config_maps.get_opt("home") is None,
            await deployments.get_opt("home") is None,
        ]
    )
