"""Every snippet of docs/writing-an-operator.md is checked: the operator's Python blocks are
verbatim excerpts of examples/website.py (which tests/examples/test_website.py runs as a process),
the test files run with pytest, the CRD printer runs and kubectl applies its output to the embedded
API server, and ``helm template`` renders the chart with the values shown."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import yaml

from kube_runtime.client import Api, ApiResource
from kube_runtime.testing.server import ApiServer
from tests.ops.test_chart import CHART, helm_binary

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "docs" / "writing-an-operator.md").read_text()
EXAMPLE = (REPO / "examples" / "website.py").read_text()
BLOCKS: list[tuple[str, str]] = re.findall(r"```(\w+)\n(.*?)```", GUIDE, re.S)


def python_blocks(*, tests: bool) -> list[str]:
    return [code for lang, code in BLOCKS if lang == "python" and code.startswith("# tests/") == tests]


def shell_commands() -> list[str]:
    return [line for lang, code in BLOCKS if lang == "sh" for line in code.splitlines() if line.strip()]


def values_files() -> dict[str, str]:
    files = {}
    for lang, code in BLOCKS:
        if lang == "yaml":
            first, _, rest = code.partition("\n")
            files[first.removeprefix("# ").strip()] = rest
    return files


def test_every_snippet_is_checked_by_one_of_these_tests() -> None:
    checked = len(python_blocks(tests=False)) + len(python_blocks(tests=True))
    checked += sum(1 for lang, _ in BLOCKS if lang in ("sh", "yaml"))
    assert checked == len(BLOCKS), [lang for lang, _ in BLOCKS]
    assert len(python_blocks(tests=False)) >= 5
    assert len(python_blocks(tests=True)) == 2


def test_operator_snippets_are_excerpts_of_the_example() -> None:
    for code in python_blocks(tests=False):
        assert textwrap.dedent(code) in EXAMPLE, f"not in examples/website.py:\n{code}"


def test_the_test_snippets_pass_and_type_check(tmp_path: Path) -> None:
    for code in python_blocks(tests=True):
        name = code.splitlines()[0].removeprefix("# tests/").strip()
        (tmp_path / name).write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(tmp_path),
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b2 passed\b", done.stdout), done.stdout[-2000:]
    typed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            *map(str, sorted(tmp_path.glob("*.py"))),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert typed.returncode == 0, typed.stdout + typed.stderr


async def test_the_crd_command_output_applies_with_kubectl(tmp_path: Path) -> None:
    (command,) = [c for c in shell_commands() if c.startswith("python -m kube_runtime crd")]
    argv, _, target = command.partition(" > ")
    printed_run = await anyio.run_process([sys.executable, *shlex.split(argv)[1:]], cwd=REPO, check=True)
    printed = printed_run.stdout.decode()
    (tmp_path / target.strip()).write_text(printed)
    crd: dict[str, Any] = yaml.safe_load(printed)
    assert crd["metadata"]["name"] == "websites.website.kube-runtime.dev"
    (apply,) = [c for c in shell_commands() if c.startswith("kubectl apply")]
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is not installed (scripts/test installs it)"
    async with ApiServer() as server:
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(tmp_path)}
        result = await anyio.run_process(
            [kubectl, f"--cache-dir={tmp_path}", *shlex.split(apply)[1:]], cwd=tmp_path, env=env, check=False
        )
        assert result.returncode == 0, result.stderr.decode()
        stored = await Api(server.client, ApiResource.builtin("CustomResourceDefinition")).get(
            crd["metadata"]["name"]
        )
        assert stored["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_helm_renders_the_chart_with_the_values_shown(tmp_path: Path) -> None:
    for name, text in values_files().items():
        (tmp_path / name).write_text(text)
    (command,) = [c for c in shell_commands() if c.startswith("helm template")]
    args = [
        str(CHART) if arg == "charts/kube-runtime-controller" else arg for arg in shlex.split(command)[1:]
    ]
    rendered = subprocess.run(
        [helm_binary(), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "examples.website"]
    assert "--leader-elect" in container["args"]
    assert deployment["spec"]["replicas"] == 2
    rules = [rule for o in objects if o["kind"] in ("ClusterRole", "Role") for rule in o.get("rules", [])]
    assert any("websites/status" in rule["resources"] for rule in rules)
    assert any("leases" in rule["resources"] for rule in rules)
    assert any("events" in rule["resources"] for rule in rules)
