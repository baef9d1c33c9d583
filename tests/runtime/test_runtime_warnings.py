"""Business-level warnings (``BIZ-*``) reach the ledger: ``gateway run`` keeps them with their document,
located on the segment (or XML line), and ``gateway messages show`` (and ``--json``) shows them; the
document is translated and passed on all the same, and its acknowledgment accepts it."""

from __future__ import annotations

import json
from pathlib import Path

from ackcheck import check_ack
from click.testing import CliRunner
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Home,
    case,
    gateway,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
)

from gateway.cli.main import main
from gateway.store import Store
from gateway.x12.ack.read import FunctionalAck

CTT_OFF = case("medsupply", "810-invoice.edi").replace(b"CTT*3~", b"CTT*4~")  # 3 IT1 lines
XML_TWICE = (
    (PARTNERS / "carelink" / "cases" / "invoice.xml")
    .read_bytes()
    .replace(b'invoiceLineNumber="2"', b'invoiceLineNumber="1"')
    .replace(b'lineNumber="2">', b'lineNumber="1">')
)


def show(home: Home, file_id: int, *extra: str) -> str:
    result = CliRunner().invoke(main, ["messages", "show", str(file_id), *extra, "--home", str(home.path)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_business_warnings_are_kept_and_shown_located(store_url: str, tmp_path: Path) -> None:
    home = make_home(tmp_path, store_url)
    home.drop("810-ctt.edi", CTT_OFF, "medsupply")
    home.drop("invoice-lines.xml", XML_TWICE, "carelink")
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stderr
    with Store(store_url) as store:
        files = {f.name: f for f in store.list_files(limit=10)}
        x12_tree = store.file_tree(files["810-ctt.edi"].id)
        xml_tree = store.file_tree(files["invoice-lines.xml"].id)
    assert {n: f.status for n, f in files.items()} == {"810-ctt.edi": "processed", "invoice-lines.xml": "processed"}
    (st,) = [s for ic in x12_tree.interchanges for g in ic.groups for s in g.sets]
    assert st.row.status == "translated" and st.row.errors == []
    (doc,) = st.documents
    assert doc.status == "translated"
    (warning,) = doc.warnings
    assert warning["code"] == "BIZ-001" and warning["severity"] == "warning"
    assert "CTT01 says 4 but the set has 3 IT1 lines" in warning["message"]
    assert (warning["location"]["segment_id"], warning["location"]["element"]) == ("CTT", 1)
    (xml_doc,) = xml_tree.documents
    (warning,) = xml_doc.warnings
    assert warning["code"] == "BIZ-004" and xml_doc.status == "translated"
    assert warning["location"]["line"] == 28
    # Passed on all the same: canonical JSON for both, the 810 acknowledged as accepted.
    assert len(list((home.outbox / "canonical").rglob("*.json"))) == 2
    (ack,) = [a for p in (home.outbox / "medsupply").glob("*.x12") for a in check_ack(p.read_bytes())]
    assert isinstance(ack, FunctionalAck) and ack.code == "A"

    out = show(home, files["810-ctt.edi"].id)
    assert "document" in out and "invoice" in out
    assert "warning BIZ-001 " in out and "CTT #12 (byte 524) > element 01: CTT01 says 4" in out
    out = show(home, files["invoice-lines.xml"].id)
    assert "warning BIZ-004 " in out and "invoice-lines.xml:28: line number 1 appears again" in out
    shown = json.loads(show(home, files["810-ctt.edi"].id, "--json"))
    (json_doc,) = [
        d for ic in shown["tree"]["interchanges"] for g in ic["groups"] for s in g["sets"] for d in s["documents"]
    ]
    assert [(w["code"], w["location"]["segment_id"]) for w in json_doc["warnings"]] == [("BIZ-001", "CTT")]
