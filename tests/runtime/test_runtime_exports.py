"""Export layouts end to end, as a user runs them: ``gateway run --once`` writes an invoice as the AP
CSV and a ship notice as XML through ``files`` destinations, posts the CSV as a mapped REST body to
a real HTTP server on loopback (signed over those bytes), and turns an invoice that does not fit a
fixed-width layout into a located dead letter while its siblings are delivered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from lxml import etree
from runtimekit import PARTNERS, REPO, Home, case, gateway, in_process, make_home
from support.httpd import Receiver

from gateway.outbound.layout_render import parse_document, render_layout
from gateway.outbound_loader import load_layouts
from gateway.store import Store

SECRET = "whsec_" + base64.b64encode(b"exports-test-secret-0123456789").decode()
TOO_NARROW = """\
map: invoice-too-narrow
document: invoice
target: {format: fixed}
fields:
  - {name: Invoice, value: invoice_number, width: 3}
"""


def deployment(tmp_path: Path, url: str) -> Home:
    home = make_home(
        tmp_path,
        f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
        stable_seconds=0,
        extra={
            "destinations": {
                "canonical-json": {"type": "files"},
                "ap-import": {
                    "type": "files",
                    "folder": "erp/ap",
                    "layout": "ap-invoice-lines-csv",
                    "name": "{partner}-{doc_type}-{business_key}.{ext}",
                },
                "receiving": {
                    "type": "files",
                    "folder": "erp/receiving",
                    "layout": "asn-xml",
                    "name": "{business_key}.{ext}",
                },
                "ap-api": {
                    "type": "rest",
                    "url": url + "/invoices/{business_key}",
                    "body": "ap-invoice-lines-csv",
                    "auth": {"type": "hmac", "secret": {"env": "EXPORTS_TEST_SECRET"}},
                    "retry": {"delays": [0.2], "max_attempts": 2},
                },
                "narrow": {"type": "files", "folder": "erp/narrow", "layout": "invoice-too-narrow"},
            },
            "routes": [
                {"name": "invoices", "match": {"doc_type": "invoice"}, "to": ["ap-import", "ap-api", "narrow"]},
                {"name": "asns", "match": {"doc_type": "ship_notice"}, "to": ["receiving"]},
                {"name": "rest", "to": ["canonical-json"]},
            ],
        },
    )
    (home.path / "partners" / "medsupply" / "outbound").mkdir(exist_ok=True)
    (home.path / "partners" / "medsupply" / "outbound" / "too-narrow.yaml").write_text(TOO_NARROW, "utf-8")
    return home


def test_run_once_writes_layout_files_posts_a_mapped_body_and_dead_letters_what_does_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPORTS_TEST_SECRET", SECRET)
    with Receiver() as api:
        home = deployment(tmp_path, api.url)
        home.drop("810.edi", case("medsupply", "810-invoice.edi"), "medsupply")
        home.drop("856.edi", case("medsupply", "856-xref-and-uom.edi"), "medsupply")
        home.drop("855.edi", case("medsupply", "855-split-backorder.edi"), "medsupply")
        run = gateway(home, "run", "--once")
        received = list(api.received)
    assert run.returncode == 6, run.stdout + run.stderr  # the narrow delivery died: not a success

    # The AP CSV: exactly what the layout writes for the invoice's golden canonical document.
    layouts = load_layouts(REPO)
    golden = json.loads((PARTNERS / "medsupply" / "cases" / "810-invoice.json").read_text("utf-8"))[0]
    expected = render_layout(layouts["ap-invoice-lines-csv"], parse_document(layouts["ap-invoice-lines-csv"], golden))
    (written,) = [p for p in (home.path / "erp" / "ap").iterdir() if p.is_file()]
    assert written.name.startswith("medsupply-invoice-") and written.suffix == ".csv"
    assert written.read_bytes() == expected
    assert expected.startswith(b"VendorId,InvoiceNumber,") and golden["invoice_number"].encode() in expected
    assert not any((home.path / "erp" / "ap" / ".tmp").iterdir())  # written under .tmp, renamed into place

    # The ship notice as XML.
    (asn,) = [p for p in (home.path / "erp" / "receiving").iterdir() if p.suffix == ".xml"]
    root = etree.fromstring(asn.read_bytes())
    shipment = json.loads((PARTNERS / "medsupply" / "cases" / "856-xref-and-uom.json").read_text("utf-8"))[0]
    assert root.tag == "{urn:hospital-edi-gateway:asn:1}AdvanceShipNotice"
    assert root.get("shipmentId") == shipment["shipment_id"]

    # The mapped REST body: the same CSV bytes, its media type, signed over those bytes.
    (request,) = received
    assert request.path.startswith("/invoices/") and request.body == expected
    assert request.headers["content-type"] == "text/csv; charset=utf-8"
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert request.headers["webhook-signature"] == f"v1,{digest}"

    # The invoice that does not fit: a dead letter naming the code, the field and the path; nothing written.
    with Store(home.store_url) as store:
        (dead,) = store.list_deliveries(destination="narrow")
        (posted,) = store.list_deliveries(destination="ap-api")
        assert request.key == posted.idempotency_key and posted.status == "delivered"
    assert dead.status == "dead_letter" and dead.attempts == 1
    shown = in_process(home, "deliveries", "show", str(dead.id))
    assert "LAY-001" in shown.stdout and "invoice_number" in shown.stdout and "3 wide" in shown.stdout, shown.stdout
    assert not (home.path / "erp" / "narrow").exists() or not any(
        p.is_file() for p in (home.path / "erp" / "narrow").iterdir()
    )
    assert len(list((home.outbox / "canonical" / "medsupply").glob("*.json"))) == 1  # the 855


def test_run_refuses_a_layout_destination_fed_documents_its_layout_cannot_write(tmp_path: Path) -> None:
    home = make_home(
        tmp_path,
        f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
        stable_seconds=0,
        extra={
            "destinations": {"ap-import": {"type": "files", "layout": "ap-invoice-lines-csv"}},
            "routes": [{"name": "all", "to": ["ap-import"]}],
        },
    )
    home.drop("855.edi", case("medsupply", "855-split-backorder.edi"), "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "CFG-041" in run.stderr and "every document type" in run.stderr and "gateway.yaml:" in run.stderr
    assert (home.path / "inbox" / "medsupply" / "855.edi").exists(), "a file was taken with a broken config"
