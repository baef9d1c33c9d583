"""The documents of one purchase order, as reconciliation sees them: the order, its acknowledgments,
ship notices and invoices (credit memos among them), each with the ref it is stored under and when it
came. PO numbers are unique per buyer, not globally: a chain is per partner and PO number."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from gateway.canonical.documents import (
    Invoice,
    PurchaseOrder,
    PurchaseOrderAcknowledgment,
    Purpose,
    ShipNotice,
)

__all__ = ["Chain", "ChainDoc", "InvoiceSeen"]

D = TypeVar("D", PurchaseOrder, PurchaseOrderAcknowledgment, ShipNotice, Invoice)


@dataclass(frozen=True, slots=True)
class ChainDoc(Generic[D]):
    """A document of the chain: ``ref`` names it in the store (``document:12``, ``outbound:3``)."""

    ref: str
    doc: D
    received_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceSeen:
    """An invoice of the same supplier with a number this chain's invoices use (possibly on another PO)."""

    ref: str
    number: str
    received_at: datetime
    purpose: Purpose = Purpose.ORIGINAL
    po_number: str | None = None


@dataclass
class Chain:
    """One partner's purchase order and every document that refers to it.

    ``order`` is None when the 850 was never seen (the later documents are then exceptions themselves).
    ``invoices_seen`` lists, by invoice number, every invoice of the partner with a number that one of
    ``invoices`` carries, this chain's included, so a number used twice is found across POs.
    """

    partner: str
    po_number: str
    order: ChainDoc[PurchaseOrder] | None = None
    acks: list[ChainDoc[PurchaseOrderAcknowledgment]] = field(default_factory=list)
    notices: list[ChainDoc[ShipNotice]] = field(default_factory=list)
    invoices: list[ChainDoc[Invoice]] = field(default_factory=list)
    invoices_seen: Mapping[str, list[InvoiceSeen]] = field(default_factory=dict)
