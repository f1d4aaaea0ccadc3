"""``mypy --strict`` accepts the documented uses of every public helper (docs_usage.py) and every
example, with no cast, and gives the stream helpers the item types stream_types.py pins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "target",
    [["tests/typecheck/docs_usage.py"], ["tests/typecheck/stream_types.py"], ["-p", "examples"]],
    ids=["docs-usage", "stream-types", "examples"],
)
def test_mypy_strict_passes(target: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *target],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_cast_in_examples_or_the_usage_file() -> None:
    typecheck = REPO / "tests" / "typecheck"
    sources = [
        typecheck / "docs_usage.py",
        typecheck / "stream_types.py",
        *sorted((REPO / "examples").rglob("*.py")),
    ]
    casts = [str(path.relative_to(REPO)) for path in sources if "cast(" in path.read_text()]
    assert casts == []
