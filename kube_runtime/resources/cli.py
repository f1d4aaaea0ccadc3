"""``python -m kube_runtime crd module:Model [module:Model ...]``: print CRDs as YAML.

Models of the same kind (same group and kind) are versions of one CRD; each kind is one YAML
document, in the order first named. ``module`` is imported as is (run from the directory that
makes it importable, or set ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

from kube_runtime.resources.crd import crd, to_yaml
from kube_runtime.resources.model import CustomResource

__all__ = ["crd_command", "load_model"]


def load_model(spec: str) -> type[CustomResource]:
    """The CustomResource class ``module:Name`` names; ``ValueError`` if it is not one."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{spec!r}: expected module:Model")
    value: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        value = getattr(value, part)
    if not (isinstance(value, type) and issubclass(value, CustomResource)):
        raise ValueError(f"{spec!r} is not a CustomResource model")
    return value


def crd_command(specs: Sequence[str]) -> str:
    """The YAML the command prints for ``specs``."""
    kinds: dict[tuple[str, str], list[type[CustomResource]]] = {}
    for spec in specs:
        model = load_model(spec)
        resource = model.api_resource
        kinds.setdefault((resource.group, resource.kind), []).append(model)
    return to_yaml(*(crd(*models) for models in kinds.values()))


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: python -m kube_runtime crd module:Model [module:Model ...]", file=sys.stderr)
        return 2
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: the current directory's modules are importable
    try:
        sys.stdout.write(crd_command(argv))
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
