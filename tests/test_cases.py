"""Golden cases pin business-level warnings: a case whose output warns fails unless its entry lists
the codes under ``"warnings"`` (gateway/cases.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from gateway.cases import Case, run_case
from gateway.workspace import Workspace, load_workspace

INVOICE = REPO / "partners" / "medsupply" / "cases" / "810-invoice.edi"


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return load_workspace(REPO)


def _case(tmp_path: Path, data: bytes, expected: list[dict]) -> Case:
    source = tmp_path / "810-ctt.edi"
    source.write_bytes(data)
    source.with_suffix(".json").write_text(json.dumps(expected), "utf-8")
    return Case("medsupply/810-ctt", source, source.with_suffix(".json"), partner="medsupply")


def test_a_case_that_warns_fails_until_its_warnings_are_expected(ws: Workspace, tmp_path: Path) -> None:
    expected = json.loads(INVOICE.with_suffix(".json").read_text("utf-8"))
    assert all("warnings" not in entry for entry in expected)
    clean = run_case(ws, _case(tmp_path, INVOICE.read_bytes(), expected))
    assert clean.passed, clean.diff  # no warning: the entry has no "warnings" key
    warns = INVOICE.read_bytes().replace(b"CTT*3~", b"CTT*4~")  # 3 IT1 lines: BIZ-001
    result = run_case(ws, _case(tmp_path, warns, expected))
    assert not result.passed and any('"warnings"' in line and line.startswith("+") for line in result.diff)
    assert result.actual[0]["warnings"] == ["BIZ-001"]
    pinned = [{**expected[0], "warnings": ["BIZ-001"]}]
    assert run_case(ws, _case(tmp_path, warns, pinned)).passed
    wrong = [{**expected[0], "warnings": ["BIZ-002"]}]
    assert not run_case(ws, _case(tmp_path, warns, wrong)).passed
    # --update writes the codes it found, for review.
    case = _case(tmp_path, warns, expected)
    assert run_case(ws, case, update=True).passed
    assert json.loads(case.expected.read_text("utf-8"))[0]["warnings"] == ["BIZ-001"]
