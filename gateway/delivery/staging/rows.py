"""From a canonical document to staging rows: pure (no database, no clock), so it is tested alone.

:func:`plan` validates the canonical JSON against the models (values arrive typed: Decimal, date),
computes the document's staging key and content hash, and lays out one header row and the child
rows per table (by name without the prefix). Sequence numbers count from 1 in document order and
tie the children together (``line_seq``, ``order_seq``, ``pack_seq``).

The staging key is the business document itself, not one received copy of it, so a correction
lands on the same row: the PO number for a purchase order (with its release number, when sent)
and for an acknowledgment (every 855 for a PO is the latest word on it), the shipment id for a
ship notice, the invoice number for an invoice (``|credit`` appended for a credit memo, so one
never overwrites the invoice it credits). The content hash leaves out ``provenance`` (control
numbers, file ids), so the same document received again in a new envelope is not a change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from gateway.canonical.common import ItemIds, Money, Party, PartyRole, Quantity, Reference
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
    Terms,
)

__all__ = ["DOC_TYPES", "NotLoadable", "Rows", "plan"]

DOC_TYPES = ("purchase_order", "po_acknowledgment", "ship_notice", "invoice")
"""The canonical document types the staging tables hold."""

_ADAPTER: TypeAdapter[CanonicalDocument] = TypeAdapter(
    Annotated[CanonicalDocument, Field(discriminator="document_type")]
)


class NotLoadable(ValueError):
    """The payload is not a canonical document these tables hold (the delivery is rejected)."""


@dataclass(slots=True)
class Rows:
    """One document laid out for the staging tables."""

    doc_type: str
    key: str
    content_sha256: str
    header: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: str, **values: Any) -> None:
        """Append one row to a child table."""
        self.children.setdefault(table, []).append(values)


def plan(doc_type: str, document: dict[str, Any] | None) -> Rows:
    """The rows of one canonical document; :class:`NotLoadable` when it is not one the tables hold."""
    if doc_type not in DOC_TYPES:
        raise NotLoadable(f"the staging tables hold {', '.join(DOC_TYPES)}; not {doc_type!r}")
    if not isinstance(document, dict):
        raise NotLoadable(f"a {doc_type} payload without its canonical JSON object")
    if document.get("document_type") != doc_type:
        raise NotLoadable(f"the payload says {doc_type} but its document_type is {document.get('document_type')!r}")
    try:
        doc = _ADAPTER.validate_python(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise NotLoadable(f"not a valid canonical {doc_type}: {where}: {first['msg']}") from exc
    content = doc.model_dump(mode="json", exclude={"provenance"})
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    rows = Rows(doc_type, _key(doc), digest, _header(doc))
    _common_children(rows, doc)
    if isinstance(doc, PurchaseOrder):
        _po_lines(rows, doc)
    elif isinstance(doc, PurchaseOrderAcknowledgment):
        _ack_lines(rows, doc)
    elif isinstance(doc, ShipNotice):
        _shipment(rows, doc)
    else:
        _invoice(rows, doc)
    return rows


def _key(doc: CanonicalDocument) -> str:
    if isinstance(doc, PurchaseOrder):
        return doc.po_number if not doc.release_number else f"{doc.po_number}|{doc.release_number}"
    if isinstance(doc, PurchaseOrderAcknowledgment):
        return doc.po_number
    if isinstance(doc, ShipNotice):
        return doc.shipment_id
    return f"{doc.invoice_number}|credit" if doc.credit_memo else doc.invoice_number


def _party(parties: list[Party], *roles: PartyRole) -> tuple[str | None, str | None]:
    """(first id, name) of the first party with one of ``roles``, in the order given."""
    for role in roles:
        for p in parties:
            if p.role == role:
                return (p.ids[0].value if p.ids else None), p.name
    return None, None


def _money(prefix: str, money: Money | None) -> dict[str, Any]:
    return {prefix: money.amount if money else None, f"{prefix}_currency": money.currency if money else None}


def _terms(terms: Terms | None) -> dict[str, Any]:
    t = terms or Terms()
    return {
        "terms_type_code": t.type_code,
        "terms_basis_date_code": t.basis_date_code,
        "terms_discount_percent": t.discount_percent,
        "terms_discount_days": t.discount_days,
        "terms_discount_due_date": t.discount_due_date,
        "terms_net_days": t.net_days,
        "terms_net_due_date": t.net_due_date,
        "terms_description": t.description,
    }


def _document_date(doc: CanonicalDocument) -> date:
    if isinstance(doc, PurchaseOrder):
        return doc.order_date
    if isinstance(doc, PurchaseOrderAcknowledgment):
        return doc.acknowledgment_date
    if isinstance(doc, ShipNotice):
        return doc.notice_date
    return doc.invoice_date


def _header(doc: CanonicalDocument) -> dict[str, Any]:
    p = doc.provenance
    buyer = _party(doc.parties, PartyRole.BUYER)
    vendor = _party(doc.parties, PartyRole.SELLER, PartyRole.SUPPLIER)
    ship_to = _party(doc.parties, PartyRole.SHIP_TO)
    bill_to = _party(doc.parties, PartyRole.BILL_TO)
    total = getattr(doc, "total", None)
    fob = getattr(doc, "fob", None)
    return {
        "source_file_sha256": p.source_file_id,
        "interchange_control": p.interchange_control,
        "group_control": p.group_control,
        "set_control": p.set_control,
        "source_format": p.format,
        "source_version": p.version,
        "test": p.test,
        "purpose": doc.purpose.value,
        "purpose_code": doc.purpose_code,
        "document_date": _document_date(doc),
        "po_number": None if isinstance(doc, ShipNotice) else doc.po_number,
        "po_date": doc.po_date if isinstance(doc, Invoice) else None,
        "release_number": doc.release_number if isinstance(doc, PurchaseOrder) else None,
        "order_type": doc.order_type if isinstance(doc, PurchaseOrder) else None,
        "requested_delivery": doc.requested_delivery if isinstance(doc, PurchaseOrder) else None,
        "ack_type": doc.ack_type.value if isinstance(doc, PurchaseOrderAcknowledgment) else None,
        "ack_type_code": doc.ack_type_code if isinstance(doc, PurchaseOrderAcknowledgment) else None,
        "supplier_order_number": doc.supplier_order_number if isinstance(doc, PurchaseOrderAcknowledgment) else None,
        "invoice_number": doc.invoice_number if isinstance(doc, Invoice) else None,
        "credit_memo": doc.credit_memo if isinstance(doc, Invoice) else None,
        "currency": doc.currency,
        "total_amount": total.amount if total else None,
        "total_currency": total.currency if total else None,
        **_terms(getattr(doc, "terms", None)),
        "fob_payment_method": fob.payment_method if fob else None,
        "fob_location": fob.location if fob else None,
        "buyer_id": buyer[0],
        "buyer_name": buyer[1],
        "vendor_id": vendor[0],
        "vendor_name": vendor[1],
        "ship_to_id": ship_to[0],
        "ship_to_name": ship_to[1],
        "bill_to_id": bill_to[0],
        "bill_to_name": bill_to[1],
        "notes": "\n".join(doc.notes) or None,
    }


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


def _common_children(rows: Rows, doc: CanonicalDocument) -> None:
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


def _po_lines(rows: Rows, doc: PurchaseOrder) -> None:
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


def _ack_lines(rows: Rows, doc: PurchaseOrderAcknowledgment) -> None:
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


def _shipment(rows: Rows, doc: ShipNotice) -> None:
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


def _invoice(rows: Rows, doc: Invoice) -> None:
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
