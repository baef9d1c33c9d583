"""How a ``gateway`` process ends (gateway.cli.ending): a ``gateway run`` that finished its work ends at once,
its summary and logs flushed and its exit code kept; anything else, and a run under a profiler, ends the
usual way (the interpreter's teardown, atexit handlers run)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO

# A `gateway` process as the installed program runs it (gateway.cli.main:entry), with an atexit handler
# that tells whether the interpreter's teardown ran; PROFILED: under a profile function, as cProfile sets.
PROGRAM = """
import atexit, os, sys
atexit.register(lambda: print("TEARDOWN", file=sys.stderr, flush=True))
if os.environ.get("PROFILED"):
    sys.setprofile(lambda *a: None)
from gateway.cli.main import entry
sys.argv[0] = "gateway"
entry()
"""


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(REPO / "maps", home / "maps")
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    return home


def _gateway(*args: str, profiled: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROFILED": "1"} if profiled else None
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_a_finished_run_ends_without_teardown_and_keeps_its_summary_and_exit_code(tmp_path: Path) -> None:
    home = _home(tmp_path)
    inbox = home / "inbox" / "medsupply"
    inbox.mkdir(parents=True)
    (inbox / "junk.edi").write_bytes(b"ISA*00*not an interchange~")  # quarantined: exit 1
    (inbox / "asn.edi").write_bytes((REPO / "samples" / "x12" / "856-4010-medsupply-asn.edi").read_bytes())
    done = _gateway("run", "--once", "-v", "--home", str(home))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "TEARDOWN" not in done.stderr
    assert "received     2 file(s)" in done.stdout and "quarantined  1 file(s)" in done.stdout, done.stdout
    assert "exit 1:" in done.stderr and "ledger writes:" in done.stderr  # what was logged last is there

    again = _gateway("run", "--once", "--home", str(home))  # nothing left: exit 0, still no teardown
    assert again.returncode == 0 and "TEARDOWN" not in again.stderr, again.stderr[-3000:]
    assert "received     0 file(s)" in again.stdout


def test_other_commands_and_a_profiled_run_end_the_usual_way(tmp_path: Path) -> None:
    home = _home(tmp_path)
    (home / "inbox").mkdir()
    profiled = _gateway("run", "--once", "--home", str(home), profiled=True)
    assert profiled.returncode == 0 and "TEARDOWN" in profiled.stderr, profiled.stderr[-3000:]
    status = _gateway("status", "--home", str(home))
    assert status.returncode == 0 and "TEARDOWN" in status.stderr, status.stderr[-3000:]
    (home / "gateway.yaml").write_text("processing: {batch: many}\n", "utf-8")  # a configuration error: exit 2
    broken = _gateway("run", "--once", "--home", str(home))
    assert broken.returncode == 2 and "TEARDOWN" in broken.stderr, broken.stderr[-3000:]


def test_a_service_stopped_by_sigterm_ends_the_usual_way(tmp_path: Path) -> None:
    """(Python's end lets what a pool's thread still does, an SFTP download, finish: no fast exit there.)"""
    home = _home(tmp_path)
    (home / "inbox").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "run", "-v", "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # until it watches the inbox
            lines.append(line)
            if "watching" in line:
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + err
    assert "TEARDOWN" in err, "".join(lines) + err
