"""Official `kubernetes` client peer: list + watch into a dict (the usual hand-rolled informer).

Objects are the client's model classes (its default deserialisation); a 410 Gone on the watch
triggers a relist, as any correct hand-rolled informer must do.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from peer_protocol import Stats, dump_store, parse_args, synced


def main() -> None:
    args = parse_args()
    config.load_kube_config(config_file=args.kubeconfig)
    v1 = client.CoreV1Api()
    list_fn = v1.list_namespaced_config_map if args.resource == "configmaps" else v1.list_namespaced_pod
    stats = Stats()
    stop = threading.Event()
    cache: dict[tuple[str, str], Any] = {}

    def on_signal(*_: object) -> None:
        dump_store({f"{k[0]}/{k[1]}": o.metadata.resource_version for k, o in list(cache.items())})
        stats.report(final=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ticker() -> None:
        while not stop.wait(1.0):
            stats.report()

    threading.Thread(target=ticker, daemon=True).start()

    def relist() -> str:
        fresh: dict[tuple[str, str], Any] = {}
        cont = None
        while True:  # paged, like client-go's pager
            page = list_fn(args.namespace, limit=500, _continue=cont)
            for item in page.items:
                fresh[(item.metadata.namespace, item.metadata.name)] = item
            cont = page.metadata._continue
            if not cont:
                break
        cache.clear()
        cache.update(fresh)
        return str(page.metadata.resource_version)

    rv = relist()
    synced(len(cache))
    while True:
        w = watch.Watch()
        try:
            for ev in w.stream(
                list_fn, args.namespace, resource_version=rv, timeout_seconds=290, allow_watch_bookmarks=True
            ):
                obj = ev["object"]
                if ev["type"] == "BOOKMARK":
                    meta = obj["metadata"] if isinstance(obj, dict) else None
                    rv = meta["resourceVersion"] if meta is not None else obj.metadata.resource_version
                    continue
                if ev["type"] == "ERROR":
                    code = obj.get("code") if isinstance(obj, dict) else None
                    if code == 410:
                        rv = relist()
                        break
                    continue
                key = (obj.metadata.namespace, obj.metadata.name)
                if ev["type"] == "DELETED":
                    cache.pop(key, None)
                else:
                    cache[key] = obj
                rv = obj.metadata.resource_version
                stats.observe(obj)
        except ApiException as exc:
            if exc.status == 410:
                rv = relist()
            else:
                stop.wait(1.0)
        except Exception:
            stop.wait(1.0)


if __name__ == "__main__":
    main()
