"""A broken map or profile fails only the partners that use it, and its cause is reported once, alone."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main
from gateway.mapping.problems import MapLoadError
from gateway.workspace import load_workspace


def deployment(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(REPO / "maps", home / "maps")
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    return home


def misspell_medsupply_function(home: Path) -> None:
    path = home / "partners" / "medsupply" / "maps" / "856.yaml"
    text = path.read_text("utf-8")
    assert "fn: xref," in text
    path.write_text(text.replace("fn: xref,", "fn: xrfe,"), "utf-8")


def test_one_misspelt_function_is_one_problem_at_its_place(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    misspell_medsupply_function(home)
    with pytest.raises(MapLoadError) as caught:
        load_workspace(home)
    problems = caught.value.problems
    assert [(p.code, p.mark.source if p.mark else None) for p in problems] == [
        ("MAP-009", "partners/medsupply/maps/856.yaml")
    ], "\n".join(map(str, problems))
    assert "xrfe" in problems[0].message and "did you mean xref" in problems[0].message


def test_partial_workspace_names_only_the_partner_that_uses_the_map(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    misspell_medsupply_function(home)
    ws = load_workspace(home, partial=True)
    assert set(ws.broken) == {"medsupply"}
    assert [p.code for p in ws.broken["medsupply"]] == ["MAP-009"]
    assert ws.library.get("summitmed-856") is not None and ws.library.get("x12-855-004010") is not None
    assert "medsupply-856" in ws.library.broken


def test_a_broken_base_map_takes_down_its_users_without_cascade(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    base = home / "maps" / "x12" / "856-004010.yaml"
    base.write_text(base.read_text("utf-8").replace("fields:", "fields:\n  bogus_key_here: {from: XX01}", 1), "utf-8")
    ws = load_workspace(home, partial=True)
    # medsupply and summitmed both extend the base 004010 856; orthosupply (005010) and the CSV/cXML partners do not.
    assert set(ws.broken) == {"medsupply", "summitmed"}
    assert len(ws.problems) >= 1
    assert all(p.mark is not None and p.mark.source == "maps/x12/856-004010.yaml" for p in ws.problems), ws.problems
    assert not any("is not defined" in p.message for p in ws.problems)


def test_a_broken_profile_is_that_partner_only(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    (home / "partners" / "coastal.yaml").write_text("id: coastal\nname: [unclosed\n", "utf-8")
    ws = load_workspace(home, partial=True)
    assert set(ws.broken) == {"coastal"}
    assert ws.broken["coastal"][0].code == "PRT-001"


def test_run_goes_on_for_the_other_partners_and_the_broken_partner_waits(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    misspell_medsupply_function(home)
    (home / "inbox" / "medsupply").mkdir(parents=True)
    (home / "inbox" / "summitmed").mkdir(parents=True)
    waiting = home / "inbox" / "medsupply" / "asn.edi"
    shutil.copy(REPO / "samples" / "x12" / "856-4010-medsupply-asn.edi", waiting)
    shutil.copy(REPO / "partners" / "summitmed" / "cases" / "856-lot-in-ref.edi", home / "inbox" / "summitmed")
    result = CliRunner().invoke(main, ["run", "--once", "--home", str(home)])
    out = result.output
    assert "partner medsupply is not loaded" in out
    assert "MAP-009 no function named 'xrfe'" in out
    assert "is not defined" not in out
    assert "received     1 file(s)" in out
    assert "not loaded   1 partner(s): medsupply" in out
    assert waiting.exists(), "the broken partner's file waits in its inbox folder"
    assert not list((home / "inbox" / "summitmed").iterdir()), "the other partner's file was taken"
    # Fixed and run again: the waiting file goes through.
    shutil.copy(REPO / "partners" / "medsupply" / "maps" / "856.yaml", home / "partners" / "medsupply" / "maps")
    result = CliRunner().invoke(main, ["run", "--once", "--home", str(home)])
    assert "not loaded" not in result.output and not waiting.exists(), result.output


@pytest.mark.parametrize("once", [True, False])
def test_run_refuses_to_start_on_staging_tables_it_may_not_create_and_says_so(tmp_path: Path, once: bool) -> None:
    # Before, `gateway run` ended in a ConfigError traceback (exit 1), where `gateway deliver` said why.
    home = deployment(tmp_path)
    (home / "var").mkdir()
    sqlite3.connect(home / "var" / "erp.sqlite").close()  # the ERP's database, without the staging tables
    (home / "gateway.yaml").write_text(
        "destinations:\n  erp-staging:\n    type: sql\n    url: 'sqlite:///var/erp.sqlite'\n    upgrade: false\n"
        "routes:\n  - name: everything\n    match: {}\n    to: [erp-staging]\n",
        "utf-8",
    )
    waiting = home / "inbox" / "medsupply" / "asn.edi"
    waiting.parent.mkdir(parents=True)
    shutil.copy(REPO / "samples" / "x12" / "856-4010-medsupply-asn.edi", waiting)
    command = [sys.executable, "-m", "gateway.cli.main", "run", *(["--once"] if once else []), "--home", str(home)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2, run.stderr
    assert "Error: [STG-001] destination 'erp-staging': the staging tables (stg_*) are at revision (none)" in run.stderr
    assert "Traceback" not in run.stderr
    assert waiting.exists(), "the file waits in the inbox"


def lint(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["partners", "lint", *args])
    return result.exit_code, result.output


def test_lint_fails_on_a_folder_with_nothing_to_lint(tmp_path: Path) -> None:
    code, out = lint(str(tmp_path))
    assert code == 2 and "nothing to lint" in out and "ok" not in out


def test_lint_accepts_one_file_and_reports_its_problems(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    misspell_medsupply_function(home)
    code, out = lint(str(home / "partners" / "summitmed.yaml"))
    assert code == 0, out
    assert out.startswith("ok: ")
    # The profile's own maps (partners/medsupply/maps/) belong to it.
    code, out = lint(str(home / "partners" / "medsupply.yaml"))
    assert code == 2 and "MAP-009" in out and "partners not usable: medsupply" in out
    code, out = lint(str(home / "partners" / "medsupply" / "maps" / "856.yaml"))
    assert code == 2 and "856.yaml:8:" in out


def test_lint_a_map_file_outside_any_deployment_against_the_shipped_maps(tmp_path: Path) -> None:
    good = tmp_path / "810.yaml"
    shutil.copy(REPO / "partners" / "summitmed" / "maps" / "810.yaml", good)
    code, out = lint(str(good))
    assert code == 0, out
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text("utf-8").replace("fn: decimal", "fn: decimall"), "utf-8")
    code, out = lint(str(bad))
    assert code == 2 and f"{bad}:" in out and "MAP-009" in out


def test_lint_reports_profile_map_and_outbound_problems_at_once(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    misspell_medsupply_function(home)
    profile = home / "partners" / "orthosupply.yaml"
    profile.write_text(profile.read_text("utf-8") + "bogus_key: 1\n", "utf-8")
    outbound = home / "maps" / "outbound" / "850-005010.yaml"
    outbound.write_text(outbound.read_text("utf-8") + "bogus_out: 1\n", "utf-8")
    code, out = lint(str(home))
    assert code == 2
    lines = [line for line in out.splitlines() if ": " in line and line.split(":")[0].endswith(".yaml")]
    sources = sorted(line.split(":")[0] for line in lines)
    assert sources == [
        "maps/outbound/850-005010.yaml",
        "partners/medsupply/maps/856.yaml",
        "partners/orthosupply.yaml",
    ], out
    assert "is not defined" not in out, "no problem repeated as a false 'not defined'"


def test_partners_test_counts_only_the_partners_own_cases() -> None:
    result = CliRunner().invoke(main, ["partners", "test", "medsupply", "--home", str(REPO)])
    assert result.exit_code == 0, result.output
    names = [line.split()[1] for line in result.output.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert names and all(name.startswith("medsupply/") for name in names), names
    expected = len([p for p in (REPO / "partners" / "medsupply" / "cases").iterdir() if p.suffix == ".edi"])
    assert f"{expected} passed, 0 failed" in result.output


def test_a_broken_code_table_is_reported_once_not_by_every_map_using_it(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    table = home / "maps" / "tables" / "uom.yaml"
    table.write_text(table.read_text("utf-8").replace("codes: {}", "codes: {unclosed", 1), "utf-8")
    ws = load_workspace(home, partial=True)
    assert ws.problems and all(p.mark is not None and p.mark.source == "maps/tables/uom.yaml" for p in ws.problems), [
        str(p) for p in ws.problems
    ]
    assert ws.broken, "the partners whose maps use the table are not loaded"
    assert all(found and found[0].mark.source == "maps/tables/uom.yaml" for found in ws.broken.values())
