"""Documents that came late, or have not come by now: no 855 within N hours of the 850, no 856 by the
expected ship date, no 810 N days after shipment. A document that came after its deadline keeps the
exception (the SLA was missed); one still missing is measured against ``now``."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from gateway.canonical.documents import AckBucket
from gateway.reconcile.acks import latest_ack
from gateway.reconcile.context import Context
from gateway.reconcile.invoices import _counting
from gateway.reconcile.model import Kind
from gateway.reconcile.notices import live_notices

__all__ = ["check_timing"]


def _hours(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hours" if hours < 72 else f"{delta.days} days"


def check_timing(ctx: Context) -> None:
    """The three SLAs of the chain's partner (an SLA of 0 is not checked)."""
    order = ctx.chain.order
    if order is None:
        return
    slas = ctx.policy.slas
    if slas.ack_hours:
        _ack_late(ctx, order.received_at, slas.ack_hours)
    if slas.ship_grace_days:
        _ship_late(ctx, slas.ship_grace_days)
    if slas.invoice_days:
        _invoice_late(ctx, slas.invoice_days)


def _ack_late(ctx: Context, sent: datetime, hours: int) -> None:
    due = sent + timedelta(hours=hours)
    first = min((a.received_at for a in ctx.chain.acks), default=None)
    if first is None and ctx.now > due:
        reason = f"no acknowledgment {_hours(ctx.now - sent)} after the order (due within {hours} hours)"
        actual = "none yet"
    elif first is not None and first > due:
        reason = f"acknowledged {_hours(first - sent)} after the order (due within {hours} hours)"
        actual = f"{first:%Y-%m-%d %H:%M}"
    else:
        return
    ctx.add(
        Kind.ACK_LATE, None, ctx.order_ref, expected=f"by {due:%Y-%m-%d %H:%M}", actual=actual, amount=None,
        reason=reason,
    )  # fmt: skip


def _expected_ship(ctx: Context) -> date | None:
    ack = latest_ack(ctx)
    if ack is not None:
        dates = [
            s.scheduled_date
            for line in ack.doc.lines
            for s in line.statuses
            if s.scheduled_date and s.bucket not in (AckBucket.BACKORDERED, AckBucket.REJECTED)
        ]
        if dates:
            return min(dates)
    assert ctx.chain.order is not None
    order = ctx.chain.order.doc
    asked = [line.requested_delivery for line in order.lines if line.requested_delivery]
    return order.requested_delivery or min(asked, default=None)


def _ship_date(ctx: Context) -> date | None:
    return min((n.doc.ship_date or n.doc.notice_date for n in live_notices(ctx)), default=None)


def _ship_late(ctx: Context, grace: int) -> None:
    expected = _expected_ship(ctx)
    if expected is None:
        return
    due = expected + timedelta(days=grace)
    first = _ship_date(ctx)
    if first is None and ctx.now.date() > due:
        actual, reason = "none yet", f"nothing shipped {(ctx.now.date() - expected).days} days after {expected}"
    elif first is not None and first > due:
        actual, reason = (
            str(first),
            f"first shipped {first}, expected by {expected} ({(first - expected).days} days late)",
        )
    else:
        return
    ctx.add(Kind.SHIP_LATE, None, ctx.order_ref, expected=str(expected), actual=actual, amount=None, reason=reason)


def _invoice_late(ctx: Context, days: int) -> None:
    shipped = _ship_date(ctx)
    if shipped is None:
        return
    due = shipped + timedelta(days=days)
    first = min((i.doc.invoice_date for i in _counting(ctx) if not i.doc.credit_memo), default=None)
    if first is None and ctx.now.date() > due:
        actual, reason = (
            "none yet",
            f"no invoice {(ctx.now.date() - shipped).days} days after shipment on {shipped} (due within {days} days)",
        )
    elif first is not None and first > due:
        actual, reason = (
            str(first),
            f"invoiced {(first - shipped).days} days after shipment on {shipped} (due within {days} days)",
        )
    else:
        return
    ctx.add(Kind.INVOICE_LATE, None, ctx.order_ref, expected=f"by {due}", actual=actual, amount=None, reason=reason)
