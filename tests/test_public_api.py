"""The top-level package re-exports the public API lazily, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kube_runtime


def test_every_exported_name_resolves_to_its_layer() -> None:
    for name in kube_runtime.__all__:
        value = getattr(kube_runtime, name)
        assert value is not None, name
    assert kube_runtime.Apply.__module__ == "kube_runtime.watcher.event"
    assert kube_runtime.Controller.__module__ == "kube_runtime.controller.controller"


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        kube_runtime.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_does_not_import_every_layer() -> None:
    # watcher/store/finalizer (and so client and controller) are imported eagerly since their
    # functions must win over their same-named submodules in every import order (see
    # tests/test_import_shadowing.py); the observability server and the test kit stay lazy.
    layers = ["kube_runtime.observe", "uvicorn", "kube_runtime.testing", "kube_runtime.watcher"]
    code = f"import sys, kube_runtime; print(*[m in sys.modules for m in {layers!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False", "True"]


def _public_names() -> dict[str, dict[int, list[str]]]:
    """Every name in some module's ``__all__`` -> the distinct objects it names -> those modules."""
    import importlib
    import pkgutil

    found: dict[str, dict[int, list[str]]] = {}
    for info in pkgutil.walk_packages(kube_runtime.__path__, "kube_runtime."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            value = module.__dict__.get(name, getattr(module, name, None))
            found.setdefault(name, {}).setdefault(id(value), []).append(info.name)
    return found


def test_no_public_name_means_two_things() -> None:
    """A name exported by two modules is the same object in both (a re-export), never two things:
    a reader meeting ``Apply`` or ``Event`` must not have to ask which one. The embedded API server's
    internals count too (their exports are public API of the test kit)."""
    clashes = {
        name: sorted(module for modules in objects.values() for module in modules)
        for name, objects in _public_names().items()
        if len(objects) > 1
    }
    assert clashes == {}
