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
    code = "import sys, kube_runtime; print('kube_runtime.observe' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
