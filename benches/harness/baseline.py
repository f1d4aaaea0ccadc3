"""kube-runtime as of another git revision, run as one more peer beside the working tree's."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from harness.peers import PEERS, Peer

__all__ = ["Baseline"]

REPO = Path(__file__).resolve().parent.parent.parent


class Baseline:
    """The ``kube_runtime`` package of revision ``rev``, extracted with ``git archive`` into a
    temporary directory (removed when this object goes away). Its peer runs the working tree's peer
    script against that package, so both rows of a scenario differ only in the runtime's code."""

    def __init__(self, rev: str) -> None:
        self.rev = rev
        self.commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", rev], check=True, capture_output=True, text=True
        ).stdout.strip()
        self._dir = tempfile.TemporaryDirectory(prefix=f"kube-runtime-{self.commit}-")
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", rev, "kube_runtime"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(self._dir.name, filter="data")

    def peer(self) -> Peer:
        ours = PEERS["kube-runtime"]
        return dataclasses.replace(
            ours,
            name=f"kube-runtime@{self.commit}",
            library=f"kube-runtime at {self.rev} ({self.commit})",
            source=self._dir.name,
        )
