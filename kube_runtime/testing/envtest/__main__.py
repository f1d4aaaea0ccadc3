"""``python -m kube_runtime.testing.envtest``."""

from kube_runtime.testing.envtest.cli import main

main()
