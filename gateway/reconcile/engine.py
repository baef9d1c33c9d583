"""Reconciling one PO chain: :func:`reconcile` runs every check and returns the exceptions found."""

from __future__ import annotations

from datetime import datetime

from gateway.reconcile.acks import check_acks
from gateway.reconcile.chain import Chain
from gateway.reconcile.config import Policy
from gateway.reconcile.context import Context
from gateway.reconcile.invoices import check_invoices
from gateway.reconcile.matching import LineIndex
from gateway.reconcile.model import Discrepancy
from gateway.reconcile.notices import check_notices, live_notices
from gateway.reconcile.timing import check_timing
from gateway.reconcile.units import Units

__all__ = ["reconcile"]


def reconcile(chain: Chain, policy: Policy, now: datetime, units: Units | None = None) -> list[Discrepancy]:
    """Every exception on ``chain`` under ``policy`` as of ``now``; each key appears once (the first
    finding wins). ``units`` may be passed to share one table between the partner's chains."""
    if not policy.enabled:
        return []
    order = chain.order
    index = LineIndex(order.doc, policy.item_id_order, policy.xref) if order is not None else None
    ctx = Context(chain, policy, units or Units(policy.uom), now, index)
    check_acks(ctx)
    shipped = check_notices(ctx)
    check_invoices(ctx, shipped, bool(live_notices(ctx)))
    check_timing(ctx)
    unique: dict[str, Discrepancy] = {}
    for found in ctx.found:
        unique.setdefault(found.key, found)
    return list(unique.values())
