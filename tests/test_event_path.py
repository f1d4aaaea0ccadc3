"""The path one watch event takes is the one docs/architecture.md names, module by module.

A profile hook records, in the controller's own tasks (its trigger driver and runner workers),
each kube_runtime module that is handed the event (called with a value carrying it, or returning
or yielding one) from the socket read to the user's reconcile call. Consecutive entries of one
module collapse (a fast path inside a module is fine). The result must equal the documented path,
with no module visited twice; the modules the path calls along the way (the store's writer and
reads, value types) must be the ones the document lists.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.client.head import LazyObject
from kube_runtime.controller import Action, Controller
from kube_runtime.testing.server import ApiServer
from tests.controller.conftest import CONFIG_MAP

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
MARKER = "path-probe-4f2c"
#: Only the MODIFIED event carries this (the name also appears in the earlier list).
CHANGE = "changed-9b1e"


_MODULE = re.compile(r"`((?:[a-z_]+/)*[a-z_]+\.py)`")


def paragraph(label: str) -> str:
    text = DOC.read_text()
    start = text.index(label)
    return text[start : text.index("\n\n", start)]


def documented_path() -> list[str]:
    """The first module named in each ``->`` step of the path paragraph."""
    steps = paragraph("One watch event travels:").split("->")
    return [found[0] for step in steps if (found := _MODULE.findall(step))]


def documented_helpers() -> set[str]:
    return set(_MODULE.findall(paragraph("Called along the way")))


def module_path(module: str) -> str:
    return module.removeprefix("kube_runtime.").replace(".", "/") + ".py"


def carries(value: Any, marker: str = MARKER) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return marker.encode() in bytes(value)
    # An event's object travels as its JSON bytes (a LazyObject) until something decodes it.
    lazy = value if isinstance(value, LazyObject) else getattr(type(value), "lazy", None) and value.lazy
    if isinstance(lazy, LazyObject):
        return marker.encode() in lazy.raw
    if isinstance(value, (str, int, float, bool, type(None))):
        return False
    try:
        return marker in repr(value)
    except Exception:
        return False


def yielded_by_async_generator(arg: Any) -> bool:
    """An async generator's ``yield`` reaches the profiler as a wrapper hiding the value."""
    return type(arg).__name__ == "async_generator_wrapped_value"


def record_path(log: list[str], done: list[bool]) -> Any:
    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if done or event not in ("call", "return"):
            return
        module = frame.f_globals.get("__name__", "")
        if module == __name__ and frame.f_code.co_name == "reconcile" and event == "call":
            log.append("reconcile")
            done.append(True)
            return
        if not module.startswith("kube_runtime.") or module.startswith("kube_runtime.testing"):
            return
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return
        # No task: a callback of the event loop itself, such as a watch connection's protocol
        # being handed the bytes read from its socket.
        if task is not None and not (
            (name := task.get_name()).startswith("trigger ") or "Runner._worker" in name
        ):
            return
        if event == "return" and yielded_by_async_generator(arg):
            # The value is hidden: the frame hands on the change if a local holds it.
            handed = any(carries(value, CHANGE) for value in frame.f_locals.values())
        elif event == "return":
            handed = carries(arg)
        else:
            code = frame.f_code
            handed = any(
                carries(frame.f_locals.get(var))
                for var in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
                if var != "self"
            )
        if handed:
            log.append(module_path(module))

    return hook


@pytest.fixture
def anyio_backend() -> Any:
    return "asyncio"


async def test_one_modified_event_travels_the_documented_path(api_server: ApiServer) -> None:
    path = documented_path()
    along_the_way = documented_helpers()
    api = Api(api_server.client, CONFIG_MAP, "default")
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": MARKER}, "data": {}})
    log: list[str] = []
    done: list[bool] = []
    first = anyio.Event()
    reached = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        first.set()
        if done:
            reached.set()
        return Action.await_change()

    async def drain(results: Any) -> None:
        async for _ in results:
            pass

    controller = Controller(api).with_config(concurrency=2)
    async with controller.run(reconcile, None, None) as results, anyio.create_task_group() as tg:
        tg.start_soon(drain, results)
        await first.wait()
        sys.setprofile(record_path(log, done))
        try:
            await api.patch(MARKER, {"data": {"k": CHANGE}})  # one MODIFIED event
            with anyio.fail_after(10):
                await reached.wait()
        finally:
            sys.setprofile(None)
        tg.cancel_scope.cancel()

    steps = [step for step in log if step == "reconcile" or step in path]
    collapsed = [step for i, step in enumerate(steps) if i == 0 or steps[i - 1] != step]
    assert collapsed == [*path, "reconcile"], log
    assert len(set(collapsed)) == len(collapsed)  # no module visited twice
    assert {step for step in log if step not in path and step != "reconcile"} <= along_the_way
