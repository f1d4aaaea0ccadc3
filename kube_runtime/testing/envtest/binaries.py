"""Where the envtest binaries are: ``$KUBE_RUNTIME_ENVTEST_BIN`` or the newest cached build.

Guarantees: :meth:`EnvtestBinaries.locate` either returns executable paths or raises
:class:`MissingEnvtestBinaries` naming every missing one (and where it looked). Pitfall: the cache is
filled by ``scripts/build-envtest.sh``; nothing here downloads or builds anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BIN_DIR_ENV",
    "CACHE_DIR_ENV",
    "REQUIRE_ENV",
    "EnvtestBinaries",
    "EnvtestError",
    "MissingEnvtestBinaries",
    "default_bin_dir",
]


BIN_DIR_ENV = "KUBE_RUNTIME_ENVTEST_BIN"
#: Set (to anything but "" or "0") to make missing binaries fail the envtest tests instead of skipping them.
REQUIRE_ENV = "KUBE_RUNTIME_REQUIRE_ENVTEST"
CACHE_DIR_ENV = "KUBE_RUNTIME_ENVTEST_DIR"


class EnvtestError(RuntimeError):
    """A control-plane process failed to start, died, or did not become ready in time."""


class MissingEnvtestBinaries(EnvtestError):
    """Required binaries are not where they were looked for; ``.missing`` names them."""

    def __init__(self, bin_dir: Path, missing: Sequence[str]) -> None:
        self.bin_dir = bin_dir
        self.missing = tuple(missing)
        super().__init__(
            f"envtest binaries missing: {', '.join(self.missing)} (looked in {bin_dir}; "
            f"build them with scripts/build-envtest.sh or set {BIN_DIR_ENV})"
        )


def _cache_root() -> Path:
    root = os.environ.get(CACHE_DIR_ENV)
    return Path(root) if root else Path.home() / ".cache" / "kube-runtime" / "envtest"


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (-1,)


def default_bin_dir() -> Path:
    """``$KUBE_RUNTIME_ENVTEST_BIN``, else the newest cached version's ``bin`` that has kube-apiserver."""
    explicit = os.environ.get(BIN_DIR_ENV)
    if explicit:
        return Path(explicit)
    root = _cache_root()
    candidates = sorted(
        (d for d in root.glob("*/bin") if (d / "kube-apiserver").is_file()),
        key=lambda d: _version_key(d.parent.name),
    )
    return candidates[-1] if candidates else root / "<k8s-version>" / "bin"


@dataclass(frozen=True)
class EnvtestBinaries:
    """Paths of the control-plane binaries; ``kube_controller_manager`` is optional."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path | None = None

    @classmethod
    def locate(
        cls, bin_dir: Path | str | None = None, *, controller_manager: bool = False
    ) -> EnvtestBinaries:
        """Find the binaries in ``bin_dir`` (default :func:`default_bin_dir`).

        Raises :class:`MissingEnvtestBinaries` naming every required binary that is not an executable file.
        """
        directory = Path(bin_dir) if bin_dir is not None else default_bin_dir()
        names = ["kube-apiserver", "etcd"] + (["kube-controller-manager"] if controller_manager else [])
        missing = [n for n in names if not os.access(directory / n, os.X_OK) or not (directory / n).is_file()]
        if missing:
            raise MissingEnvtestBinaries(directory, missing)
        kcm = directory / "kube-controller-manager"
        return cls(
            etcd=directory / "etcd",
            kube_apiserver=directory / "kube-apiserver",
            kube_controller_manager=kcm if os.access(kcm, os.X_OK) else None,
        )
