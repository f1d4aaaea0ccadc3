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
