"""The operator the kopf witness runs with ``kopf run --standalone --namespace=<ns>`` (a real process).

It handles ConfigMaps labelled ``witness=kopf`` only: on create it annotates the object and writes
``data.handled``; on a change of ``data.k`` it records the new value in an annotation; on delete it
runs a handler, which makes kopf put its finalizer on every handled object and remove it when the
object is deleted (so deletion exercises finalizers, deletionTimestamp and the generation bump).
"""

from __future__ import annotations

from typing import Any

import kopf

SELECTOR = {"witness": "kopf"}
HANDLED = "witness.kube-runtime.dev/handled"
SEEN = "witness.kube-runtime.dev/seen-k"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.watching.server_timeout = 30
    settings.posting.level = 100  # no Events: the witness compares objects, not event streams


@kopf.on.create("configmaps", labels=SELECTOR)
def created(patch: kopf.Patch, **_: Any) -> None:
    patch.metadata.annotations[HANDLED] = "yes"
    patch["data"] = {"handled": "yes"}


@kopf.on.field("configmaps", field="data.k", labels=SELECTOR)
def k_changed(new: Any, patch: kopf.Patch, **_: Any) -> None:
    patch.metadata.annotations[SEEN] = str(new)


@kopf.on.delete("configmaps", labels=SELECTOR)
def deleted(**_: Any) -> None:
    return None
