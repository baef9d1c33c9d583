"""Acknowledgment against order: the latest 855 of the chain (it supersedes the earlier ones), line by line."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from gateway.canonical.documents import (
    AckBucket,
    AcknowledgmentLine,
    AckType,
    PurchaseOrderAcknowledgment,
    PurchaseOrderLine,
    Purpose,
)
from gateway.reconcile.chain import ChainDoc
from gateway.reconcile.compare import not_on_order, price_off, unit_unknown
from gateway.reconcile.context import Context
from gateway.reconcile.matching import label
from gateway.reconcile.model import Kind
from gateway.reconcile.words import money, per_unit, units

__all__ = ["check_acks", "latest_ack"]

_NOT_TO_SHIP = {AckBucket.REJECTED}


def latest_ack(ctx: Context) -> ChainDoc[PurchaseOrderAcknowledgment] | None:
    """The acknowledgment in force: the latest by date, then by arrival (a cancelled one does not count)."""
    live = [a for a in ctx.chain.acks if a.doc.purpose is not Purpose.CANCEL]
    return max(live, key=lambda a: (a.doc.acknowledgment_date, a.received_at, a.ref), default=None)


def acknowledged(ctx: Context, ack_line: AcknowledgmentLine, line: PurchaseOrderLine) -> Decimal | None:
    """The quantity the supplier means to ship (everything but rejected), in the order's unit."""
    if ack_line.statuses and all(s.quantity is not None for s in ack_line.statuses):
        total = Decimal(0)
        for status in ack_line.statuses:
            if status.bucket not in _NOT_TO_SHIP:
                converted = ctx.in_order_unit(status.quantity, line, ack_line.item)
                if converted.value is None:
                    return None
                total += converted.value
        return total
    return ctx.in_order_unit(ack_line.quantity, line, ack_line.item).value


def check_acks(ctx: Context) -> None:
    """Rejected, backordered, substituted lines; quantity, unit, price and date changes; lines not ordered."""
    current = latest_ack(ctx)
    if current is None:
        return
    ack = current.doc
    refs = (current.ref, *ctx.order_ref)
    if ctx.index is None or ctx.chain.order is None:
        ctx.add(
            Kind.ACK_UNKNOWN_ORDER,
            None,
            (current.ref,),
            expected=f"purchase order {ctx.po}",
            actual=f"acknowledgment dated {ack.acknowledgment_date}",
            amount=None,
            reason=f"acknowledgment for PO {ctx.po}, which was never sent or received",
            subject=current.ref,
        )
        return
    order = ctx.chain.order.doc
    if ack.ack_type is AckType.REJECTED and not ack.lines:
        value = sum((_value(line) for line in order.lines), Decimal(0))
        ctx.add(
            Kind.ACK_REJECTED,
            None,
            refs,
            expected="order accepted",
            actual=f"rejected ({ack.ack_type_code or 'RJ'})",
            amount=value,
            reason=f"the whole order was rejected ({money(value)})" + _notes(ack.notes),
        )
        return
    for ack_line in ack.lines:
        line = ctx.index.find(ack_line.line_number, ack_line.item)
        if line is None:
            what = label(ack_line.item)
            reason = f"acknowledged item {what} is not on the order"
            not_on_order(ctx, Kind.ACK_NOT_ORDERED, ack_line.line_number, refs, ack_line.item, actual=what,
                         reason=reason, subject=what)  # fmt: skip
            continue
        _check_line(ctx, refs, ack_line, line)


def _value(line: PurchaseOrderLine) -> Decimal:
    price = line.unit_price.amount if line.unit_price else Decimal(0)
    return line.quantity.value * price


def _notes(notes: list[str]) -> str:
    return f": {'; '.join(notes)}" if notes else ""


def _check_line(ctx: Context, refs: tuple[str, ...], ack_line: AcknowledgmentLine, line: PurchaseOrderLine) -> None:
    key = ctx.line_key(line)
    ordered, uom = line.quantity.value, line.quantity.uom
    price = line.unit_price.amount if line.unit_price else None
    for bucket, kind, verb in (
        (AckBucket.REJECTED, Kind.ACK_REJECTED, "rejected"),
        (AckBucket.BACKORDERED, Kind.ACK_BACKORDER, "backordered"),
    ):
        hit = [s for s in ack_line.statuses if s.bucket is bucket]
        if not hit:
            continue
        qty = sum((ctx.in_order_unit(s.quantity, line, ack_line.item).value or ordered for s in hit), Decimal(0))
        if qty == 0 and all(s.quantity is None for s in hit):
            qty = ordered
        value = qty * price if price is not None else None
        until = [s.scheduled_date for s in hit if s.scheduled_date]
        when = f" until {max(until)}" if until and bucket is AckBucket.BACKORDERED else ""
        ctx.add(
            kind,
            key,
            refs,
            expected=units(ordered, uom),
            actual=f"{units(qty, uom)} {verb}",
            amount=value,
            reason=f"{qty_of(qty, ordered, uom)} {verb}{when}"
            + (f" ({money(value)})" if value is not None else "")
            + _notes(ack_line.notes),
        )
    substitutes = [s.substitute_item for s in ack_line.statuses if s.bucket is AckBucket.SUBSTITUTED]
    if substitutes:
        new = label(substitutes[0]) if substitutes[0] is not None else "another item"
        ctx.add(
            Kind.ACK_SUBSTITUTION,
            key,
            refs,
            expected=label(line.item),
            actual=new,
            amount=None,
            reason=f"item {label(line.item)} substituted by {new}" + _notes(ack_line.notes),
        )
    _check_quantity_price(ctx, refs, key, ack_line, line)
    _check_dates(ctx, refs, key, ack_line, line)


def qty_of(part: Decimal, whole: Decimal, uom: str | None) -> str:
    """``2 of 4 cases``."""
    return f"{units(part, None)} of {units(whole, uom)}"


def _check_quantity_price(
    ctx: Context, refs: tuple[str, ...], key: str, ack_line: AcknowledgmentLine, line: PurchaseOrderLine
) -> None:
    ordered, uom = line.quantity.value, line.quantity.uom
    limits = ctx.limits(line)
    unit = ack_line.quantity.uom if ack_line.quantity else None
    factor = ctx.units.factor(unit, uom, ctx.ids(line, ack_line.item))
    if factor is None:
        unit_unknown(ctx, Kind.ACK_UNIT, key, refs, verb="acknowledged", unit=unit, ordered_unit=uom)
        return
    shipping = acknowledged(ctx, ack_line, line)
    rejected = sum(
        (
            ctx.in_order_unit(s.quantity, line, ack_line.item).value or Decimal(0)
            for s in ack_line.statuses
            if s.bucket is AckBucket.REJECTED
        ),
        Decimal(0),
    )
    if shipping is not None and limits.quantity is not None:
        total = shipping + rejected
        if not limits.quantity.allows(ordered, total):
            price = line.unit_price.amount if line.unit_price else None
            value = (total - ordered) * price if price is not None else None
            ctx.add(
                Kind.ACK_QUANTITY,
                key,
                refs,
                expected=units(ordered, uom),
                actual=units(total, uom),
                amount=None if value is None else abs(value),
                reason=f"acknowledged {units(total, uom)}, ordered {units(ordered, uom)}",
            )
    if ack_line.unit_price is not None and line.unit_price is not None and limits.price is not None:
        acked_price = ack_line.unit_price.amount / factor
        ordered_price = line.unit_price.amount
        if not limits.price.allows(ordered_price, acked_price):
            at_stake, reason = price_off("acknowledged", acked_price, ordered_price, ordered, uom)
            ctx.add(
                Kind.ACK_PRICE,
                key,
                refs,
                expected=per_unit(ordered_price, uom),
                actual=per_unit(acked_price, uom),
                amount=abs(at_stake),
                reason=reason,
            )


def _check_dates(
    ctx: Context, refs: tuple[str, ...], key: str, ack_line: AcknowledgmentLine, line: PurchaseOrderLine
) -> None:
    assert ctx.chain.order is not None
    asked = line.requested_delivery or ctx.chain.order.doc.requested_delivery
    limits = ctx.limits(line).date
    if asked is None or limits is None:
        return
    for status in ack_line.statuses:
        when = status.scheduled_date
        if when is None or status.bucket in (AckBucket.REJECTED, AckBucket.BACKORDERED):
            continue
        early = limits.early_days is not None and when < asked - timedelta(days=limits.early_days)
        if when > asked + timedelta(days=limits.late_days) or early:
            days = (when - asked).days
            ctx.add(
                Kind.ACK_DATE,
                key,
                refs,
                expected=str(asked),
                actual=str(when),
                amount=None,
                reason=f"scheduled {when}, requested by {asked} ({abs(days)} days {'late' if days > 0 else 'early'})",
                subject=str(when),
            )
            return
