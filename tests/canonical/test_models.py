"""The canonical documents: strict, typed, round-trip through JSON, schema published."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

import gateway.canonical as canonical
from gateway.canonical import (
    AckBucket,
    AcknowledgmentLine,
    Invoice,
    InvoiceLine,
    ItemIds,
    LineStatus,
    Money,
    Pack,
    Party,
    PartyRole,
    PurchaseOrder,
    PurchaseOrderAcknowledgment,
    PurchaseOrderLine,
    Quantity,
    ShipNotice,
    ShippedItem,
    ShippedOrder,
)
from gateway.cli.main import main


def po() -> PurchaseOrder:
    return PurchaseOrder(
        po_number="4500012345",
        order_date=date(2026, 11, 23),
        parties=[Party(role=PartyRole.SHIP_TO, role_code="ST", name="MERCY GENERAL")],
        lines=[
            PurchaseOrderLine(
                line_number="1",
                quantity=Quantity(value=Decimal("10"), uom="BX"),
                unit_price=Money(amount=Decimal("42.50")),
                item=ItemIds(vendor_part="GLV-NIT-M", gtin="00012345678905"),
            )
        ],
    )


def test_public_api_is_pinned() -> None:
    assert sorted(canonical.__all__) == sorted(
        [
            "SCHEMAS",
            "AckBucket",
            "AckType",
            "AcknowledgmentLine",
            "Address",
            "CanonicalDocument",
            "Charge",
            "DatedValue",
            "FobTerms",
            "Identifier",
            "Invoice",
            "InvoiceLine",
            "ItemIds",
            "LineStatus",
            "Money",
            "Pack",
            "PackSize",
            "Party",
            "PartyRole",
            "Price",
            "Provenance",
            "Purpose",
            "PurchaseOrder",
            "PurchaseOrderAcknowledgment",
            "PurchaseOrderLine",
            "Quantity",
            "Reference",
            "ShipNotice",
            "ShippedItem",
            "ShippedOrder",
            "Tax",
            "Terms",
        ]
    )


def test_json_round_trip_keeps_decimals_exact() -> None:
    doc = po()
    text = doc.model_dump_json()
    assert '"42.50"' in text  # Decimal as a string, never a float
    back = PurchaseOrder.model_validate_json(text)
    assert back == doc
    assert back.lines[0].unit_price is not None and back.lines[0].unit_price.amount == Decimal("42.50")


def test_unknown_fields_are_errors() -> None:
    data = json.loads(po().model_dump_json())
    data["lines"][0]["colour"] = "blue"
    with pytest.raises(ValidationError) as err:
        PurchaseOrder.model_validate(data)
    assert "colour" in str(err.value)


def test_ack_keeps_raw_codes_beside_buckets() -> None:
    ack = PurchaseOrderAcknowledgment(
        po_number="4500012345",
        acknowledgment_date=date(2026, 11, 23),
        lines=[
            AcknowledgmentLine(
                line_number="2",
                statuses=[
                    LineStatus(bucket=AckBucket.ACCEPTED, raw_code="IA", quantity=Quantity(value=Decimal(2))),
                    LineStatus(bucket=AckBucket.BACKORDERED, raw_code="BP", quantity=Quantity(value=Decimal(2))),
                    LineStatus(bucket=AckBucket.UNKNOWN, raw_code="Z9"),
                ],
            )
        ],
    )
    dumped = json.loads(ack.model_dump_json())
    assert [s["raw_code"] for s in dumped["lines"][0]["statuses"]] == ["IA", "BP", "Z9"]


def test_ship_notice_tree_and_invoice() -> None:
    asn = ShipNotice(
        shipment_id="SHP-1",
        notice_date=date(2026, 11, 25),
        orders=[
            ShippedOrder(
                po_number="4500012345",
                packs=[
                    Pack(
                        level="tare",
                        packs=[
                            Pack(
                                sscc="000123",
                                items=[
                                    ShippedItem(
                                        line_number="3",
                                        quantity=Quantity(value=Decimal(2), uom="EA"),
                                        lot="HX2611",
                                        serial="SN-1",
                                        expiration_date=date(2031, 1, 31),
                                    )
                                ],
                            )
                        ],
                    )
                ],
            )
        ],
    )
    assert asn.orders[0].packs[0].packs[0].items[0].lot == "HX2611"
    inv = Invoice(
        invoice_number="INV-1",
        invoice_date=date(2026, 11, 26),
        credit_memo=True,
        lines=[InvoiceLine(quantity=Quantity(value=Decimal(-1)), unit_price=Money(amount=Decimal("0")))],
    )
    assert Invoice.model_validate_json(inv.model_dump_json()) == inv


def test_schema_command() -> None:
    result = CliRunner().invoke(main, ["schema", "invoice"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "Invoice" and "invoice_number" in schema["required"]
    everything = json.loads(CliRunner().invoke(main, ["schema"]).output)
    assert sorted(everything) == ["invoice", "po_acknowledgment", "purchase_order", "ship_notice"]
    assert CliRunner().invoke(main, ["schema", "nonsense"]).exit_code == 2
