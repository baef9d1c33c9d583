"""The ``files`` and ``rest`` destinations with an export layout, built the way the runtime builds them:
one batch where a document that does not fit is rejected and its siblings are written; the default
name takes the layout's extension; a layout that is not there stops the build (CFG-040)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.components import BuildContext, build_destinations, default_registry
from gateway.delivery.base import Delivered, Payload, Rejected
from gateway.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
INVOICE = json.loads((REPO / "maps" / "outbound" / "cases" / "ap-invoice-lines-csv" / "invoice.json").read_text())
EXPECTED = (REPO / "maps" / "outbound" / "cases" / "ap-invoice-lines-csv" / "invoice.expected").read_bytes()


def payload(n: int, document: dict[str, object], kind: str = "document") -> Payload:
    return Payload(
        kind=kind,  # type: ignore[arg-type]
        doc_type=str(document.get("document_type", "997")),
        partner_id="medsupply",
        correlation_id=f"c-{n}",
        idempotency_key=f"k-{n}",
        delivery_id=n,
        file_id=7,
        position=n,
        business_key=f"810:INV-{n}",
        document=document if kind == "document" else None,
        data=json.dumps(document).encode() if kind == "document" else b"ISA*...",
    )


def build(tmp_path: Path, **config: object) -> dict[str, object]:
    built, _ = build_destinations({"ap": {"type": "files", **config}}, default_registry(), BuildContext(tmp_path))
    return dict(built)


def test_a_batch_writes_what_fits_and_rejects_what_does_not(tmp_path: Path) -> None:
    dest = build(tmp_path, folder="erp", layout="ap-invoice-lines-csv")["ap"]
    no_price = json.loads(json.dumps(INVOICE))
    no_price["lines"][1]["unit_price"] = {"amount": "1.005"}
    outcomes = dest.deliver_batch([payload(1, INVOICE), payload(2, no_price), payload(3, {}, kind="outbound")])  # type: ignore[attr-defined]
    assert [type(o) for o in outcomes] == [Delivered, Rejected, Rejected]
    assert (tmp_path / "erp" / "medsupply" / "invoice-7-1.csv").read_bytes() == EXPECTED  # {ext}: the layout's
    assert "LAY-002" in outcomes[1].reason and "lines[1].unit_price.amount" in outcomes[1].reason  # type: ignore[union-attr]
    assert "writes canonical documents" in outcomes[2].reason  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "erp" / "medsupply").iterdir()) == ["invoice-7-1.csv"]


def test_a_missing_layout_stops_the_build(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, layout="ap-invoices")
    assert caught.value.code == "CFG-040" and "ap-invoice-lines-csv" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        build_destinations(
            {"api": {"type": "rest", "url": "http://127.0.0.1:9/x", "body": "asn-xm"}},
            default_registry(),
            BuildContext(tmp_path),
        )
    assert caught.value.code == "CFG-040"
