"""`gateway messages list|show` and `gateway find` on a ledger filled by running real partner files through
`gateway run --once` and sending a real 850 with `gateway send`, on SQLite and PostgreSQL.

One deployment per backend is filled once for the module; every test only reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from conftest import schema_url
from runtimekit import GATEWAY, REPO, Home, case, make_home

from gateway.cli.main import main
from gateway.cli.messages_cli import when
from gateway.store import Store
from gateway.store.search import control_candidates, keys_of
from gateway.x12.extract import set_segments

DROPS = {
    "medsupply": ["810-invoice.edi", "855-split-backorder.edi", "856-xref-and-uom.edi"],
    "orthosupply": ["810-implants.edi", "856-implants-tare.edi", "856-guide-violation.edi"],
}
ORDER = REPO / "samples" / "canonical" / "purchase-order.json"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"], name="home")
def home_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp(f"messages-{request.param}")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'home' / 'var' / 'gateway.sqlite'}"
    else:
        admin: Engine = request.getfixturevalue("pg_admin")
        schema = f"gw_msg_{root.name[-6:].replace('-', '_')}_{id(root) % 100000}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = schema_url(schema)
    home = make_home(root / "home", url)
    for partner, names in DROPS.items():
        for name in names:
            home.drop(name, case(partner, name), partner)
    run = subprocess.run([*GATEWAY, "run", "--once", "--home", str(home.path)], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert run.returncode == 1, run.stderr  # the guide violation fails its file: exit 1, all else processed
    sent = subprocess.run([*GATEWAY, "send", "--partner", "medsupply", str(ORDER), "--home", str(home.path)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    try:
        yield home
    finally:
        if schema is not None:
            with request.getfixturevalue("pg_admin").begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def cli(home: Home, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, [*args, "--home", str(home.path)])
    assert result.exit_code == code, result.output
    return result.stdout


def listed(home: Home, *args: str) -> list[dict]:
    return json.loads(cli(home, "messages", "list", "--json", *args))


def names(rows: list[dict]) -> set[str]:
    return {r["name"] for r in rows}


def test_filters_by_business_key_type_partner_and_direction(home: Home) -> None:
    # PO 4500012390 is quoted by medsupply's invoice, its 855 and its ship notice (an order level)
    po = {"810-invoice.edi", "855-split-backorder.edi", "856-xref-and-uom.edi"}
    assert names(listed(home, "--po", "4500012390")) == po
    assert names(listed(home, "--po", "4500012390", "--type", "810")) == {"810-invoice.edi"}
    assert names(listed(home, "--invoice", "os-inv-118804")) == {"810-implants.edi"}  # any case
    assert names(listed(home, "--lot", "HS12-26K41")) == {"856-implants-tare.edi"}
    assert names(listed(home, "--asn", "SHP-0099120")) == {"856-xref-and-uom.edi"}
    assert listed(home, "--invoice", "4500012390") == []  # a PO number is not an invoice number
    # the guide violation's set was rejected: no ship notice was translated from it
    assert names(listed(home, "--type", "856", "--partner", "orthosupply")) == {"856-implants-tare.edi"}
    out = listed(home, "--direction", "out", "--partner", "medsupply")
    assert sorted(r["name"].split()[0] for r in out) == ["850", "997", "997", "997"]
    (po,) = listed(home, "--po", "4500012345")
    assert po["direction"] == "out" and po["id"].startswith("out-") and po["keys"][0] == "4500012345"


def test_filters_by_status_control_numbers_dates_and_limit(home: Home) -> None:
    assert names(listed(home, "--status", "rejected")) == {"856-guide-violation.edi"}  # a set's status
    assert names(listed(home, "--status", "failed", "--direction", "in")) == {"856-guide-violation.edi"}
    assert names(listed(home, "--control", "000000521", "--direction", "in")) == {"856-implants-tare.edi"}
    assert names(listed(home, "--control", "523", "--direction", "in")) == {"810-implants.edi"}  # GS06 / ISA13
    assert len(listed(home, "--since", "1h", "--direction", "in")) == 6
    assert listed(home, "--until", "2000-01-01") == []
    assert listed(home, "--since", "2999-01-01") == []
    assert len(listed(home, "--limit", "2")) == 2
    text_out = cli(home, "messages", "list", "--type", "invoice")
    assert "810-invoice.edi" in text_out and "810-implants.edi" in text_out and "855" not in text_out


def test_bad_filters_are_usage_errors(home: Home) -> None:
    result = CliRunner().invoke(main, ["messages", "list", "--type", "catalog", "--home", str(home.path)])
    assert result.exit_code == 2 and "document type 'catalog' is not one of" in result.output
    result = CliRunner().invoke(main, ["messages", "list", "--since", "yesterday", "--home", str(home.path)])
    assert result.exit_code == 2 and "a duration (30m, 12h, 7d, 2w)" in result.output
    result = CliRunner().invoke(main, ["messages", "list", "--po", "1", "--lot", "2", "--home", str(home.path)])
    assert result.exit_code == 2 and "give one business key" in result.output


def test_find_answers_where_is_it(home: Home) -> None:
    out = cli(home, "find", "4500012390")
    lines = out.splitlines()
    assert {line.split()[2] for line in lines} == {"invoice", "po_acknowledgment", "ship_notice"}, out
    found = json.loads(cli(home, "find", "INV-0042377", "--json"))
    assert [(f["match"], f["doc_type"], f["partner"], f["status"]) for f in found] == [
        ("invoice INV-0042377", "invoice", "medsupply", "translated")
    ]
    with Store(home.store_url) as store:
        (invoice,) = [f for f in store.list_files(limit=20) if f.name == "810-invoice.edi"]
    assert found[0]["message"] == str(invoice.id)
    isa = json.loads(cli(home, "find", "521", "--json"))  # ISA13 000000521 and GS06 521 of the same file
    assert {f["match"] for f in isa} >= {"ISA13 000000521", "GS06 521"}
    po = json.loads(cli(home, "find", "4500012345", "--json"))
    assert [(f["doc_type"], f["message"][:4]) for f in po] == [("850 sent", "out-")]
    by_correlation = json.loads(cli(home, "find", invoice.correlation_id, "--json"))
    # the file and the 997 that answers it share the file's correlation id; the document has its own
    assert sorted((f["message"][:4], f["doc_type"]) for f in by_correlation) == [
        (str(invoice.id), "x12 file"), ("out-", "997 sent")]  # fmt: skip
    by_document = json.loads(cli(home, "find", found_document_correlation(home, found[0]["document_id"]), "--json"))
    assert [(f["message"], f["doc_type"]) for f in by_document] == [(str(invoice.id), "invoice")]
    result = CliRunner().invoke(main, ["find", "NO-SUCH-THING", "--home", str(home.path)])
    assert result.exit_code == 1 and "nothing in the ledger matches 'NO-SUCH-THING'" in result.output


def found_document_correlation(home: Home, document_id: int) -> str:
    with Store(home.store_url) as store:
        (doc,) = [d for d in store.list_documents(limit=50) if d.id == document_id]
    return doc.correlation_id


def test_show_gives_the_whole_lineage(home: Home) -> None:
    (invoice,) = listed(home, "--invoice", "INV-0042377")
    out = cli(home, "messages", "show", invoice["id"])
    for expected in (
        "interchange 000000413 ZZ:MEDSUPPLY -> ZZ:MERCYHOSP accepted",
        "group IN 413 accepted",
        "set 810 0001 translated",
        "BIG*20261205*INV-0042377*20261201*4500012390",  # the raw segments
        "keys: invoice INV-0042377, po 4500012390",
        "routed: rules default -> destinations canonical-json",
        "-> canonical-json delivered after 1 attempt(s)",
        "attempt 1 ",
        "sent 997 0000",
        "-> partner-outbox delivered",
        "events:",
        "file " + invoice["id"] + " processing -> processed [status by ",
    ):
        assert expected in out, (expected, out)
    shown = json.loads(cli(home, "messages", "show", invoice["id"], "--json"))
    (raw,) = shown["segments"].values()
    assert raw["found"] and raw["total"] == 13 and raw["segments"][0][1] == "ST*810*0001"
    assert raw["segments"][-1][1].startswith("SE*13*0001")
    assert all(d["tries"] and d["tries"][0]["outcome"] == "delivered" for d in shown["deliveries"])


def test_show_a_rejected_set_and_what_we_sent(home: Home) -> None:
    (bad,) = listed(home, "--status", "rejected")
    out = cli(home, "messages", "show", bad["id"], "--segments", "2")
    assert "X12-V201" in out and "PRF #6 (byte 262) > element 04" in out and "(first 2 of 12" in out
    ack = next(line.split()[-1] for line in out.splitlines() if "sent 999" in line)
    sent = cli(home, "messages", "show", ack)
    assert f"answers file {bad['id']}" in sent and "AK1*SH*522" in sent.replace("|", "*")
    (po,) = listed(home, "--po", "4500012345")
    sent = cli(home, "messages", "show", po["id"])
    assert "acknowledgment expected: pending" in sent and "keys: po 4500012345" in sent and "BEG*00" in sent


def test_show_unknown_messages(home: Home) -> None:
    result = CliRunner().invoke(main, ["messages", "show", "99999", "--home", str(home.path)])
    assert result.exit_code == 2 and "no file 99999 in the ledger" in result.output
    result = CliRunner().invoke(main, ["messages", "show", "out-99999", "--home", str(home.path)])
    assert result.exit_code == 2 and "no outbound interchange out-99999" in result.output
    result = CliRunner().invoke(main, ["messages", "show", "x1", "--home", str(home.path)])
    assert result.exit_code == 2 and "a file id (42) or out-N" in result.output


# --- pure parts ---------------------------------------------------------------------------------


def test_keys_of_walks_the_document_but_not_its_provenance() -> None:
    doc = json.loads((REPO / "partners" / "orthosupply" / "cases" / "856-implants-tare.json").read_text())
    doc = doc[0] if isinstance(doc, list) else doc
    found = keys_of(doc)
    assert ("asn", "OS-ASN-7731") in found and ("po", "4500012402") in found and ("lot", "HS12-26K41") in found
    assert ("bol", "OS-BOL-22871") in found and len(found) == len(set(found))
    assert keys_of({"provenance": {"po_number": "X"}, "po_number": " ab1 "}) == [("po", "AB1")]
    # Any mapping is walked into, not only the dicts parsed JSON gives (a leaf is told by its exact type first).
    nested = {"orders": [MappingProxyType({"po_number": "7", "lines": [{"lot": 12}]})], "total": 1.5, "ok": True}
    assert keys_of(nested) == [("po", "7"), ("lot", "12")]


def test_control_candidates_and_when() -> None:
    assert control_candidates("521") == ["000000521", "0521", "521"]
    assert control_candidates("000000521") == ["000000521", "0521", "521"]
    assert control_candidates("AB1") == ["AB1"]
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert when("7d", now) == now - timedelta(days=7)
    assert when("30m", now) == now - timedelta(minutes=30)
    assert when("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert when("2026-12-01", now, end=True) == datetime(2026, 12, 2, tzinfo=UTC)
    assert when("2026-12-01T08:00:00+01:00", now) == datetime(2026, 12, 1, 7, tzinfo=UTC)


def test_set_segments_finds_a_set_by_place_and_control_number() -> None:
    data = case("medsupply", "810-invoice.edi")
    text = set_segments(data, 1, 1, 1, "0001", limit=2)
    assert text.found and text.total == 13 and [s for _, s in text.segments] == ["ST*810*0001", text.segments[1][1]]
    assert not set_segments(data, 1, 1, 1, "0002").found
    assert not set_segments(data, 1, 1, 2).found
