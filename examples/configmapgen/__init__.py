"""configmapgen: a controller whose ``ConfigMapGenerator`` objects each own a generated ConfigMap.

A runnable example of the runtime: a CRD, an owned child, a finalizer, events, per-object backoff
and (optionally) leader election. See ``main.py`` for how to run it.
"""
