"""Testing support: an embedded API server, a virtual clock, and a real-apiserver harness."""

from kube_runtime.testing.server import ApiServer

__all__ = ["ApiServer"]
