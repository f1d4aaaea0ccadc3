"""kopf, a framework nobody here wrote, as a real operator process against both servers.

``kopf run --standalone --namespace=<ns>`` (no peering, no cluster-wide watches) runs
``kopf_operator.py``; the test drives objects with plain HTTP and waits for what the operator does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.witnesses.conftest import Target
from tests.witnesses.kopf_operator import HANDLED, SEEN

OPERATOR = Path(__file__).with_name("kopf_operator.py")
MERGE = {"Content-Type": "application/merge-patch+json"}
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


def wait(what: str, predicate: Callable[[], Any], within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def operator(target: Target, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """The running operator; yields its log file. Stopped with SIGTERM, which kopf handles."""
    log = tmp_path / "kopf.log"
    env = {**os.environ, "KUBECONFIG": str(target.kubeconfig)}
    cmd = [sys.executable, "-m", "kopf", "run", "--standalone", f"--namespace={namespace}", str(OPERATOR)]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode is not None


def test_kopf_handles_a_labelled_object(target: Target, namespace: str, operator: Path) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with target.http() as http:

        def get(name: str) -> dict[str, Any] | None:
            resp = http.get(f"{path}/{name}")
            return resp.json() if resp.status_code == 200 else None

        def post(name: str, labels: dict[str, str]) -> None:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}
            body["data"] = {"k": "1"}
            resp = http.post(path, json=body)
            assert resp.status_code == 201, resp.text

        post("ignored", {"witness": "other"})
        post("handled", {"witness": "kopf"})
        try:
            obj = wait("the create handler", lambda: _annotated(get("handled"), HANDLED))
        except AssertionError:
            raise AssertionError(operator.read_text()[-4000:]) from None
        assert obj["data"]["handled"] == "yes"
        assert KOPF_FINALIZER in obj["metadata"]["finalizers"]
        resp = http.patch(f"{path}/handled", json={"data": {"k": "2"}}, headers=MERGE)
        assert resp.status_code == 200, resp.text
        wait("the field handler", lambda: _annotated(get("handled"), SEEN, "2"))
        resp = http.delete(f"{path}/handled")
        assert resp.status_code == 200, resp.text
        wait("kopf to release its finalizer", lambda: get("handled") is None)
        ignored = get("ignored")
        assert ignored is not None
        assert HANDLED not in (ignored["metadata"].get("annotations") or {})
        assert not ignored["metadata"].get("finalizers")
        log = operator.read_text()
        problems = [line for line in log.splitlines() if "[ERROR" in line or "[WARNING" in line]
        assert not problems, log[-4000:]
        assert "Traceback" not in log, log[-4000:]


def _annotated(obj: dict[str, Any] | None, key: str, value: str = "yes") -> dict[str, Any] | None:
    if obj is None or (obj["metadata"].get("annotations") or {}).get(key) != value:
        return None
    return obj
