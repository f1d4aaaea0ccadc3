"""A real kube-apiserver + etcd for end-to-end tests, run the way controller-runtime's envtest runs them.

``async with Envtest() as env`` starts etcd and kube-apiserver (and optionally kube-controller-manager, for
garbage collection) as child processes on free loopback ports, waits until the API server answers
``/readyz`` and the ``default`` namespace exists, writes a kubeconfig, and on exit stops every child
(SIGTERM, then SIGKILL after ``stop_timeout``) and removes its temporary directory.

Guarantees:

- Children are owned by the context manager: they are stopped on normal exit, on an exception, on
  cancellation and on a failed start. When ``kill_on_parent_death`` is on (the default, Linux with
  ``setpriv``), the kernel also kills them if the test process itself dies without cleaning up.
- ``.url``, ``.token`` (admin, in ``system:masters``) and ``.kubeconfig_path`` stay valid across
  :meth:`Envtest.restart_apiserver` and :meth:`Envtest.restart_etcd`: ports, credentials and the etcd data
  directory are kept.
- Binaries come from ``KUBE_RUNTIME_ENVTEST_BIN`` or the cache that ``scripts/build-envtest.sh`` fills
  (``${KUBE_RUNTIME_ENVTEST_DIR:-~/.cache/kube-runtime/envtest}/<k8s-version>/bin``). When they are absent,
  :class:`MissingEnvtestBinaries` names them; the ``envtest`` pytest fixture and :func:`locate_or_skip`
  turn that into a skip (a failure when ``$KUBE_RUNTIME_REQUIRE_ENVTEST`` is set).
- Fault controls stop a process gracefully (SIGTERM; kube-apiserver ends open watches within two
  seconds) or, with ``kill=True``, crash it (SIGKILL).
- :class:`ThreadedEnvtest` hosts one on its own event loop in a worker thread, so a module- or
  package-scoped fixture can share it with tests running on any loop.

Pitfalls:

- The watch cache serves resumed watches from memory, so an etcd compaction alone does not make a watch
  from an old resourceVersion fail while the cached window still covers it. Pass ``watch_cache=False``
  (watches then go straight to etcd) or restart the API server after compacting to see the 410.
- kube-apiserver compacts etcd itself every five minutes (``--etcd-compaction-interval``).
- ``kill_on_parent_death`` uses the parent-death signal, which fires when the *thread* that started a
  child exits: start Envtest from the thread that runs the event loop, not from a short-lived worker.
- Nothing runs Pods; without ``controller_manager=True`` nothing collects garbage or finishes namespace
  deletion.

The package's modules, one idea each: :mod:`.binaries` (where the binaries are), :mod:`.credentials`
(PKI and kubeconfig), :mod:`.processes` (one child process), :mod:`.control_plane` (:class:`Envtest`
and its fault controls), :mod:`.threaded` (:class:`ThreadedEnvtest`), :mod:`.fixtures` (pytest) and
:mod:`.cli`. Every public name is importable from here, as it was from the single module.
"""

from __future__ import annotations

from kube_runtime.testing.envtest.binaries import (
    BIN_DIR_ENV,
    CACHE_DIR_ENV,
    REQUIRE_ENV,
    EnvtestBinaries,
    EnvtestError,
    MissingEnvtestBinaries,
    default_bin_dir,
)
from kube_runtime.testing.envtest.cli import main
from kube_runtime.testing.envtest.control_plane import SERVICE_CLUSTER_IP_RANGE, Envtest
from kube_runtime.testing.envtest.credentials import ADMIN_USER, LIMITED_USER
from kube_runtime.testing.envtest.fixtures import envtest, locate_or_skip
from kube_runtime.testing.envtest.threaded import ThreadedEnvtest

__all__ = [
    "ADMIN_USER",
    "BIN_DIR_ENV",
    "CACHE_DIR_ENV",
    "LIMITED_USER",
    "REQUIRE_ENV",
    "SERVICE_CLUSTER_IP_RANGE",
    "Envtest",
    "EnvtestBinaries",
    "EnvtestError",
    "MissingEnvtestBinaries",
    "ThreadedEnvtest",
    "default_bin_dir",
    "envtest",
    "locate_or_skip",
    "main",
]
