"""From a canonical document to staging rows: pure (no database, no clock), so it is tested alone.

:func:`plan` validates the canonical JSON against the models (values arrive typed: Decimal, date),
computes the document's staging key and content hash, and lays out one header row and the child
rows per table (by name without the prefix). Sequence numbers count from 1 in document order and
tie the children together (``line_seq``, ``order_seq``, ``pack_seq``).

The staging key is the business document itself, not one received copy of it, so a correction
lands on the same row: the PO number for a purchase order (with its release number, when sent)
and for an acknowledgment (every 855 for a PO is the latest word on it), the shipment id for a
ship notice, the invoice number for an invoice (``|credit`` appended for a credit memo, so one
never overwrites the invoice it credits). The content hash leaves out ``provenance`` (control
numbers, file ids), so the same document received again in a new envelope is not a change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from gateway.canonical.common import Party, PartyRole
from gateway.canonical.documents import (
    CanonicalDocument,
    Invoice,
    PurchaseOrder,
    PurchaseOrderAcknowledgment,
    ShipNotice,
    Terms,
)
from gateway.delivery.staging import children

__all__ = ["DOC_TYPES", "NotLoadable", "Rows", "plan"]

DOC_TYPES = ("purchase_order", "po_acknowledgment", "ship_notice", "invoice")
"""The canonical document types the staging tables hold."""

_ADAPTER: TypeAdapter[CanonicalDocument] = TypeAdapter(
    Annotated[CanonicalDocument, Field(discriminator="document_type")]
)


class NotLoadable(ValueError):
    """The payload is not a canonical document these tables hold (the delivery is rejected)."""


@dataclass(slots=True)
class Rows:
    """One document laid out for the staging tables."""

    doc_type: str
    key: str
    content_sha256: str
    header: dict[str, Any]
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: str, **values: Any) -> None:
        """Append one row to a child table."""
        self.children.setdefault(table, []).append(values)


def plan(doc_type: str, document: dict[str, Any] | None) -> Rows:
    """The rows of one canonical document; :class:`NotLoadable` when it is not one the tables hold."""
    if doc_type not in DOC_TYPES:
        raise NotLoadable(f"the staging tables hold {', '.join(DOC_TYPES)}; not {doc_type!r}")
    if not isinstance(document, dict):
        raise NotLoadable(f"a {doc_type} payload without its canonical JSON object")
    if document.get("document_type") != doc_type:
        raise NotLoadable(f"the payload says {doc_type} but its document_type is {document.get('document_type')!r}")
    try:
        doc = _ADAPTER.validate_python(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise NotLoadable(f"not a valid canonical {doc_type}: {where}: {first['msg']}") from exc
    content = doc.model_dump(mode="json", exclude={"provenance"})
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    rows = Rows(doc_type, _key(doc), digest, _header(doc))
    children.common(rows, doc)
    if isinstance(doc, PurchaseOrder):
        children.po_lines(rows, doc)
    elif isinstance(doc, PurchaseOrderAcknowledgment):
        children.ack_lines(rows, doc)
    elif isinstance(doc, ShipNotice):
        children.shipment(rows, doc)
    else:
        children.invoice(rows, doc)
    return rows


def _key(doc: CanonicalDocument) -> str:
    if isinstance(doc, PurchaseOrder):
        return doc.po_number if not doc.release_number else f"{doc.po_number}|{doc.release_number}"
    if isinstance(doc, PurchaseOrderAcknowledgment):
        return doc.po_number
    if isinstance(doc, ShipNotice):
        return doc.shipment_id
    return f"{doc.invoice_number}|credit" if doc.credit_memo else doc.invoice_number


def _party(parties: list[Party], *roles: PartyRole) -> tuple[str | None, str | None]:
    """(first id, name) of the first party with one of ``roles``, in the order given."""
    for role in roles:
        for p in parties:
            if p.role == role:
                return (p.ids[0].value if p.ids else None), p.name
    return None, None


def _terms(terms: Terms | None) -> dict[str, Any]:
    t = terms or Terms()
    return {
        "terms_type_code": t.type_code,
        "terms_basis_date_code": t.basis_date_code,
        "terms_discount_percent": t.discount_percent,
        "terms_discount_days": t.discount_days,
        "terms_discount_due_date": t.discount_due_date,
        "terms_net_days": t.net_days,
        "terms_net_due_date": t.net_due_date,
        "terms_description": t.description,
    }


def _document_date(doc: CanonicalDocument) -> date:
    if isinstance(doc, PurchaseOrder):
        return doc.order_date
    if isinstance(doc, PurchaseOrderAcknowledgment):
        return doc.acknowledgment_date
    if isinstance(doc, ShipNotice):
        return doc.notice_date
    return doc.invoice_date


def _header(doc: CanonicalDocument) -> dict[str, Any]:
    p = doc.provenance
    buyer = _party(doc.parties, PartyRole.BUYER)
    vendor = _party(doc.parties, PartyRole.SELLER, PartyRole.SUPPLIER)
    ship_to = _party(doc.parties, PartyRole.SHIP_TO)
    bill_to = _party(doc.parties, PartyRole.BILL_TO)
    total = getattr(doc, "total", None)
    fob = getattr(doc, "fob", None)
    return {
        "source_file_sha256": p.source_file_id,
        "interchange_control": p.interchange_control,
        "group_control": p.group_control,
        "set_control": p.set_control,
        "source_format": p.format,
        "source_version": p.version,
        "test": p.test,
        "purpose": doc.purpose.value,
        "purpose_code": doc.purpose_code,
        "document_date": _document_date(doc),
        "po_number": None if isinstance(doc, ShipNotice) else doc.po_number,
        "po_date": doc.po_date if isinstance(doc, Invoice) else None,
        "release_number": doc.release_number if isinstance(doc, PurchaseOrder) else None,
        "order_type": doc.order_type if isinstance(doc, PurchaseOrder) else None,
        "requested_delivery": doc.requested_delivery if isinstance(doc, PurchaseOrder) else None,
        "ack_type": doc.ack_type.value if isinstance(doc, PurchaseOrderAcknowledgment) else None,
        "ack_type_code": doc.ack_type_code if isinstance(doc, PurchaseOrderAcknowledgment) else None,
        "supplier_order_number": doc.supplier_order_number if isinstance(doc, PurchaseOrderAcknowledgment) else None,
        "invoice_number": doc.invoice_number if isinstance(doc, Invoice) else None,
        "credit_memo": doc.credit_memo if isinstance(doc, Invoice) else None,
        "currency": doc.currency,
        "total_amount": total.amount if total else None,
        "total_currency": total.currency if total else None,
        **_terms(getattr(doc, "terms", None)),
        "fob_payment_method": fob.payment_method if fob else None,
        "fob_location": fob.location if fob else None,
        "buyer_id": buyer[0],
        "buyer_name": buyer[1],
        "vendor_id": vendor[0],
        "vendor_name": vendor[1],
        "ship_to_id": ship_to[0],
        "ship_to_name": ship_to[1],
        "bill_to_id": bill_to[0],
        "bill_to_name": bill_to[1],
        "notes": "\n".join(doc.notes) or None,
    }
