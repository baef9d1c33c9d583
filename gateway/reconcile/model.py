"""What reconciliation finds: a :class:`Discrepancy` (an "exception" in accounts-payable words).

Each carries its kind, a severity, the documents and PO line involved, what was expected and what
came, the amount at stake and a reason a buyer or an AP clerk understands. ``key`` identifies it
across runs (kind, PO line, the document it is about), so the store can tell a new exception from
one it already holds, and one that a later document put right from one still standing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

__all__ = ["KIND_SEVERITY", "Discrepancy", "Kind", "Severity"]

CENT = Decimal("0.01")


class Severity(StrEnum):
    """How urgent: ``high`` costs money if paid as is, ``medium`` needs a buyer, ``low`` is a scorecard matter."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Kind(StrEnum):
    """The exception kinds, grouped by the document compared (ack_, ship_, invoice_) or by time (late)."""

    ACK_REJECTED = "ack_rejected"
    ACK_BACKORDER = "ack_backorder"
    ACK_SUBSTITUTION = "ack_substitution"
    ACK_QUANTITY = "ack_quantity"
    ACK_UNIT = "ack_unit"
    ACK_PRICE = "ack_price"
    ACK_DATE = "ack_date"
    ACK_NOT_ORDERED = "ack_not_ordered"
    ACK_UNKNOWN_ORDER = "ack_unknown_order"
    SHIP_OVER_ORDERED = "ship_over_ordered"
    SHIP_OVER_ACKNOWLEDGED = "ship_over_acknowledged"
    SHIP_NOT_ORDERED = "ship_not_ordered"
    SHIP_UNKNOWN_ORDER = "ship_unknown_order"
    SHIP_UNIT = "ship_unit"
    SHIP_LOT_MISSING = "ship_lot_missing"
    INVOICE_PRICE = "invoice_price"
    INVOICE_TOTAL = "invoice_total"
    INVOICE_OVER_SHIPPED = "invoice_over_shipped"
    INVOICE_OVER_ORDERED = "invoice_over_ordered"
    INVOICE_NOT_ORDERED = "invoice_not_ordered"
    INVOICE_UNKNOWN_ORDER = "invoice_unknown_order"
    INVOICE_UNIT = "invoice_unit"
    INVOICE_DUPLICATE = "invoice_duplicate"
    INVOICE_CHARGE = "invoice_charge"
    ACK_LATE = "ack_late"
    SHIP_LATE = "ship_late"
    INVOICE_LATE = "invoice_late"


KIND_SEVERITY: dict[Kind, Severity] = {
    Kind.ACK_REJECTED: Severity.MEDIUM,
    Kind.ACK_BACKORDER: Severity.MEDIUM,
    Kind.ACK_SUBSTITUTION: Severity.MEDIUM,
    Kind.ACK_QUANTITY: Severity.MEDIUM,
    Kind.ACK_UNIT: Severity.MEDIUM,
    Kind.ACK_PRICE: Severity.HIGH,
    Kind.ACK_DATE: Severity.LOW,
    Kind.ACK_NOT_ORDERED: Severity.MEDIUM,
    Kind.ACK_UNKNOWN_ORDER: Severity.MEDIUM,
    Kind.SHIP_OVER_ORDERED: Severity.HIGH,
    Kind.SHIP_OVER_ACKNOWLEDGED: Severity.MEDIUM,
    Kind.SHIP_NOT_ORDERED: Severity.HIGH,
    Kind.SHIP_UNKNOWN_ORDER: Severity.HIGH,
    Kind.SHIP_UNIT: Severity.MEDIUM,
    Kind.SHIP_LOT_MISSING: Severity.HIGH,
    Kind.INVOICE_PRICE: Severity.HIGH,
    Kind.INVOICE_TOTAL: Severity.HIGH,
    Kind.INVOICE_OVER_SHIPPED: Severity.HIGH,
    Kind.INVOICE_OVER_ORDERED: Severity.HIGH,
    Kind.INVOICE_NOT_ORDERED: Severity.HIGH,
    Kind.INVOICE_UNKNOWN_ORDER: Severity.HIGH,
    Kind.INVOICE_UNIT: Severity.HIGH,
    Kind.INVOICE_DUPLICATE: Severity.HIGH,
    Kind.INVOICE_CHARGE: Severity.HIGH,
    Kind.ACK_LATE: Severity.LOW,
    Kind.SHIP_LATE: Severity.LOW,
    Kind.INVOICE_LATE: Severity.LOW,
}
"""The severity of each kind (every kind has one; a test keeps it so)."""


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One exception found on a PO chain.

    ``documents`` are the refs (``document:12``, ``outbound:3``) of the documents involved, the one it
    is about first; ``line`` the PO line number (None: the whole order or document); ``expected`` and
    ``actual`` are short values as words ("40 BX at 11.95"); ``amount`` the money at stake (None when
    none can be put on it, as for a late document).
    """

    kind: Kind
    po_number: str
    line: str | None
    documents: tuple[str, ...]
    expected: str
    actual: str
    amount: Decimal | None
    reason: str
    subject: str = ""
    severity: Severity = field(default=Severity.MEDIUM)

    @property
    def key(self) -> str:
        """Identity across runs: the kind, the PO line and what it is about (an invoice number, a lot...)."""
        return f"{self.kind}|{self.line or '-'}|{self.subject}"

    @classmethod
    def of(
        cls,
        kind: Kind,
        po_number: str,
        line: str | None,
        documents: tuple[str, ...],
        *,
        expected: str,
        actual: str,
        amount: Decimal | None,
        reason: str,
        subject: str = "",
    ) -> Discrepancy:
        """A discrepancy with the kind's severity."""
        if amount is not None:
            amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
        return cls(kind, po_number, line, documents, expected, actual, amount, reason, subject, KIND_SEVERITY[kind])
