"""Quality gates run with the tests: ruff, mypy (strict on the pure core), import layering."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "cmd",
    [
        (sys.executable, "-m", "ruff", "check", "gateway", "tests", "bench"),
        (sys.executable, "-m", "ruff", "format", "--check", "gateway"),
        (sys.executable, "-m", "mypy", "gateway"),
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_gate(cmd: tuple[str, ...]) -> None:
    proc = _run(*cmd)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_layering() -> None:
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extra"
    proc = _run(exe)
    assert proc.returncode == 0, proc.stdout + proc.stderr
