"""Run Debian's promtool (package `prometheus`) on rule files, rule unit tests and bare expressions."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

__all__ = [
    "PromtoolResult",
    "check_config",
    "check_expressions",
    "check_rules",
    "promtool_binary",
    "test_rules",
]


@dataclass(frozen=True)
class PromtoolResult:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def promtool_binary() -> str:
    """The promtool path; skips the calling test, naming the binary, when it is not installed."""
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if found is None:
        pytest.fail("promtool binary not found (install Debian's `prometheus` package)", pytrace=False)
    return found


def _run(*args: str | Path) -> PromtoolResult:
    proc = subprocess.run(
        [promtool_binary(), *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    return PromtoolResult(proc.returncode, proc.stdout + proc.stderr)


def check_rules(*paths: Path) -> PromtoolResult:
    return _run("check", "rules", *paths)


def check_config(path: Path) -> PromtoolResult:
    return _run("check", "config", path)


def test_rules(*paths: Path) -> PromtoolResult:
    return _run("test", "rules", *paths)


test_rules.__test__ = False  # type: ignore[attr-defined]  # not a pytest test function


def check_expressions(expressions: dict[str, str]) -> PromtoolResult:
    """Parse each expression with Prometheus's PromQL parser (as recording rules named by the keys)."""
    rules = [
        {"record": f"check:expression_{i}:value", "expr": expr} for i, expr in enumerate(expressions.values())
    ]
    labels = list(expressions)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "expressions.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}))
        result = check_rules(path)
    # Map promtool's rule indexes back to the caller's names to make failures readable.
    index = "\n".join(f"  expression_{i}: {name}" for i, name in enumerate(labels))
    return PromtoolResult(result.returncode, f"{result.output}\nexpressions:\n{index}")
