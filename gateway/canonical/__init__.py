"""Canonical documents: the public contract every ERP loader and REST consumer sees.

``SCHEMAS`` names each document type for ``gateway schema``; ``__all__`` is
pinned by a test so the public API changes only on purpose.
"""

from __future__ import annotations

from gateway.canonical.common import (
    Address,
    CanonicalModel,
    Identifier,
    ItemIds,
    Money,
    Party,
    PartyRole,
    Provenance,
    Quantity,
    Reference,
)
from gateway.canonical.documents import (
    AckBucket,
    AcknowledgmentLine,
    AckType,
    CanonicalDocument,
    Charge,
    DatedValue,
    FobTerms,
    Invoice,
    InvoiceLine,
    LineStatus,
    Pack,
    PackSize,
    Price,
    PurchaseOrder,
    PurchaseOrderAcknowledgment,
    PurchaseOrderLine,
    Purpose,
    ShipNotice,
    ShippedItem,
    ShippedOrder,
    Tax,
    Terms,
)

SCHEMAS: dict[str, type[CanonicalModel]] = {
    "purchase_order": PurchaseOrder,
    "po_acknowledgment": PurchaseOrderAcknowledgment,
    "ship_notice": ShipNotice,
    "invoice": Invoice,
}

__all__ = [
    "SCHEMAS",
    "AckBucket",
    "AckType",
    "AcknowledgmentLine",
    "Address",
    "CanonicalDocument",
    "Charge",
    "DatedValue",
    "FobTerms",
    "Identifier",
    "Invoice",
    "InvoiceLine",
    "ItemIds",
    "LineStatus",
    "Money",
    "Pack",
    "PackSize",
    "Party",
    "PartyRole",
    "Price",
    "Provenance",
    "PurchaseOrder",
    "PurchaseOrderAcknowledgment",
    "PurchaseOrderLine",
    "Purpose",
    "Quantity",
    "Reference",
    "ShipNotice",
    "ShippedItem",
    "ShippedOrder",
    "Tax",
    "Terms",
]
