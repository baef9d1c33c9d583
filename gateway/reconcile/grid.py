"""A chain line by line, as a buyer reads it: ordered, acknowledged, shipped and invoiced quantities
(in the order's unit) and prices, for ``gateway recon show``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from gateway.canonical.documents import AckBucket
from gateway.reconcile.acks import acknowledged, latest_ack
from gateway.reconcile.chain import Chain
from gateway.reconcile.config import Policy
from gateway.reconcile.context import Context
from gateway.reconcile.matching import LineIndex, label
from gateway.reconcile.notices import live_notices, shipped_items
from gateway.reconcile.units import Units

__all__ = ["GridLine", "grid", "rates"]


@dataclass
class GridLine:
    """One PO line across the chain (quantities in the order's unit; None: no such document yet)."""

    line: str
    item: str
    uom: str | None
    ordered: Decimal
    price: Decimal | None
    acknowledged: Decimal | None = None
    shipped: Decimal | None = None
    invoiced: Decimal | None = None
    backordered: Decimal | None = None
    invoiced_prices: list[Decimal] = field(default_factory=list)
    lots: list[str] = field(default_factory=list)


def grid(chain: Chain, policy: Policy, now: datetime) -> list[GridLine]:
    """The order's lines with what each later document says of them (empty without an order)."""
    if chain.order is None:
        return []
    index = LineIndex(chain.order.doc, policy.item_id_order, policy.xref)
    ctx = Context(chain, policy, Units(policy.uom), now, index)
    rows = {
        id(line): GridLine(
            ctx.line_key(line),
            label(line.item),
            line.quantity.uom,
            line.quantity.value,
            line.unit_price.amount if line.unit_price else None,
        )
        for line in index.lines
    }
    ack = latest_ack(ctx)
    for ack_line in ack.doc.lines if ack else []:
        line = index.find(ack_line.line_number, ack_line.item)
        if line is not None:
            rows[id(line)].acknowledged = acknowledged(ctx, ack_line, line)
            held = [s for s in ack_line.statuses if s.bucket is AckBucket.BACKORDERED]
            if held:
                rows[id(line)].backordered = sum(
                    (ctx.in_order_unit(s.quantity, line, ack_line.item).value or Decimal(0) for s in held), Decimal(0)
                )
    for notice in live_notices(ctx):
        for item in shipped_items(notice.doc, chain.po_number):
            line = index.find(item.line_number, item.item)
            value = ctx.in_order_unit(item.quantity, line, item.item).value if line is not None else None
            if line is not None and value is not None:
                row = rows[id(line)]
                row.shipped = (row.shipped or Decimal(0)) + value
                if item.lot:
                    row.lots.append(item.lot)
    for inv in chain.invoices:
        for inv_line in inv.doc.lines:
            if (inv_line.po_number or inv.doc.po_number) != chain.po_number:
                continue
            line = index.find(inv_line.line_number, inv_line.item)
            converted = ctx.in_order_unit(inv_line.quantity, line, inv_line.item) if line is not None else None
            if line is None or converted is None or converted.value is None or converted.factor is None:
                continue
            row = rows[id(line)]
            sign = -1 if inv.doc.credit_memo else 1
            row.invoiced = (row.invoiced or Decimal(0)) + sign * converted.value
            if not inv.doc.credit_memo:
                row.invoiced_prices.append(inv_line.unit_price.amount / converted.factor)
    return list(rows.values())


def rates(lines: list[GridLine]) -> tuple[int, int, int]:
    """(lines ordered, lines shipped in full, lines with a backorder) of one or more chains' grids."""
    full = sum(1 for g in lines if g.shipped is not None and g.shipped >= g.ordered)
    held = sum(1 for g in lines if g.backordered)
    return len(lines), full, held
