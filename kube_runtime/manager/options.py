"""Everything a controller process is configured with, from the flags the Helm chart passes.

::

    options = ManagerOptions.parse(sys.argv[1:], name="website-operator")

:meth:`ManagerOptions.add_arguments` adds, under controller-runtime's names: ``--concurrency``,
``--namespace``, ``--graceful-shutdown-timeout``, ``--leader-elect``, ``--leader-election-id``
(default: the manager's name), ``--leader-election-namespace``
(:class:`~kube_runtime.controller.ControllerOptions`); ``--metrics-bind-address``,
``--health-probe-bind-address``, ``--metrics-secure``, ``--metrics-cert-file``,
``--metrics-key-file``, ``--enable-task-dump`` (:class:`~kube_runtime.observe.ServerOptions`);
``--webhook-bind-address``, ``--webhook-cert-file``, ``--webhook-key-file`` (webhooks are served
only when a certificate is given); and ``--log``/``--log-format``/``-v`` (default:
``$KUBE_RUNTIME_LOG``, ``$KUBE_RUNTIME_LOG_FORMAT``, which the chart sets).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from kube_runtime.controller.options import ControllerOptions
from kube_runtime.observe.logging import LOG_FORMAT_ENV_VAR
from kube_runtime.observe.server import ServerOptions
from kube_runtime.webhooks.server import WebhookOptions

__all__ = ["ManagerOptions"]


@dataclass(frozen=True)
class ManagerOptions:
    """The controller, listener, webhook and logging options of one process.

    ``webhooks`` is ``None`` unless a webhook certificate was given. ``log_filter`` ``None`` reads
    ``$KUBE_RUNTIME_LOG``; ``log_format`` ``None`` reads ``$KUBE_RUNTIME_LOG_FORMAT``, else
    console on a terminal and JSON otherwise."""

    controller: ControllerOptions = field(default_factory=ControllerOptions)
    server: ServerOptions = field(default_factory=ServerOptions)
    webhooks: WebhookOptions | None = None
    log_filter: str | None = None
    log_format: Literal["json", "console"] | None = None

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, *, name: str) -> None:
        """Add every flag (see the module docs) in groups; ``name`` is the default Lease name."""
        ControllerOptions.add_arguments(parser.add_argument_group("controller"), leader_election_id=name)
        ServerOptions.add_arguments(parser.add_argument_group("metrics and health probes"))
        WebhookOptions.add_arguments(parser.add_argument_group("admission webhooks (with a certificate)"))
        parser.set_defaults(webhook_cert_file=None, webhook_key_file=None)
        logs = parser.add_argument_group("logging")
        logs.add_argument("--log", default=None, help="log filter (default: $KUBE_RUNTIME_LOG, else info)")
        logs.add_argument(
            "--log-format",
            choices=("json", "console"),
            default=None,
            help=f"default: ${LOG_FORMAT_ENV_VAR}, else console on a terminal and json otherwise",
        )
        logs.add_argument("-v", "--verbose", action="store_true", help="debug logs (overrides --log)")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> ManagerOptions:
        """The options parsed by a parser set up with :meth:`add_arguments`. Raises
        ``ValueError`` for an unknown ``$KUBE_RUNTIME_LOG_FORMAT`` and for ``--metrics-secure``
        without a certificate (bearer tokens must not travel in clear text)."""
        if args.metrics_secure and not (args.metrics_cert_file and args.metrics_key_file):
            raise ValueError("--metrics-secure needs --metrics-cert-file and --metrics-key-file")
        webhooks = WebhookOptions.from_arguments(args) if args.webhook_cert_file else None
        log_filter = "debug,httpx=warning,httpcore=warning" if args.verbose else args.log
        return cls(
            controller=ControllerOptions.from_arguments(args),
            server=ServerOptions.from_arguments(args),
            webhooks=webhooks,
            log_filter=log_filter,
            log_format=_log_format(args.log_format),
        )

    @classmethod
    def parse(
        cls, argv: Sequence[str] | None = None, *, name: str, description: str | None = None
    ) -> ManagerOptions:
        """Parse ``argv`` (default ``sys.argv[1:]``) with every flag; exits with usage on an error."""
        parser = cls.parser(name=name, description=description)
        return cls.from_parsed(parser, parser.parse_args(argv))

    @classmethod
    def parser(cls, *, name: str, description: str | None = None) -> argparse.ArgumentParser:
        """A parser with every flag, to add your own to: read the options back with
        :meth:`from_parsed`."""
        parser = argparse.ArgumentParser(prog=name, description=description)
        cls.add_arguments(parser, name=name)
        return parser

    @classmethod
    def from_parsed(cls, parser: argparse.ArgumentParser, args: argparse.Namespace) -> ManagerOptions:
        """:meth:`from_arguments`, turning a ``ValueError`` into ``parser.error`` (usage, exit 2)."""
        try:
            return cls.from_arguments(args)
        except ValueError as exc:
            parser.error(str(exc))


def _log_format(flag: str | None) -> Literal["json", "console"]:
    chosen = flag or os.environ.get(LOG_FORMAT_ENV_VAR, "").strip().lower()
    if not chosen:
        return "console" if sys.stderr.isatty() else "json"
    if chosen == "json":
        return "json"
    if chosen == "console":
        return "console"
    raise ValueError(f"unknown log format {chosen!r} in ${LOG_FORMAT_ENV_VAR} (expected json or console)")
