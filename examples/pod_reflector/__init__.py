"""pod_reflector: a watcher, a reflector and a store, with no controller (see ``main.py``)."""
