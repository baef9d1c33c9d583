"""The line comparisons the acknowledgment, ship-notice and invoice checks share: a line not on the order,
a unit with no declared conversion, more than ordered (or acknowledged, or shipped), a unit price off the
order's. Each records its exception with the same kind of reason whichever document it is about."""

from __future__ import annotations

from decimal import Decimal

from gateway.canonical.common import ItemIds
from gateway.reconcile.config import Limit
from gateway.reconcile.context import Context
from gateway.reconcile.matching import label
from gateway.reconcile.model import Kind
from gateway.reconcile.words import money, per_unit, units

__all__ = ["more_than", "not_on_order", "price_off", "unit_unknown"]


def not_on_order(
    ctx: Context,
    kind: Kind,
    line_number: str | None,
    refs: tuple[str, ...],
    item: ItemIds,
    *,
    actual: str,
    reason: str,
    amount: Decimal | None = None,
    subject: str,
) -> None:
    """A line whose item matches no order line: ``reason`` says which document carries it."""
    ctx.add(
        kind,
        line_number,
        refs,
        expected="a line of the order",
        actual=actual or label(item),
        amount=amount,
        reason=reason,
        subject=subject,
    )


def unit_unknown(
    ctx: Context,
    kind: Kind,
    key: str,
    refs: tuple[str, ...],
    *,
    verb: str,
    unit: str | None,
    ordered_unit: str | None,
    amount: Decimal | None = None,
    subject: str = "",
) -> None:
    """A quantity in a unit with no declared conversion to the order line's (never guessed)."""
    ctx.add(
        kind,
        key,
        refs,
        expected=str(ordered_unit),
        actual=str(unit),
        amount=amount,
        reason=f"{verb} in {unit}, ordered in {ordered_unit}, and no conversion between them is declared",
        subject=subject,
    )


def more_than(
    ctx: Context,
    kind: Kind,
    key: str,
    refs: tuple[str, ...],
    *,
    verb: str,
    total: Decimal,
    against: Decimal,
    what: str,
    uom: str | None,
    price: Decimal | None,
    limit: Limit,
    priced: bool = True,
) -> bool:
    """``total`` (shipped, invoiced) above ``against`` (ordered, acknowledged, shipped) beyond ``limit``:
    records ``shipped 12 boxes, ordered 10 boxes: 2 boxes more (24.00)`` and returns True; ``priced``:
    the value of the extra in the reason too."""
    if total <= against or limit.allows(against, total):
        return False
    extra = total - against
    value = extra * price if price is not None else None
    ctx.add(
        kind,
        key,
        refs,
        expected=units(against, uom),
        actual=units(total, uom),
        amount=value,
        reason=f"{verb} {units(total, uom)}, {what} {units(against, uom)}: {units(extra, uom)} more"
        + (f" ({money(value)})" if value is not None and priced else ""),
    )
    return True


def price_off(verb: str, price: Decimal, ordered: Decimal, quantity: Decimal, uom: str | None) -> tuple[Decimal, str]:
    """A unit price against the order's on ``quantity``: (the amount at stake, signed, and the reason
    ``invoiced 12.40 a box, ordered at 11.95: 0.45 over on 40 boxes = 18.00``)."""
    diff = price - ordered
    at_stake = diff * quantity
    reason = (
        f"{verb} {per_unit(price, uom)}, ordered at {money(ordered)}: {money(abs(diff))} "
        f"{'over' if diff > 0 else 'under'} on {units(quantity, uom)} = {money(abs(at_stake))}"
    )
    return at_stake, reason
