"""Small builders of canonical documents and chains for the reconciliation tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from gateway.canonical.common import ItemIds, Money, Quantity
from gateway.canonical.documents import (
    AckBucket,
    AcknowledgmentLine,
    Charge,
    Invoice,
    InvoiceLine,
    LineStatus,
    PurchaseOrder,
    PurchaseOrderAcknowledgment,
    PurchaseOrderLine,
    Purpose,
    ShipNotice,
    ShippedItem,
    ShippedOrder,
)
from gateway.reconcile import Chain, ChainDoc, InvoiceSeen

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def D(x: str | int) -> Decimal:
    return Decimal(str(x))


def q(value: str | int, uom: str = "BX") -> Quantity:
    return Quantity(value=D(value), uom=uom)


def m(value: str | int) -> Money:
    return Money(amount=D(value))


def order(*lines: tuple[str, str | int, str, str | int, str], po: str = "PO1", **kw: Any) -> PurchaseOrder:
    """Lines as (line number, quantity, unit, price, vendor part)."""
    return PurchaseOrder(
        po_number=po,
        order_date=date(2026, 11, 2),
        requested_delivery=kw.get("requested", date(2026, 11, 10)),
        lines=[
            PurchaseOrderLine(line_number=n, quantity=q(qty, uom), unit_price=m(price), item=ItemIds(vendor_part=vp))
            for n, qty, uom, price, vp in lines
        ],
    )


def ack_line(
    n: str | None,
    qty: str | int,
    uom: str,
    price: str | int,
    vp: str,
    *statuses: tuple[AckBucket, str | int, date | None],
) -> AcknowledgmentLine:
    return AcknowledgmentLine(
        line_number=n,
        quantity=q(qty, uom),
        unit_price=m(price),
        item=ItemIds(vendor_part=vp),
        statuses=[
            LineStatus(bucket=b, raw_code=b.value[:2].upper(), quantity=q(sq, uom), scheduled_date=d)
            for b, sq, d in statuses
        ],
    )


def ack(*lines: AcknowledgmentLine, po: str = "PO1", day: int = 3) -> PurchaseOrderAcknowledgment:
    return PurchaseOrderAcknowledgment(po_number=po, acknowledgment_date=date(2026, 11, day), lines=list(lines))


def item(n: str | None, qty: str | int, uom: str, vp: str, **kw: Any) -> ShippedItem:
    return ShippedItem(line_number=n, quantity=q(qty, uom), item=ItemIds(vendor_part=vp), **kw)


def notice(sid: str, *orders: tuple[str, list[ShippedItem]], day: int = 5, **kw: Any) -> ShipNotice:
    return ShipNotice(
        shipment_id=sid,
        notice_date=date(2026, 11, day),
        ship_date=date(2026, 11, day),
        orders=[ShippedOrder(po_number=po, items=items) for po, items in orders],
        **kw,
    )


def invoice(
    number: str,
    *lines: tuple[str | None, str | int, str, str | int, str],
    po: str = "PO1",
    day: int = 6,
    total: str | None = None,
    charges: list[Charge] | None = None,
    credit: bool = False,
    purpose: Purpose = Purpose.ORIGINAL,
) -> Invoice:
    return Invoice(
        invoice_number=number,
        invoice_date=date(2026, 11, day),
        po_number=po,
        credit_memo=credit,
        purpose=purpose,
        lines=[
            InvoiceLine(line_number=n, quantity=q(qty, uom), unit_price=m(price), item=ItemIds(vendor_part=vp))
            for n, qty, uom, price, vp in lines
        ],
        charges=charges or [],
        total=None if total is None else m(total),
    )


def chain(
    po: PurchaseOrder | None,
    acks: list[PurchaseOrderAcknowledgment] = (),  # type: ignore[assignment]
    notices: list[ShipNotice] = (),  # type: ignore[assignment]
    invoices: list[Invoice] = (),  # type: ignore[assignment]
    *,
    seen: dict[str, list[InvoiceSeen]] | None = None,
    po_number: str = "PO1",
) -> Chain:
    """A chain with refs document:1.. in the order given and arrival an hour apart from T0."""
    n = 0

    def doc(d: Any) -> ChainDoc[Any]:
        nonlocal n
        n += 1
        return ChainDoc(f"document:{n}", d, T0.replace(hour=9 + n))

    c = Chain(
        partner="medsupply",
        po_number=po_number,
        order=doc(po) if po is not None else None,
        acks=[doc(a) for a in acks],
        notices=[doc(s) for s in notices],
        invoices=[doc(i) for i in invoices],
    )
    by_number: dict[str, list[InvoiceSeen]] = {}
    for inv in c.invoices:
        by_number.setdefault(inv.doc.invoice_number, []).append(
            InvoiceSeen(inv.ref, inv.doc.invoice_number, inv.received_at, inv.doc.purpose, inv.doc.po_number)
        )
    for number, extra in (seen or {}).items():
        by_number.setdefault(number, []).extend(extra)
    c.invoices_seen = by_number
    return c
