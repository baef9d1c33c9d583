"""Ship notices against order and acknowledgment: over-shipments, items not ordered, lot-tracked items
shipped without lot or expiry. One notice may cover several POs: only its part for this PO is read."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from gateway.canonical.documents import Pack, PurchaseOrderLine, Purpose, ShipNotice, ShippedItem
from gateway.reconcile.acks import acknowledged, latest_ack
from gateway.reconcile.chain import Chain, ChainDoc
from gateway.reconcile.compare import more_than, not_on_order, unit_unknown
from gateway.reconcile.context import Context
from gateway.reconcile.matching import item_values, label
from gateway.reconcile.model import Kind
from gateway.reconcile.words import units

__all__ = ["chain_notices", "check_notices", "live_notices", "shipped_items"]


def live_notices(ctx: Context) -> list[ChainDoc[ShipNotice]]:
    """The notices that count: a cancelled one does not, nor one a replacement with its id supersedes."""
    return chain_notices(ctx.chain)


def chain_notices(chain: Chain) -> list[ChainDoc[ShipNotice]]:
    """:func:`live_notices` of a chain."""
    latest: dict[str, ChainDoc[ShipNotice]] = {}
    for notice in sorted(chain.notices, key=lambda n: (n.received_at, n.ref)):
        latest[notice.doc.shipment_id] = notice
    return [n for n in latest.values() if n.doc.purpose is not Purpose.CANCEL]


def _walk(packs: list[Pack]) -> Iterator[ShippedItem]:
    for pack in packs:
        yield from pack.items
        yield from _walk(pack.packs)


def shipped_items(notice: ShipNotice, po_number: str) -> Iterator[ShippedItem]:
    """Every item the notice ships against ``po_number``, loose or packed."""
    for order in notice.orders:
        if order.po_number == po_number:
            yield from order.items
            yield from _walk(order.packs)


def check_notices(ctx: Context) -> dict[int, Decimal]:
    """Check every notice of the chain; returns the quantity shipped per order line (by ``id`` of the line),
    in the order's unit, for the invoice checks."""
    shipped: dict[int, Decimal] = {}
    refs_of: dict[int, list[str]] = {}
    lines: dict[int, PurchaseOrderLine] = {}
    for notice in live_notices(ctx):
        doc = notice.doc
        if ctx.index is None:
            ctx.add(
                Kind.SHIP_UNKNOWN_ORDER,
                None,
                (notice.ref,),
                expected=f"purchase order {ctx.po}",
                actual=f"ship notice {doc.shipment_id}",
                amount=None,
                reason=f"ship notice {doc.shipment_id} ships against PO {ctx.po}, which was never sent or received",
                subject=doc.shipment_id,
            )
        for item in shipped_items(doc, ctx.po):
            line = ctx.index.find(item.line_number, item.item) if ctx.index is not None else None
            _check_lot(ctx, notice, item, line)
            if ctx.index is None:
                continue
            refs = (notice.ref, *ctx.order_ref)
            if line is None:
                what = f"{units(item.quantity.value, item.quantity.uom)} of {label(item.item)}"
                reason = f"ship notice {doc.shipment_id} ships {what}, which is not on the order"
                not_on_order(ctx, Kind.SHIP_NOT_ORDERED, item.line_number, refs, item.item, actual=what,
                             reason=reason, subject=f"{doc.shipment_id}:{label(item.item)}")  # fmt: skip
                continue
            converted = ctx.in_order_unit(item.quantity, line, item.item)
            if converted.value is None:
                unit_unknown(ctx, Kind.SHIP_UNIT, ctx.line_key(line), refs, verb="shipped", unit=item.quantity.uom,
                             ordered_unit=line.quantity.uom, subject=doc.shipment_id)  # fmt: skip
                continue
            shipped[id(line)] = shipped.get(id(line), Decimal(0)) + converted.value
            refs_of.setdefault(id(line), []).append(notice.ref)
            lines[id(line)] = line
    for key, total in shipped.items():
        _check_over(ctx, lines[key], total, tuple(dict.fromkeys(refs_of[key])))
    return shipped


def _check_over(ctx: Context, line: PurchaseOrderLine, total: Decimal, refs: tuple[str, ...]) -> None:
    limits = ctx.limits(line).quantity
    ordered, uom = line.quantity.value, line.quantity.uom
    price = line.unit_price.amount if line.unit_price else None
    if limits is None:
        return
    key = ctx.line_key(line)
    if more_than(ctx, Kind.SHIP_OVER_ORDERED, key, (*refs, *ctx.order_ref), verb="shipped", total=total,
                 against=ordered, what="ordered", uom=uom, price=price, limit=limits):  # fmt: skip
        return
    ack = latest_ack(ctx)
    if ack is None or ctx.index is None:
        return
    for ack_line in ack.doc.lines:
        if ctx.index.find(ack_line.line_number, ack_line.item) is not line:
            continue
        acked = acknowledged(ctx, ack_line, line)
        if acked is not None:
            more_than(ctx, Kind.SHIP_OVER_ACKNOWLEDGED, key, (*refs, ack.ref, *ctx.order_ref), verb="shipped",
                      total=total, against=acked, what="acknowledged", uom=uom, price=price, limit=limits,
                      priced=False)  # fmt: skip
        return


def _check_lot(ctx: Context, notice: ChainDoc[ShipNotice], item: ShippedItem, line: PurchaseOrderLine | None) -> None:
    if not ctx.policy.lot_tracked and not ctx.policy.items:
        return  # nothing is lot-tracked for this partner
    ids = item_values(item.item) + (item_values(line.item) if line is not None else [])
    if not ctx.policy.is_lot_tracked(ids) or (item.lot and item.expiration_date):
        return
    missing = " and ".join(
        what for what, value in (("lot", item.lot), ("expiry date", item.expiration_date)) if not value
    )
    price = line.unit_price.amount if line is not None and line.unit_price else None
    value = item.quantity.value * price if price is not None and line is not None else None
    key = ctx.line_key(line) if line is not None and ctx.index is not None else item.line_number
    ctx.add(
        Kind.SHIP_LOT_MISSING,
        key,
        (notice.ref, *ctx.order_ref),
        expected="lot and expiry date",
        actual=f"no {missing}",
        amount=value,
        reason=f"lot-tracked item {label(item.item)} shipped on {notice.doc.shipment_id} without {missing}",
        subject=f"{notice.doc.shipment_id}:{label(item.item)}",
    )
