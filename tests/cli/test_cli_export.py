"""``gateway export`` (a layout's output without the daemon, compared with ``--expect``) and the
layout checks of ``gateway config lint`` (CFG-040 unknown layout, CFG-041 routes feeding a layout
other document types, CFG-042 layouts that do not compile), each located in its file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from conftest import REPO

from gateway.cli.config_cli import default_registry, lint_config
from gateway.cli.main import main

CASES = REPO / "maps" / "outbound" / "cases"
INVOICE = CASES / "ap-invoice-lines-csv" / "invoice.json"
EXPECTED = CASES / "ap-invoice-lines-csv" / "invoice.expected"


def export(*args: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(main, ["export", "--home", str(REPO), *args])
    return result.exit_code, result.stdout_bytes, result.stderr


def test_export_writes_the_layout_bytes_to_stdout_and_matches_the_expected_file() -> None:
    code, out, _ = export("--layout", "ap-invoice-lines-csv", str(INVOICE))
    assert code == 0 and out == EXPECTED.read_bytes()
    code, _, err = export("--layout", "ap-invoice-lines-csv", str(INVOICE), "--expect", str(EXPECTED))
    assert code == 0 and "matches" in err


def test_export_shows_a_diff_with_line_endings_when_the_output_differs(tmp_path: Path) -> None:
    other = tmp_path / "erp-sample.csv"
    other.write_bytes(EXPECTED.read_bytes().replace(b"\r\n", b"\n"))
    code, out, _ = export("--layout", "ap-invoice-lines-csv", str(INVOICE), "--expect", str(other))
    assert code == 1
    text = out.decode()
    assert "-VendorId,InvoiceNumber" in text and "\\r\\n" in text  # the ERP sample has LF, we write CRLF


def test_export_takes_one_document_of_a_list_and_writes_to_a_file(tmp_path: Path) -> None:
    listing = tmp_path / "translated.json"
    listing.write_text(json.dumps([{"errors": ["a failed set"]}, json.loads(INVOICE.read_text("utf-8"))]), "utf-8")
    out = tmp_path / "ap.csv"
    code, _, err = export("--layout", "ap-invoice-lines-csv", str(listing), "--out", str(out))
    assert code == 0 and out.read_bytes() == EXPECTED.read_bytes() and "bytes (csv)" in err


def test_export_exit_codes_for_an_unknown_layout_and_a_document_that_does_not_fit() -> None:
    code, _, err = export("--layout", "ap-invoice-line-csv", str(INVOICE))
    assert code == 2 and "did you mean ap-invoice-lines-csv?" in err
    code, _, err = export("--layout", "asn-xml", str(INVOICE))
    assert code == 1 and "LAY-007" in err and "ship_notice" in err


def test_export_cases_runs_every_shipped_case() -> None:
    result = CliRunner().invoke(main, ["export", "--cases", "--home", str(REPO)])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ok  ") == len(list(CASES.glob("*/*.json"))) >= 5


def home(tmp_path: Path, gateway_yaml: str) -> Path:
    shutil.copytree(REPO / "maps", tmp_path / "maps")
    (tmp_path / "partners").mkdir()
    (tmp_path / "gateway.yaml").write_text(gateway_yaml, "utf-8")
    return tmp_path


LAYOUT_PROBLEMS = """\
destinations:
  ap-import:
    type: files
    layout: ap-invoice-line-csv
  receiving:
    type: files
    layout: asn-xml
  ap-api:
    type: rest
    url: https://ap.example/invoices/{business_key}
    body: ap-invoice-lines-csv
routes:
  - name: invoices
    match: {doc_type: [invoice, po_acknowledgment]}
    to: [ap-api]
  - name: everything
    to: [receiving, ap-import]
"""


def test_lint_finds_unknown_layouts_and_routes_feeding_them_other_documents(tmp_path: Path) -> None:
    checked = lint_config(home(tmp_path, LAYOUT_PROBLEMS), default_registry())
    found = sorted((p.code, p.mark.line if p.mark else 0, p.path) for p in checked.problems.items)
    assert found == [
        ("CFG-040", 4, "destinations.ap-import.layout"),
        ("CFG-041", 15, "routes.0.to.0"),
        ("CFG-041", 17, "routes.1.to.0"),
    ]
    messages = "\n".join(str(p) for p in checked.problems.items)
    assert "did you mean ap-invoice-lines-csv?" in messages
    assert "sends po_acknowledgment documents to 'ap-api', whose layout writes only invoice" in messages
    assert "gateway.yaml:4:" in messages


def test_lint_reports_a_broken_layout_file_with_its_place(tmp_path: Path) -> None:
    root = home(tmp_path, "destinations:\n  ap-import: {type: files, layout: ap-invoice-lines-csv}\n")
    broken = root / "maps" / "outbound" / "layouts" / "ap-invoice-lines-csv.yaml"
    broken.write_text(broken.read_text("utf-8").replace("item.vendor_part", "item.vendor_prt"), "utf-8")
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(root)])
    assert result.exit_code == 2
    assert "CFG-042" in result.stderr and "MAP-610" in result.stderr and "did you mean vendor_part?" in result.stderr
    assert "maps/outbound/layouts/ap-invoice-lines-csv.yaml:" in result.stderr
