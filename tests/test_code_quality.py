"""The package stays `mypy --strict` and `ruff` clean: checked as part of the test suite so CI
and the README's test command enforce it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_mypy_strict_on_the_package() -> None:
    result = _run("mypy")  # strict, packages = ["kube_runtime"]: see [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_check() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_600_lines() -> None:
    """Small modules that each own one idea: a module past 600 lines is split, not grown."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in (ROOT / "kube_runtime").rglob("*.py")
    }
    assert sizes, "no modules found"
    assert {path: n for path, n in sizes.items() if n > 600} == {}
