"""Run the configmapgen controller.

    python -m examples.configmapgen --embedded      # self-contained demo on the embedded API server
    python examples/configmapgen/main.py --embedded # the same
    python -m examples.configmapgen                 # against the cluster of $KUBECONFIG / in-cluster

``--embedded`` starts the embedded API server, installs the CRD, creates a sample generator and
walks it through an update, a deleted child and its own deletion, printing every result, then
exits 0 once the cluster converged at each step (1 if it did not). Without it the controller runs
until SIGINT/SIGTERM (a second signal forces the stop); ``--install-crd`` installs the CRD first,
``--leader-elect`` runs it only while holding the ``configmapgen`` Lease, so replicas never
reconcile at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.configmapgen.controller import build_controller, error_policy, reconcile
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from kube_runtime.client import Api, Client
from kube_runtime.controller import ControllerError, Reconciled

__all__ = ["describe", "main", "run_demo"]


def describe(item: Any) -> str:
    """One line per result item."""
    if isinstance(item, Reconciled):
        ref, action = item
        after = "await change" if action.requeue_after is None else f"requeue in {action.requeue_after:g}s"
        return f"reconciled {ref} ({item.reason}) in {item.duration * 1000:.1f} ms: {after}"
    if isinstance(item, ControllerError):
        return f"error: {item}"
    return repr(item)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the API server until ``check()`` holds (a demo watching from the outside, as a user
    would with kubectl); give up after 30 s."""
    with anyio.fail_after(30):
        while not await check():  # noqa: ASYNC110  (polls remote state, not an in-process flag)
            await anyio.sleep(0.05)
    print(f"--- converged: {what}")


async def run_demo(client: Client, namespace: str = "default") -> None:
    """Install the CRD, then drive a sample generator through its life while the controller runs."""
    await install_crd(client)
    generators = Api(client, CONFIG_MAP_GENERATOR, namespace)
    config_maps = Api(client, CONFIG_MAP, namespace)
    controller, ctx = build_controller(client, namespace)
    finished = anyio.Event()
    controller.graceful_shutdown_on(finished)

    async def content_is(value: str) -> bool:
        cm = await config_maps.get_opt("sample")
        return cm is not None and (cm.get("data") or {}).get("content") == value

    async def scenario() -> None:
        try:
            sample = {
                "apiVersion": CONFIG_MAP_GENERATOR.api_version,
                "kind": CONFIG_MAP_GENERATOR.kind,
                "metadata": {"name": "sample"},
                "spec": {"content": "hello"},
            }
            await generators.create(sample)
            await wait_for("ConfigMap sample generated", lambda: content_is("hello"))
            await generators.patch("sample", {"spec": {"content": "hello again"}})
            await wait_for("ConfigMap sample updated", lambda: content_is("hello again"))
            await config_maps.delete("sample")
            await wait_for("deleted ConfigMap sample regenerated", lambda: content_is("hello again"))
            await generators.delete("sample")

            async def all_gone() -> bool:
                return (
                    await generators.get_opt("sample") is None and await config_maps.get_opt("sample") is None
                )

            await wait_for("generator and ConfigMap deleted", all_gone)
        finally:
            finished.set()

    async with controller.run(reconcile, error_policy, ctx) as results, anyio.create_task_group() as tg:
        tg.start_soon(scenario)
        async for item in results:
            print(describe(item))


async def run_cluster(install: bool, leader_elect: bool, namespace: str | None) -> None:
    async with await Client.infer() as client:
        if install:
            await install_crd(client)
        controller, ctx = build_controller(client, namespace)
        controller.shutdown_on_signal()
        if leader_elect:
            from kube_runtime.leader import LeaderElector

            async with LeaderElector(client, "configmapgen", namespace or "default") as elector:
                controller.graceful_shutdown_on(elector.lost)
                await elector.run_while_leading(_print_results, controller, ctx)
        else:
            await _print_results(controller, ctx)


async def _print_results(controller: Any, ctx: Any) -> None:
    async with controller.run(reconcile, error_policy, ctx) as results:
        async for item in results:
            print(describe(item), flush=True)


async def _embedded() -> None:
    from kube_runtime.testing import ApiServer

    async with ApiServer() as server:
        await run_demo(server.client)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="configmapgen", description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="run a demo on the embedded API server")
    parser.add_argument("--install-crd", action="store_true", help="install the CRD before starting")
    parser.add_argument("--leader-elect", action="store_true", help="run only while holding the Lease")
    parser.add_argument("--namespace", default=None, help="watch one namespace (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    converged = True
    try:
        if args.embedded:
            anyio.run(_embedded)
        else:
            anyio.run(run_cluster, args.install_crd, args.leader_elect, args.namespace)
    except* TimeoutError:
        print("did not converge in time", file=sys.stderr)
        converged = False
    return 0 if converged else 1


if __name__ == "__main__":
    sys.exit(main())
