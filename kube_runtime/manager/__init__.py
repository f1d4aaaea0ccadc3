"""Run a process's controllers from one object: :class:`Manager`, configured by
:class:`ManagerOptions` (the Helm chart's flags). See :mod:`kube_runtime.manager.manager`."""

from kube_runtime.manager.event_loop import EventLoopChoice, run_event_loop, uses_uvloop
from kube_runtime.manager.manager import Manager
from kube_runtime.manager.options import ManagerOptions

__all__ = ["EventLoopChoice", "Manager", "ManagerOptions", "run_event_loop", "uses_uvloop"]
