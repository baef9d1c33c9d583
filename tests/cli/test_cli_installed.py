"""Installed from a wheel, run from another folder: the base maps and code tables come with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

SAMPLE = REPO / "samples" / "x12" / "855-4010-medsupply-ack.edi"


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv (seeing the installed dependencies) with the gateway's wheel, built from this checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the checkout")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    # Build from a clean copy of the tracked files: what a release would ship, no build leftovers.
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        path = REPO / name.decode()
        if path.is_file():
            (src / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name.decode())
    wheels = base / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    env_dir = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    wheel = next(wheels.glob("hospital_edi_gateway-*.whl"))
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    return env_dir


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GATEWAY_HOME")}
    return subprocess.run(
        [str(venv / "bin" / "gateway"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_carries_the_maps_and_translates_from_another_folder(venv: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import gateway.resources as r; print(r.__file__, r.shipped_maps())"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[0].startswith(str(venv)), f"the venv's gateway is imported, not the checkout's: {where}"
    assert where[1].startswith(str(venv)) and where[1].endswith("_maps"), where
    assert not list(Path(where[1]).rglob("cases")), "golden cases are not shipped"
    sample = tmp_path / "in.edi"
    shutil.copy(SAMPLE, sample)
    result = _run(venv, "translate", "--json", str(sample), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["results"][0]["map"] == "x12-855-004010"
    assert doc["results"][0]["document"]["po_number"]


def test_init_lays_out_a_deployment_that_runs(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "edi"
    result = _run(venv, "init", str(home), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in home.iterdir()} >= {"gateway.yaml", "partners", "inbox", "outbox", "var"}
    again = _run(venv, "init", str(home), cwd=tmp_path)
    assert again.returncode == 2 and "already a deployment" in again.stderr
    shutil.copy(REPO / "partners" / "medsupply.yaml", home / "partners")
    shutil.copytree(
        REPO / "partners" / "medsupply", home / "partners" / "medsupply", ignore=shutil.ignore_patterns("cases")
    )
    lint = _run(venv, "partners", "lint", cwd=home)
    assert lint.returncode == 0, lint.stderr
    (home / "inbox" / "medsupply").mkdir()
    shutil.copy(SAMPLE, home / "inbox" / "medsupply" / "ack.edi")
    run = _run(venv, "run", "--once", cwd=home)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "translated   1 document(s)" in run.stdout
    assert list((home / "outbox" / "canonical").rglob("*.json"))
