"""What every check reads: the chain, the partner's policy, its units, the order's line index, the time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from gateway.canonical.common import ItemIds, Quantity
from gateway.canonical.documents import PurchaseOrderLine
from gateway.reconcile.chain import Chain
from gateway.reconcile.config import Policy, Tolerances
from gateway.reconcile.matching import LineIndex, item_values
from gateway.reconcile.model import Discrepancy, Kind
from gateway.reconcile.units import Units

__all__ = ["Context", "Converted"]

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Converted:
    """A quantity in the order line's unit, or why it could not be converted."""

    value: Decimal | None
    factor: Decimal | None


@dataclass
class Context:
    """One chain under reconciliation; checks append to ``found``."""

    chain: Chain
    policy: Policy
    units: Units
    now: datetime
    index: LineIndex | None = None
    found: list[Discrepancy] = field(default_factory=list)

    @property
    def po(self) -> str:
        return self.chain.po_number

    @property
    def order_ref(self) -> tuple[str, ...]:
        return (self.chain.order.ref,) if self.chain.order else ()

    def add(
        self,
        kind: Kind,
        line: str | None,
        refs: tuple[str, ...],
        *,
        expected: str,
        actual: str,
        amount: Decimal | None,
        reason: str,
        subject: str = "",
    ) -> None:
        """Record one exception on this chain."""
        self.found.append(
            Discrepancy.of(
                kind,
                self.po,
                line,
                refs,
                expected=expected,
                actual=actual,
                amount=amount,
                reason=reason,
                subject=subject,
            )
        )

    def ids(self, line: PurchaseOrderLine, other: ItemIds | None = None) -> list[str]:
        """The item ids of an order line and of the line matched to it."""
        return item_values(line.item) + (item_values(other) if other is not None else [])

    def limits(self, line: PurchaseOrderLine) -> Tolerances:
        """The tolerances for an order line's item."""
        if not self.policy.items:  # no item overrides: no need to look at the item's ids
            return self.policy.tolerances
        return self.policy.limits(item_values(line.item))

    def line_key(self, line: PurchaseOrderLine) -> str:
        """The PO line's key in exceptions."""
        assert self.index is not None
        return LineIndex.key(line, self.index.lines)

    def in_order_unit(self, quantity: Quantity | None, line: PurchaseOrderLine, other: ItemIds) -> Converted:
        """``quantity`` in the order line's unit (factor None: no conversion declared)."""
        if quantity is None:
            return Converted(None, Decimal(1))
        if quantity.uom == line.quantity.uom or quantity.uom is None or line.quantity.uom is None:
            return Converted(quantity.value, ONE)
        factor = self.units.factor(quantity.uom, line.quantity.uom, self.ids(line, other))
        if factor is None:
            return Converted(None, None)
        return Converted(quantity.value * factor, factor)
