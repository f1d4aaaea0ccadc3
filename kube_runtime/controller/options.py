"""Command-line options of a controller process, named like controller-runtime's manager flags.

::

    parser = argparse.ArgumentParser()
    ControllerOptions.add_arguments(parser, leader_election_id="my-controller")
    ServerOptions.add_arguments(parser)                  # kube_runtime.observe: listeners
    args = parser.parse_args()
    options = ControllerOptions.from_arguments(args)
    controller = (
        Controller(Api(client, KIND, options.namespace))
        .with_config(concurrency=options.concurrency)
        .with_graceful_shutdown_timeout(options.graceful_shutdown_timeout)
    )
    if options.leader_elect:
        elector = LeaderElector(client, options.leader_election_id, options.lease_namespace())

Flags: ``--concurrency`` (default :data:`DEFAULT_CONCURRENCY`, ``0`` = unbounded, negative refused),
``--namespace`` (default: all namespaces), ``--graceful-shutdown-timeout`` (seconds a graceful
shutdown waits for running reconciles before cancelling them, default
:data:`~kube_runtime.controller.shutdown.DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT`; a trailing ``s`` is
accepted; negative = wait forever, as controller-runtime's ``GracefulShutdownTimeout``; keep it
below the pod's ``terminationGracePeriodSeconds``), ``--reconcile-timeout`` (seconds after which a
reconcile is cancelled, controller-runtime's ``ReconciliationTimeout``; ``0``, the default, or
negative = none; a trailing ``s`` is accepted), and, when a default Lease name is given,
``--leader-elect``, ``--leader-election-id`` (default: that name),
``--leader-election-namespace`` (default: ``$POD_NAMESPACE``, else ``default``, resolved by
:meth:`ControllerOptions.lease_namespace` when called, not at parse time) and
``--leader-election-warmup`` (a standby runs its watches while it waits for the Lease:
``Controller.with_leader_election(elector, warmup=True)``). These are the flags the Helm chart
passes beyond :class:`~kube_runtime.observe.ServerOptions`.

It lives in the controller layer, not in ``observe``: these flags configure what the controller
watches and how it runs, and a process without the observability server needs them too (and
should not import uvicorn for them).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from kube_runtime.controller.applier import DEFAULT_CONCURRENCY
from kube_runtime.controller.shutdown import (
    DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
    check_graceful_shutdown_timeout,
)

__all__ = ["DEFAULT_LEASE_NAMESPACE", "ControllerOptions"]

#: The Lease namespace when neither the flag nor ``$POD_NAMESPACE`` gives one.
DEFAULT_LEASE_NAMESPACE = "default"


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 = unbounded), got {value}")
    return value


def _seconds(text: str) -> float:
    raw = text.strip().removesuffix("s")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {text!r}")
    return value


def _graceful_shutdown_timeout(text: str) -> float | None:
    value = _seconds(text)
    return None if value < 0 else value


def _reconcile_timeout(text: str) -> float | None:
    value = _seconds(text)
    return None if value <= 0 else value


@dataclass(frozen=True)
class ControllerOptions:
    """What to watch and how to run. ``leader_election_id`` is ``None`` when the process offers no
    leader election (then ``leader_elect`` is ``False``)."""

    concurrency: int = DEFAULT_CONCURRENCY
    namespace: str | None = None
    leader_elect: bool = False
    leader_election_id: str | None = None
    leader_election_namespace: str | None = None
    graceful_shutdown_timeout: float | None = DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
    reconcile_timeout: float | None = None
    leader_election_warmup: bool = False

    def __post_init__(self) -> None:
        check_graceful_shutdown_timeout(self.graceful_shutdown_timeout)
        if self.reconcile_timeout is not None and not self.reconcile_timeout > 0:
            raise ValueError(f"reconcile_timeout must be > 0 or None, got {self.reconcile_timeout}")
        if self.concurrency < 0:
            raise ValueError(f"concurrency must be >= 0 (0 = unbounded), got {self.concurrency}")
        if self.leader_elect and not self.leader_election_id:
            raise ValueError("leader_elect needs a leader_election_id (the Lease name)")

    @staticmethod
    def add_arguments(parser: argparse._ActionsContainer, *, leader_election_id: str | None = None) -> None:
        """Add ``--concurrency``, ``--namespace`` and ``--graceful-shutdown-timeout`` to a parser
        or an argument group; with ``leader_election_id`` (the default Lease name, usually the
        controller's name) also ``--leader-elect``, ``--leader-election-id`` and
        ``--leader-election-namespace``.

        Without it the leader-election flags are left out on purpose: a process that cannot elect
        a leader must refuse ``--leader-elect`` rather than run every replica at once.
        """
        parser.add_argument(
            "--concurrency",
            type=_concurrency,
            default=DEFAULT_CONCURRENCY,
            help=f"most reconciles at once (0 = unbounded; default {DEFAULT_CONCURRENCY})",
        )
        parser.add_argument("--namespace", default=None, help="watch one namespace (default: all)")
        parser.add_argument(
            "--graceful-shutdown-timeout",
            type=_graceful_shutdown_timeout,
            default=DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
            metavar="SECONDS",
            help="after SIGTERM, cancel reconciles still running after this long "
            f"(negative = wait forever; default {DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT:g})",
        )
        parser.add_argument(
            "--reconcile-timeout",
            type=_reconcile_timeout,
            default=None,
            metavar="SECONDS",
            help="cancel a reconcile running longer than this and retry it with backoff (default 0: never)",
        )
        if leader_election_id is None:
            return
        parser.add_argument(
            "--leader-elect",
            action="store_true",
            default=False,
            help="reconcile only while holding the Lease",
        )
        parser.add_argument(
            "--leader-election-id",
            default=leader_election_id,
            help=f"name of the Lease (default {leader_election_id})",
        )
        parser.add_argument(
            "--leader-election-namespace",
            default=None,
            help=f"namespace of the Lease (default: $POD_NAMESPACE, else {DEFAULT_LEASE_NAMESPACE})",
        )
        parser.add_argument(
            "--leader-election-warmup",
            action="store_true",
            default=False,
            help="while waiting for the Lease, run the watches so a failover starts from synced stores",
        )

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ControllerOptions:
        """The options parsed by a parser set up with :meth:`add_arguments`."""
        return cls(
            concurrency=args.concurrency,
            namespace=args.namespace or None,
            graceful_shutdown_timeout=getattr(
                args, "graceful_shutdown_timeout", DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
            ),
            leader_elect=getattr(args, "leader_elect", False),
            leader_election_id=getattr(args, "leader_election_id", None),
            leader_election_namespace=getattr(args, "leader_election_namespace", None) or None,
            reconcile_timeout=getattr(args, "reconcile_timeout", None),
            leader_election_warmup=getattr(args, "leader_election_warmup", False),
        )

    def lease_namespace(self) -> str:
        """The Lease's namespace: the flag, else ``$POD_NAMESPACE`` (set by the chart from the
        downward API), else ``default``."""
        return (
            self.leader_election_namespace
            or os.environ.get("POD_NAMESPACE", "").strip()
            or DEFAULT_LEASE_NAMESPACE
        )
