"""Official `kubernetes` client peer: list + watch into a dict (the usual hand-rolled informer)."""

from __future__ import annotations

import signal
import sys
import threading

from kubernetes import client, config, watch
from peer_protocol import Stats, parse_args, synced


def main() -> None:
    args = parse_args()
    config.load_kube_config(config_file=args.kubeconfig)
    v1 = client.CoreV1Api()
    list_fn = v1.list_namespaced_config_map if args.resource == "configmaps" else v1.list_namespaced_pod
    stats = Stats()
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stats.report(final=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ticker() -> None:
        while not stop.wait(1.0):
            stats.report()

    threading.Thread(target=ticker, daemon=True).start()
    cache: dict[tuple[str, str], object] = {}
    rv = None
    cont = None
    while True:  # paged initial list, like client-go's pager
        page = list_fn(args.namespace, limit=500, _continue=cont)
        for item in page.items:
            cache[(item.metadata.namespace, item.metadata.name)] = item
        rv = page.metadata.resource_version
        cont = page.metadata._continue
        if not cont:
            break
    synced(len(cache))
    while True:
        w = watch.Watch()
        for ev in w.stream(list_fn, args.namespace, resource_version=rv, timeout_seconds=290,
                           allow_watch_bookmarks=True):
            obj = ev["object"]
            if ev["type"] == "BOOKMARK":
                rv = obj["metadata"]["resourceVersion"] if isinstance(obj, dict) else obj.metadata.resource_version
                continue
            key = (obj.metadata.namespace, obj.metadata.name)
            if ev["type"] == "DELETED":
                cache.pop(key, None)
            else:
                cache[key] = obj
            rv = obj.metadata.resource_version
            stats.observe(obj)


if __name__ == "__main__":
    main()
