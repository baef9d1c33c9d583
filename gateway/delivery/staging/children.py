"""The child rows of a canonical document (pure): parties, references, dates, lines and their
statuses, the ship-notice hierarchy, charges and taxes. Sequence numbers count from 1 in document
order; ``line_seq``, ``order_seq`` and ``pack_seq`` tie rows to their parent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.canonical.common import ItemIds, Money, Party, Quantity, Reference
from gateway.canonical.documents import (
    CanonicalDocument,
    Charge,
    Invoice,
    Pack,
    PurchaseOrder,
    PurchaseOrderAcknowledgment,
    ShipNotice,
    ShippedItem,
    Tax,
)

if TYPE_CHECKING:
    from gateway.delivery.staging.rows import Rows

__all__ = ["ack_lines", "common", "invoice", "po_lines", "shipment"]


def _money(prefix: str, money: Money | None) -> dict[str, Any]:
    return {prefix: money.amount if money else None, f"{prefix}_currency": money.currency if money else None}


def _parties(rows: Rows, parties: list[Party], order_seq: int | None) -> None:
    for party in parties:
        first = party.ids[0] if party.ids else None
        lines = party.address.lines if party.address else []
        others = [{"qualifier": i.qualifier, "value": i.value} for i in party.ids[1:]]
        rows.add(
            "party",
            party_seq=len(rows.children.get("party", [])) + 1,
            order_seq=order_seq,
            role=party.role.value,
            role_code=party.role_code,
            name=party.name,
            id_qualifier=first.qualifier if first else None,
            id_value=first.value if first else None,
            other_ids=json.dumps(others) if others else None,
            address_line_1=lines[0] if lines else None,
            address_line_2=", ".join(lines[1:]) or None,
            city=party.address.city if party.address else None,
            state=party.address.state if party.address else None,
            postal_code=party.address.postal_code if party.address else None,
            country=party.address.country if party.address else None,
            contact=party.contact,
        )


def _references(
    rows: Rows, refs: list[Reference], scope: str, line_seq: int | None = None, order: int | None = None
) -> None:
    for ref in refs:
        rows.add(
            "reference",
            ref_seq=len(rows.children.get("reference", [])) + 1,
            scope=scope,
            line_seq=line_seq,
            order_seq=order,
            qualifier=ref.qualifier,
            value=ref.value,
            description=ref.description,
        )


def common(rows: Rows, doc: CanonicalDocument) -> None:
    """Parties, references and dates of the document header."""
    _parties(rows, doc.parties, None)
    _references(rows, doc.references, "document")
    for n, dated in enumerate(doc.dates, 1):
        rows.add("date", date_seq=n, qualifier=dated.qualifier, value=dated.value, time=dated.time)


def _items(item: ItemIds, prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}vendor_part": item.vendor_part,
        f"{prefix}buyer_item": item.buyer_item,
        f"{prefix}manufacturer_part": item.manufacturer_part,
        f"{prefix}gtin": item.gtin,
        f"{prefix}ndc": item.ndc,
        f"{prefix}udi": item.udi,
    }


def _quantity(prefix: str, q: Quantity | None) -> dict[str, Any]:
    uom = "uom" if prefix == "quantity" else prefix.replace("quantity", "uom")
    return {prefix: q.value if q else None, uom: q.uom if q else None}


def _line(n: int, line_number: str | None, quantity: Quantity | None, item: ItemIds, **more: Any) -> dict[str, Any]:
    base = {
        "line_seq": n,
        "line_number": line_number,
        "po_number": None,
        **_quantity("quantity", quantity),
        **_money("unit_price", None),
        **_money("contract_price", None),
        **_items(item),
        "description": None,
        "requested_delivery": None,
        "lot": None,
        "serial": None,
        "notes": None,
    }
    base.update(more)
    return base


def po_lines(rows: Rows, doc: PurchaseOrder) -> None:
    """A purchase order's lines and their references."""
    for n, line in enumerate(doc.lines, 1):
        rows.add(
            "line",
            **_line(
                n,
                line.line_number,
                line.quantity,
                line.item,
                **_money("unit_price", line.unit_price),
                **_money("contract_price", line.contract_price),
                description=line.description,
                requested_delivery=line.requested_delivery,
                lot=line.lot,
                serial=line.serial,
            ),
        )
        _references(rows, line.references, "line", line_seq=n)


def ack_lines(rows: Rows, doc: PurchaseOrderAcknowledgment) -> None:
    """An acknowledgment's lines and each line's statuses."""
    for n, line in enumerate(doc.lines, 1):
        notes = "\n".join(line.notes) or None
        rows.add(
            "line",
            **_line(
                n, line.line_number, line.quantity, line.item, **_money("unit_price", line.unit_price), notes=notes
            ),
        )
        for s, status in enumerate(line.statuses, 1):
            rows.add(
                "line_status",
                line_seq=n,
                status_seq=s,
                bucket=status.bucket.value,
                raw_code=status.raw_code,
                **_quantity("quantity", status.quantity),
                scheduled_date=status.scheduled_date,
                date_qualifier=status.date_qualifier,
                **_items(status.substitute_item or ItemIds(), "substitute_"),
            )


def shipment(rows: Rows, doc: ShipNotice) -> None:
    """The shipment row, then its orders, packs (nested) and items."""
    rows.add(
        "shipment",
        shipment_id=doc.shipment_id,
        shipped_at=_naive_utc(doc.shipped_at),
        ship_date=doc.ship_date,
        carrier=doc.carrier,
        bill_of_lading=doc.bill_of_lading,
        tracking_numbers="\n".join(doc.tracking_numbers) or None,
        package_count=doc.package_count,
        gross_weight=doc.gross_weight.value if doc.gross_weight else None,
        gross_weight_uom=doc.gross_weight.uom if doc.gross_weight else None,
    )
    for o, order in enumerate(doc.orders, 1):
        rows.add("ship_order", order_seq=o, po_number=order.po_number, po_date=order.po_date)
        _references(rows, order.references, "order", order=o)
        _parties(rows, order.parties, o)
        _packs(rows, order.packs, o, None)
        for item in order.items:
            _ship_item(rows, item, o, None)


def _naive_utc(moment: datetime | None) -> datetime | None:
    """A datetime for a ``DATETIME`` column: UTC when the source gave an offset, else as sent."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _packs(rows: Rows, packs: list[Pack], order_seq: int, parent: int | None) -> None:
    for pack in packs:
        seq = len(rows.children.get("ship_pack", [])) + 1
        marks = "\n".join(pack.marks) or None
        rows.add(
            "ship_pack",
            pack_seq=seq,
            order_seq=order_seq,
            parent_pack_seq=parent,
            level=pack.level,
            sscc=pack.sscc,
            marks=marks,
        )
        _packs(rows, pack.packs, order_seq, seq)
        for item in pack.items:
            _ship_item(rows, item, order_seq, seq)


def _ship_item(rows: Rows, item: ShippedItem, order_seq: int, pack_seq: int | None) -> None:
    rows.add(
        "ship_item",
        item_seq=len(rows.children.get("ship_item", [])) + 1,
        order_seq=order_seq,
        pack_seq=pack_seq,
        line_number=item.line_number,
        **_items(item.item),
        **_quantity("quantity", item.quantity),
        **_quantity("ordered_quantity", item.ordered_quantity),
        lot=item.lot,
        serial=item.serial,
        expiration_date=item.expiration_date,
        production_date=item.production_date,
        description=item.description,
    )


def invoice(rows: Rows, doc: Invoice) -> None:
    """An invoice's lines, then line-level and invoice-level charges and taxes."""
    for n, line in enumerate(doc.lines, 1):
        rows.add(
            "line",
            **_line(
                n,
                line.line_number,
                line.quantity,
                line.item,
                **_money("unit_price", line.unit_price),
                po_number=line.po_number,
                description=line.description,
            ),
        )
        _charges(rows, line.charges, line.taxes, n)
    _charges(rows, doc.charges, doc.taxes, None)


def _charges(rows: Rows, charges: list[Charge], taxes: list[Tax], line_seq: int | None) -> None:
    for charge in charges:
        rows.add(
            "charge",
            charge_seq=len(rows.children.get("charge", [])) + 1,
            line_seq=line_seq,
            kind=charge.kind,
            code=charge.code,
            **_money("amount", charge.amount),
            description=charge.description,
        )
    for tax in taxes:
        rows.add(
            "tax",
            tax_seq=len(rows.children.get("tax", [])) + 1,
            line_seq=line_seq,
            type_code=tax.type_code,
            **_money("amount", tax.amount),
            percent=tax.percent,
        )
