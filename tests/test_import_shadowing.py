"""A public name means one thing in every import order.

Importing a submodule sets an attribute of that name on its package, after the submodule ran. A
package that re-exports a *function* of the same name (``kube_runtime.watcher`` the subpackage and
``watcher()`` the function) must bind the function eagerly, after importing the submodule, or the
function silently turns into a module in some import orders: ``from kube_runtime import
WatcherConfig, watcher`` then returned the subpackage in 3 of 4 orders.

Each permutation runs in a fresh process: a driver imports the third-party dependencies once (so a
fork is cheap), then forks a child per permutation, which imports kube_runtime for the first time.
"""

from __future__ import annotations

import importlib
import itertools
import json
import pkgutil
import subprocess
import sys

import kube_runtime

#: Statements whose order matters: submodule imports (``import kube_runtime.watcher.state`` style)
#: and from-imports of the colliding names, at the top level and in the subpackages.
STATEMENTS = [
    "from kube_runtime import WatcherConfig, watcher, store, finalizer, reflector",
    "import kube_runtime.watcher.state",
    "import kube_runtime.store.reflector, kube_runtime.store.store, kube_runtime.finalizer",
    "from kube_runtime.store import reflector as s_reflector, store as s_store",
]

_DRIVER = r"""
import importlib, itertools, json, os, sys, types
import anyio, httpx, orjson, prometheus_client, structlog  # noqa: F401  (shared by every child)
import opentelemetry.trace  # noqa: F401
assert not any(name.startswith("kube_runtime") for name in sys.modules)
statements, collisions = json.loads(sys.argv[1])
failures = []
for order in itertools.permutations(statements):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        problems = []
        try:
            scope = {}
            for statement in order:
                exec(statement, scope)
            for bound, value in scope.items():
                if isinstance(value, types.ModuleType) and bound not in ("__builtins__", "kube_runtime"):
                    problems.append(f"{bound} is the module {value.__name__}")
            for package, name in collisions:
                value = getattr(importlib.import_module(package), name)
                if isinstance(value, types.ModuleType):
                    problems.append(f"{package}.{name} is the module {value.__name__}")
        except BaseException as exc:
            problems.append(f"raised {exc!r}")
        os.write(write, json.dumps(problems).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        problems = json.loads(pipe.read() or b'["child died"]')
    os.waitpid(pid, 0)
    if problems:
        failures.append({"order": list(order), "problems": problems})
print(json.dumps(failures))
"""


#: Submodules exported as themselves, on purpose.
MODULE_EXPORTS = {("kube_runtime", "predicates")}


def colliding_names() -> list[tuple[str, str]]:
    """Every (package, name) where the package exports ``name`` and has a submodule ``name``,
    except the deliberate :data:`MODULE_EXPORTS`."""
    packages = ["kube_runtime"] + [
        info.name
        for info in pkgutil.walk_packages(kube_runtime.__path__, "kube_runtime.")
        if info.ispkg and not info.name.startswith("kube_runtime.testing")
    ]
    found = []
    for package in packages:
        module = importlib.import_module(package)
        submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
        for name in sorted(set(getattr(module, "__all__", ())) & submodules):
            if (package, name) not in MODULE_EXPORTS:
                found.append((package, name))
    return found


def test_the_collisions_are_found() -> None:
    # The check below covers whatever this finds; this pins that the search works.
    assert {
        ("kube_runtime", "finalizer"),
        ("kube_runtime", "store"),
        ("kube_runtime", "watcher"),
        ("kube_runtime.store", "reflector"),
        ("kube_runtime.store", "store"),
        ("kube_runtime.watcher", "watcher"),
        ("kube_runtime.controller", "runner"),
        ("kube_runtime.controller", "scheduler"),
        ("kube_runtime.observe", "watch_metrics"),
    } <= set(colliding_names())


def test_every_import_order_binds_the_functions() -> None:
    payload = json.dumps([STATEMENTS, colliding_names()])
    out = subprocess.run(
        [sys.executable, "-c", _DRIVER, payload], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    failures = json.loads(out)
    count = len(list(itertools.permutations(STATEMENTS)))
    assert failures == [], f"{len(failures)} of {count} import orders bind a module: {failures[:3]}"
