"""The command line, as a user runs it (click's runner and a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main

SAMPLES = REPO / "samples" / "x12"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_validate_valid_files_exit_0() -> None:
    code, out = run("validate", *map(str, sorted(SAMPLES.glob("*.edi"))))
    assert code == 0, out
    assert "5 files (0 invalid)" in out


def test_validate_invalid_exit_1_with_located_errors() -> None:
    code, out = run("validate", str(SAMPLES / "bad" / "855-errors.edi"))
    assert code == 1
    assert "error [X12-V201]" in out and "BAK #2 (byte 174) > element 03" in out


def test_not_x12_one_clear_line() -> None:
    code, out = run("validate", str(SAMPLES / "bad" / "not-x12.txt"))
    assert code == 1
    assert out.strip().splitlines() == [
        f"{SAMPLES / 'bad' / 'not-x12.txt'}: not X12: the file does not start with an ISA segment"
    ]
    assert "Traceback" not in out


def test_json_and_quiet() -> None:
    code, out = run("validate", "--json", str(SAMPLES / "bad" / "855-errors.edi"))
    assert code == 1
    doc = json.loads(out)
    finding = doc["files"][0]["interchanges"][0]["groups"][0]["sets"][0]["findings"][0]
    assert {"code", "severity", "message", "location"} <= set(finding)
    assert doc["totals"]["rejected"] == 1
    code, out = run("validate", "-q", str(SAMPLES / "850-4010-mercy-to-medsupply.edi"))
    assert code == 0 and out.count("\n") == 1


def test_usage_errors_exit_2() -> None:
    assert run("validate")[0] == 2
    assert run("validate", "no/such/file.edi")[0] == 2


def test_ack_command() -> None:
    code, out = run("ack", str(SAMPLES / "bad" / "855-errors.edi"))
    assert code == 0
    assert "ST*997*" in out and "AK5*R" in out and "AK9*R*1*1*0~" in out


def test_console_script_in_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", "validate", "-q", str(SAMPLES / "856-4010-medsupply-asn.edi")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 accepted, 0 rejected" in proc.stdout


def test_the_samples_script_drops_into_another_deployment(tmp_path: Path) -> None:
    """`sh samples/drop-samples.sh DIR` fills DIR/inbox (a deployment made with `gateway init`), not only the
    repository's own inbox, and says how many files it dropped."""
    done = subprocess.run(
        ["sh", str(REPO / "samples" / "drop-samples.sh"), str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    dropped = [p for p in (tmp_path / "inbox").rglob("*") if p.is_file()]
    assert done.stdout.strip() == f"dropped {len(dropped)} files into {tmp_path}/inbox/"
    assert (tmp_path / "inbox" / "medsupply").is_dir() and (tmp_path / "inbox" / "empty-upload.edi").exists()
