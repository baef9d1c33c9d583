"""The four canonical documents: purchase order, PO acknowledgment, ship notice, invoice.

Line keys follow how hospitals reconcile: ``po_number`` + ``line_number``
(PO101 ↔ 855 PO101 ↔ 856 LIN01 ↔ 810 IT101), with item ids as fallback.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import Field

from gateway.canonical.common import (
    CanonicalModel,
    ItemIds,
    Money,
    Party,
    Provenance,
    Quantity,
    Reference,
)


class Purpose(StrEnum):
    """Why the document was sent (BEG01/BAK01/BSN01/BIG purpose codes, normalized)."""

    ORIGINAL = "original"
    REPLACE = "replace"
    CANCEL = "cancel"
    CHANGE = "change"
    OTHER = "other"


class DatedValue(CanonicalModel):
    """A date with the qualifier saying what it is (e.g. 002 requested delivery, 011 shipped)."""

    qualifier: str
    value: date
    time: str | None = None


class Charge(CanonicalModel):
    """A charge or allowance (SAC): freight, handling, discount."""

    kind: Literal["charge", "allowance"]
    code: str | None = Field(default=None, description="e.g. D240 freight.")
    amount: Money
    description: str | None = None


class Tax(CanonicalModel):
    """A tax amount (TXI)."""

    type_code: str | None = Field(default=None, description="e.g. ST state sales tax.")
    amount: Money
    percent: Decimal | None = None


class Price(CanonicalModel):
    """A price as the partner qualifies it (X12 CTP), kept as sent: contract, catalog, resale, a multiplier."""

    qualifier: str | None = Field(
        default=None, description="CTP02 price identifier, e.g. CON contract, UCP unit cost, RES resale, CAT catalog."
    )
    class_of_trade: str | None = Field(default=None, description="CTP01, e.g. RS retail, WS wholesale.")
    amount: Money | None = Field(default=None, description="CTP03 unit price.")
    quantity: Quantity | None = Field(default=None, description="CTP04/CTP05: the quantity the price is for.")
    multiplier_qualifier: str | None = Field(default=None, description="CTP06, e.g. DIS discount multiplier.")
    multiplier: Decimal | None = Field(default=None, description="CTP07.")
    basis_code: str | None = Field(default=None, description="CTP09 basis of unit price, e.g. PE per each.")


class PackSize(CanonicalModel):
    """How an item is packed (X12 PO4): e.g. 12 inner packs of 100 EA per case."""

    pack: Decimal | None = Field(default=None, description="PO401: inner units per outer pack.")
    size: Quantity | None = Field(default=None, description="PO402/PO403: the size of one inner unit.")
    packaging_code: str | None = Field(default=None, description="PO404, e.g. CTN25 (carton, corrugated).")
    weight_qualifier: str | None = Field(default=None, description="PO405, e.g. G gross weight.")
    gross_weight: Quantity | None = Field(default=None, description="PO406/PO407: weight per pack.")
    inner_pack: Decimal | None = Field(default=None, description="PO414: inner packs per outer pack.")


class Terms(CanonicalModel):
    """Terms of payment (ITD, cXML PaymentTerm)."""

    type_code: str | None = Field(default=None, description="ITD01, e.g. 01 basic, 05 discount not applicable.")
    basis_date_code: str | None = Field(default=None, description="ITD02, e.g. 3 invoice date, 15 receipt of goods.")
    discount_percent: Decimal | None = None
    discount_due_date: date | None = Field(default=None, description="ITD04.")
    discount_days: int | None = None
    net_due_date: date | None = Field(default=None, description="ITD06.")
    net_days: int | None = None
    discount_amount: Money | None = Field(default=None, description="ITD08 (implied 2 decimals).")
    day_of_month: int | None = Field(default=None, description="ITD13: payment due on this day of the month.")
    description: str | None = None


class FobTerms(CanonicalModel):
    """Who pays the freight and where title passes (X12 FOB)."""

    payment_method: str | None = Field(
        default=None, description="FOB01, e.g. PP prepaid, CC collect, DF defined by buyer and seller."
    )
    location_qualifier: str | None = Field(default=None, description="FOB02, e.g. OR origin, DE destination.")
    location: str | None = Field(default=None, description="FOB03.")
    terms_qualifier: str | None = Field(default=None, description="FOB04, e.g. 01 Incoterms.")
    terms_code: str | None = Field(default=None, description="FOB05, e.g. EXW, DDP.")
    title_location_qualifier: str | None = Field(default=None, description="FOB06.")
    title_location: str | None = Field(default=None, description="FOB07.")
    risk_of_loss: str | None = Field(default=None, description="FOB08.")
    risk_of_loss_description: str | None = Field(default=None, description="FOB09.")


class DocumentHeader(CanonicalModel):
    """What every canonical document carries."""

    provenance: Provenance = Field(default_factory=Provenance)
    purpose: Purpose = Purpose.ORIGINAL
    purpose_code: str | None = Field(default=None, description="The partner's purpose code as sent.")

    def key_purpose(self) -> Purpose:
        """The purpose a duplicate key carries: a copy sent again as such (X12 purpose code ``07``, duplicate,
        which the tables read as ``replace``) is keyed as the original it copies, so it is found a duplicate."""
        return Purpose.ORIGINAL if self.purpose_code == "07" else self.purpose

    currency: str | None = Field(
        default=None,
        min_length=3,
        max_length=3,
        description="ISO 4217 code as the file states it (CUR02, Money/@currency), else the partner profile's "
        "declared `currency`; absent when neither says, and never set on a document without amounts.",
    )
    parties: list[Party] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    dates: list[DatedValue] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


# --- purchase order ---------------------------------------------------------------


class PurchaseOrderLine(CanonicalModel):
    """A PO1 line."""

    line_number: str | None = Field(
        default=None,
        description="PO101: the key every later document echoes. Optional in X12 (some retail files omit it); "
        "lines without one are matched by item ids.",
    )
    quantity: Quantity
    unit_price: Money | None = Field(
        default=None, description="PO104; when PO104 is empty, the CTP unit cost price (CTP02=UCP)."
    )
    contract_price: Money | None = Field(default=None, description="The contract price (CTP02=CON).")
    prices: list[Price] = Field(default_factory=list, description="Every CTP of the line, as sent.")
    pack: PackSize | None = Field(default=None, description="PO4: how the item is packed.")
    item: ItemIds = Field(default_factory=ItemIds)
    description: str | None = None
    requested_delivery: date | None = None
    references: list[Reference] = Field(default_factory=list)
    lot: str | None = Field(default=None, description="Bill-only / implant orders carry lot per line.")
    serial: str | None = None


class PurchaseOrder(DocumentHeader):
    """A purchase order (850, cXML OrderRequest, CSV order)."""

    def business_key(self) -> str:
        """The duplicate key per partner: PO number and purpose (a change order is not a duplicate)."""
        return f"850:{self.po_number}:{self.key_purpose()}"

    document_type: Literal["purchase_order"] = "purchase_order"
    po_number: str
    order_date: date
    order_type: str | None = Field(default=None, description="BEG02 as sent, e.g. SA stand-alone, DS drop ship.")
    release_number: str | None = None
    requested_delivery: date | None = None
    terms: Terms | None = Field(default=None, description="Terms of payment (ITD).")
    fob: FobTerms | None = Field(default=None, description="Freight terms (FOB).")
    lines: list[PurchaseOrderLine] = Field(default_factory=list)
    total: Money | None = Field(default=None, description="The order total the buyer states (AMT*TT, cXML Total).")


# --- acknowledgment ---------------------------------------------------------------


class AckBucket(StrEnum):
    """Normalized line status buckets (see FIELD.md); the raw code is always kept beside it."""

    ACCEPTED = "accepted"
    ACCEPTED_WITH_CHANGE = "accepted_with_change"
    SUBSTITUTED = "substituted"
    BACKORDERED = "backordered"
    RESCHEDULED = "rescheduled"
    ON_HOLD = "on_hold"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class AckType(StrEnum):
    """Normalized header acknowledgment type (BAK02)."""

    ACCEPTED = "accepted"
    ACCEPTED_WITH_CHANGE = "accepted_with_change"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class LineStatus(CanonicalModel):
    """One ACK record: several per PO line are normal (e.g. 30 shipped + 20 backordered)."""

    bucket: AckBucket
    raw_code: str = Field(description="ACK01 as sent; unknown codes are kept, never dropped.")
    quantity: Quantity | None = None
    scheduled_date: date | None = Field(default=None, description="ACK05: the date the status refers to.")
    date_qualifier: str | None = Field(default=None, description="ACK04, e.g. 068 ship date.")
    substitute_item: ItemIds | None = None


class AcknowledgmentLine(CanonicalModel):
    """A PO line as the supplier acknowledges it."""

    line_number: str | None = Field(default=None, description="PO101 echoed; absent when the partner omits it.")
    quantity: Quantity | None = None
    unit_price: Money | None = None
    item: ItemIds = Field(default_factory=ItemIds)
    statuses: list[LineStatus] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="The supplier's reason text for the line (why rejected, backordered or repriced): "
        "855 N9/MSG (MTX in 005010), cXML ConfirmationStatus/Comments.",
    )


class PurchaseOrderAcknowledgment(DocumentHeader):
    """A PO acknowledgment (855, cXML ConfirmationRequest)."""

    def business_key(self) -> str:
        """The duplicate key per partner: PO number, acknowledgment date and purpose."""
        return f"855:{self.po_number}:{self.acknowledgment_date}:{self.key_purpose()}"

    document_type: Literal["po_acknowledgment"] = "po_acknowledgment"
    po_number: str
    acknowledgment_date: date
    ack_type: AckType = AckType.UNKNOWN
    ack_type_code: str | None = Field(default=None, description="BAK02 as sent.")
    supplier_order_number: str | None = None
    lines: list[AcknowledgmentLine] = Field(default_factory=list)


# --- ship notice ------------------------------------------------------------------


class ShippedItem(CanonicalModel):
    """An item level of the HL tree (LIN/SN1 and friends), with the GS1 UDI parts."""

    line_number: str | None = Field(default=None, description="LIN01, echoing the PO line.")
    item: ItemIds = Field(default_factory=ItemIds)
    quantity: Quantity
    ordered_quantity: Quantity | None = None
    lot: str | None = None
    serial: str | None = None
    expiration_date: date | None = None
    production_date: date | None = None
    description: str | None = None


class Pack(CanonicalModel):
    """A pack or tare level (MAN GM SSCC-18); packs may nest (tare > pack)."""

    level: Literal["tare", "pack"] = "pack"
    sscc: str | None = None
    marks: list[str] = Field(default_factory=list)
    packs: list[Pack] = Field(default_factory=list)
    items: list[ShippedItem] = Field(default_factory=list)


class ShippedOrder(CanonicalModel):
    """An order level: the PO (PRF) and what ships against it, loose or packed."""

    po_number: str
    po_date: date | None = None
    references: list[Reference] = Field(default_factory=list, description="The order level's REF segments.")
    parties: list[Party] = Field(default_factory=list, description="The order level's N1 loops, e.g. N1*BY.")
    packs: list[Pack] = Field(default_factory=list)
    items: list[ShippedItem] = Field(default_factory=list)


class ShipNotice(DocumentHeader):
    """An advance ship notice (856, cXML ShipNoticeRequest); one notice may cover several POs."""

    def business_key(self) -> str:
        """The duplicate key per partner: shipment id and purpose."""
        return f"856:{self.shipment_id}:{self.key_purpose()}"

    document_type: Literal["ship_notice"] = "ship_notice"
    shipment_id: str
    notice_date: date
    shipped_at: datetime | None = None
    ship_date: date | None = None
    carrier: str | None = Field(default=None, description="SCAC or carrier name (TD503/TD505).")
    tracking_numbers: list[str] = Field(default_factory=list)
    bill_of_lading: str | None = None
    package_count: int | None = None
    gross_weight: Quantity | None = None
    orders: list[ShippedOrder] = Field(default_factory=list)


# --- invoice ----------------------------------------------------------------------


class InvoiceLine(CanonicalModel):
    """An IT1 line; ``line_number`` echoes the PO line."""

    line_number: str | None = None
    quantity: Quantity
    unit_price: Money
    item: ItemIds = Field(default_factory=ItemIds)
    description: str | None = None
    po_number: str | None = Field(default=None, description="When lines of one invoice span POs.")
    charges: list[Charge] = Field(default_factory=list)
    taxes: list[Tax] = Field(default_factory=list)


class Invoice(DocumentHeader):
    """An invoice or credit memo (810, cXML InvoiceDetailRequest)."""

    def business_key(self) -> str:
        """The duplicate key per supplier: the invoice number. A credit memo and a correction (any purpose but
        original: a replacement, a cancellation) have keys of their own, as in the staging tables: neither is
        a duplicate of the original invoice."""
        key = f"810:{self.invoice_number}"
        if self.credit_memo:
            key += ":credit"
        purpose = self.key_purpose()
        return key if purpose == Purpose.ORIGINAL else f"{key}:{purpose}"

    document_type: Literal["invoice"] = "invoice"
    invoice_number: str = Field(description="The duplicate key per supplier.")
    invoice_date: date
    po_number: str | None = None
    po_date: date | None = None
    credit_memo: bool = False
    terms: Terms | None = None
    fob: FobTerms | None = Field(default=None, description="Freight terms (FOB).")
    lines: list[InvoiceLine] = Field(default_factory=list)
    charges: list[Charge] = Field(default_factory=list)
    taxes: list[Tax] = Field(default_factory=list)
    total: Money | None = Field(default=None, description="TDS01 in dollars (implied decimals applied).")


CanonicalDocument = PurchaseOrder | PurchaseOrderAcknowledgment | ShipNotice | Invoice
