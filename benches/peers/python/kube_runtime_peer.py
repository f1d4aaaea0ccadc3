"""kube-runtime peer: watcher + reflector into a Store (watch mode), or a Controller with a no-op
reconcile (controller mode). The same protocol as every other peer (benches/peers/README.md).

The store is compact (JSON bytes, nothing for the cyclic GC to trace), the default. In watch mode
the latency stamp (an annotation) is read from each event's head when the runtime decodes one
(``event.lazy.meta``), as a consumer that needs only metadata would, else from the object.
``--variant strip`` drops managedFields before the store keeps an object; ``--variant metadata``
watches PartialObjectMetadata; ``dict`` and ``dict-strip`` keep the decoded dicts instead
(``store(compact=False)``, with its default FreezeAfterSync GC policy); ``compact`` and
``compact-strip`` are the old names of ``full`` and ``strip`` (controller mode: ``dict*`` variants
give the controller a dict store). ``KR_PEER_OBSERVE=1`` (controller mode) turns on the built-in
metrics and tracing (``observe_results``, and ``setup_tracing`` at its default sampling ratio with an
exporter that drops spans), for the observability-overhead scenario; ``metrics`` or ``tracing``
turns on only that half. ``KR_PEER_LOOP=uvloop`` runs
the peer on uvloop (``run_event_loop``, as ``Manager.main`` does by default where uvloop is
installed); otherwise it runs on asyncio's own loop.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterable
from typing import Any

import anyio
from peer_protocol import Stats, dump_store, parse_args, synced

from kube_runtime.client import Api, Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller import Action, Controller
from kube_runtime.store import Store, reflector, store
from kube_runtime.streams import drop_managed_fields, modify
from kube_runtime.watcher import Apply, Delete, InitDone, WatcherConfig, metadata_watcher, watcher


def _versions(reader: Store) -> dict[str, str]:
    out: dict[str, str] = {}
    for obj in reader.state():
        meta = obj["metadata"]
        out[f"{meta.get('namespace', '')}/{meta['name']}"] = meta.get("resourceVersion", "")
    return out


def _observed(results: AsyncIterable[Any], mode: str) -> AsyncIterable[Any]:
    """Route the controller's results through the built-in metrics and tracing (``mode``: ``1``
    both, ``metrics`` or ``tracing`` one of them)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from kube_runtime.observe import observe_results
    from kube_runtime.observe.tracing import setup_tracing

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    if mode != "metrics":
        # What a user of setup_tracing gets: its default sampling ratio, spans batched to an exporter.
        setup_tracing("bench", exporter=Dropping())
    if mode == "tracing":
        return results
    return observe_results(results, controller="bench")  # type: ignore[no-any-return]


async def main() -> None:
    args = parse_args()
    resource = ApiResource.builtin("ConfigMap" if args.resource == "configmaps" else "Pod")
    stats = Stats()
    reconcile_seconds = args.reconcile_ms / 1000.0
    observe = os.environ.get("KR_PEER_OBSERVE", "0")
    async with Client.from_kubeconfig(args.kubeconfig) as client, anyio.create_task_group() as tg:
        api = Api(client, resource, namespace=args.namespace)
        reader: Store | None = None

        async def ticker() -> None:
            while True:
                await anyio.sleep(1)
                stats.report()

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    if reader is not None:
                        dump_store(_versions(reader))
                    stats.report(final=True)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(ticker)
        tg.start_soon(on_signal)
        if args.mode == "watch":
            reader, writer = store(resource, compact=not args.variant.startswith("dict"))
            if args.variant == "metadata":
                events: AsyncIterable[Any] = metadata_watcher(api, WatcherConfig())
            else:
                events = watcher(api, WatcherConfig())
            if args.variant in ("strip", "compact-strip", "dict-strip"):
                events = modify(events, drop_managed_fields)
            is_synced = False
            async for item in reflector(writer, events).default_backoff():
                if isinstance(item, InitDone) and not is_synced:
                    is_synced = True
                    synced(len(reader), variant=args.variant)
                elif isinstance(item, Apply | Delete):
                    # The stamp annotation is metadata: read from the event's head where the
                    # runtime has one (events carry a LazyObject), else from the decoded object.
                    lazy = getattr(item, "lazy", None)
                    stats.observe(item.object if lazy is None else lazy.meta)
        else:

            async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
                stats.observe(obj)
                if reconcile_seconds:
                    await anyio.sleep(reconcile_seconds)
                return Action.await_change()

            def error_policy(_obj: dict[str, Any], _err: Exception, _ctx: None) -> Action:
                return Action.requeue(1.0)

            controller = Controller(
                api, WatcherConfig(), compact_store=not args.variant.startswith("dict")
            ).with_config(concurrency=args.concurrency)
            reader = controller.store

            async def report_ready() -> None:
                await controller.store.wait_until_ready()
                synced(len(controller.store))

            tg.start_soon(report_ready)
            async with controller.run(reconcile, error_policy, None) as results:
                async for _ in _observed(results, observe) if observe != "0" else results:
                    pass


if __name__ == "__main__":
    # KR_PEER_LOOP=uvloop: the loop Manager.main picks by default where uvloop is installed.
    uvloop = os.environ.get("KR_PEER_LOOP") == "uvloop"
    try:
        from kube_runtime.manager import run_event_loop
    except ImportError:  # a baseline checkout (benches/run.py --baseline) older than run_event_loop
        anyio.run(main, backend_options={"use_uvloop": uvloop})
    else:
        run_event_loop(main, event_loop="uvloop" if uvloop else "asyncio")
