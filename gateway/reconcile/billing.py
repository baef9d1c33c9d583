"""Chargeable supplies: each ship-notice line of an item the policy marks chargeable (implants,
high-value consumables) is a :class:`BillingLine`, billed at the PO line's contract price. The runtime
records it as a ``billing_event`` once per line, and withholds it while its PO line has an open price
exception (:data:`PRICE_KINDS`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.reconcile.chain import Chain
from gateway.reconcile.config import Policy
from gateway.reconcile.matching import LineIndex, item_values, label
from gateway.reconcile.model import Kind
from gateway.reconcile.notices import chain_notices, shipped_items

__all__ = ["PRICE_KINDS", "BillingLine", "billing_lines"]

PRICE_KINDS = frozenset({Kind.ACK_PRICE.value, Kind.INVOICE_PRICE.value})
"""The exceptions that hold back the billing of their PO line's chargeable supplies."""


@dataclass(frozen=True, slots=True)
class BillingLine:
    """One chargeable ship-notice line. ``key`` identifies it for good (shipment id, PO, position in the
    notice's part for the PO: a replacement notice for the shipment does not bill its lines again);
    ``line`` is the PO line's key in exceptions (None: no order line matched); ``position`` the line's
    place in the notice's part for the PO and ``item_id`` its first item id (the store's unique key)."""

    key: str
    partner: str
    po_number: str
    line: str | None
    position: int
    shipment_id: str
    notice: str
    item: dict[str, Any]
    lot: str | None
    serial: str | None
    udi: str | None
    quantity: Decimal
    uom: str | None
    price: Decimal | None
    currency: str | None
    item_id: str = ""

    def as_json(self) -> dict[str, Any]:
        """The event's body (amounts as strings: exact)."""
        amount = None if self.price is None else str(self.quantity * self.price)
        return {
            "event": "billing_event",
            "partner_id": self.partner,
            "po_number": self.po_number,
            "po_line": self.line,
            "ship_notice": self.shipment_id,
            "ship_notice_document": self.notice,
            "item": self.item,
            "lot": self.lot,
            "serial": self.serial,
            "udi": self.udi,
            "quantity": str(self.quantity),
            "uom": self.uom,
            "contract_price": None if self.price is None else str(self.price),
            "currency": self.currency,
            "amount": amount,
            "key": self.key,
        }


def billing_lines(chain: Chain, policy: Policy) -> list[BillingLine]:
    """The chargeable lines the chain's live ship notices carry for its PO."""
    if not policy.chargeable or not chain.notices:
        return []
    order = chain.order.doc if chain.order is not None else None
    index = LineIndex(order, policy.item_id_order, policy.xref) if order is not None else None
    out: list[BillingLine] = []
    for notice in chain_notices(chain):
        for n, item in enumerate(shipped_items(notice.doc, chain.po_number)):
            line = index.find(item.line_number, item.item) if index is not None else None
            ids = item_values(item.item) + (item_values(line.item) if line is not None else [])
            if not any(v in policy.chargeable for v in ids):
                continue
            price = line.unit_price.amount if line is not None and line.unit_price is not None else None
            currency = line.unit_price.currency if line is not None and line.unit_price is not None else None
            out.append(
                BillingLine(
                    key=f"{notice.doc.shipment_id}:{chain.po_number}:{n}"[:256],
                    partner=chain.partner,
                    po_number=chain.po_number,
                    line=LineIndex.key(line, index.lines) if line is not None and index is not None else None,
                    position=n,
                    shipment_id=notice.doc.shipment_id,
                    notice=notice.ref,
                    item=item.item.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
                    lot=item.lot,
                    serial=item.serial,
                    udi=item.item.udi,
                    quantity=item.quantity.value,
                    uom=None if item.quantity.uom is None else str(item.quantity.uom),
                    price=price,
                    currency=None if currency is None else str(currency),
                    item_id=label(item.item),
                )
            )
    return out
