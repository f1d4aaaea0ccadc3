"""``python -m kube_runtime <command>``. Commands: ``crd module:Model ...`` (print the
CustomResourceDefinitions of typed models as YAML; see :mod:`kube_runtime.resources.cli`).
The embedded API server stays ``python -m kube_runtime.testing``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_USAGE = "usage: python -m kube_runtime crd module:Model [module:Model ...]"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr if not args else sys.stdout)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "crd":
        from kube_runtime.resources.cli import main as crd_main

        return crd_main(rest)
    print(f"unknown command {command!r}\n{_USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
