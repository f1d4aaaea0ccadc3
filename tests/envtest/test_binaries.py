"""Locating the envtest binaries (no binaries needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kube_runtime.testing.envtest import (
    BIN_DIR_ENV,
    CACHE_DIR_ENV,
    EnvtestBinaries,
    MissingEnvtestBinaries,
    default_bin_dir,
)


def make_executable(path: Path) -> None:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def test_missing_binaries_are_named(tmp_path: Path) -> None:
    make_executable(tmp_path / "etcd")
    with pytest.raises(MissingEnvtestBinaries) as info:
        EnvtestBinaries.locate(tmp_path, controller_manager=True)
    assert info.value.missing == ("kube-apiserver", "kube-controller-manager")
    assert "kube-apiserver, kube-controller-manager" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_explicit_bin_dir_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BIN_DIR_ENV, str(tmp_path / "explicit"))
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    assert default_bin_dir() == tmp_path / "explicit"


def test_default_bin_dir_is_newest_cached_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BIN_DIR_ENV, raising=False)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    for version in ("1.9.0", "1.34.10", "1.34.2"):
        (tmp_path / version / "bin").mkdir(parents=True)
        make_executable(tmp_path / version / "bin" / "kube-apiserver")
    (tmp_path / "1.99.0" / "bin").mkdir(parents=True)  # no binaries: not a candidate
    assert default_bin_dir() == tmp_path / "1.34.10" / "bin"
    make_executable(tmp_path / "1.34.10" / "bin" / "etcd")
    binaries = EnvtestBinaries.locate()
    assert binaries.kube_apiserver == tmp_path / "1.34.10" / "bin" / "kube-apiserver"
    assert binaries.kube_controller_manager is None
