"""Shared parts of the canonical documents: parties, items, quantities, money, provenance.

The canonical objects are the contract every ERP loader and REST consumer
sees, so they are strict (unknown fields are errors), typed (Decimal
amounts, dates) and documented field by field; their JSON Schema is
published by ``gateway schema``. Raw partner codes are always kept beside
any normalized value, never dropped.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CanonicalModel(BaseModel):
    """Base of every canonical type: strict shape, Decimals serialized as strings in JSON."""

    # defer_build: a model's validator is built when first used, not at import (a command that translates
    # ship notices never builds the invoice's): ~0.05 s less at every command's start-up.
    model_config = ConfigDict(
        extra="forbid", frozen=False, validate_assignment=True, ser_json_inf_nan="strings", defer_build=True
    )


class Identifier(CanonicalModel):
    """An identifier with the qualifier that says what kind it is (X12 qualifier or a name)."""

    qualifier: str = Field(description="What kind of id this is, e.g. 92 (assigned by buyer), 1 (DUNS), ZZ.")
    value: str


class Reference(CanonicalModel):
    """A document reference such as department (DP), contract (CT) or bill of lading (BM)."""

    qualifier: str = Field(description="Reference qualifier as sent, e.g. DP, CT, BM, VR.")
    value: str
    description: str | None = None


class Address(CanonicalModel):
    """A postal address."""

    lines: list[str] = Field(default_factory=list)
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class PartyRole(StrEnum):
    """Normalized party roles; ``Party.role_code`` keeps the partner's own code."""

    BUYER = "buyer"
    SHIP_TO = "ship_to"
    BILL_TO = "bill_to"
    SELLER = "seller"
    SHIP_FROM = "ship_from"
    REMIT_TO = "remit_to"
    SUPPLIER = "supplier"
    MANUFACTURER = "manufacturer"
    OTHER = "other"


class Party(CanonicalModel):
    """A party to the document: who buys, ships, receives, bills or is paid."""

    role: PartyRole
    role_code: str | None = Field(default=None, description="The partner's code for the role, e.g. ST, BT, RE.")
    name: str | None = None
    ids: list[Identifier] = Field(default_factory=list, description="Account numbers, DUNS, GLN, ...")
    address: Address | None = None
    contact: str | None = None


class ItemIds(CanonicalModel):
    """The ways an item is identified; any may be absent. ``other`` keeps the rest, qualified."""

    vendor_part: str | None = Field(default=None, description="Supplier's catalog number (VN/VC/VP).")
    buyer_item: str | None = Field(default=None, description="Hospital's item master number (IN/BP).")
    manufacturer_part: str | None = Field(default=None, description="Manufacturer's part number (MG/MF).")
    gtin: str | None = Field(default=None, description="GTIN / UPC / EAN (UP/UK/EN/EA).")
    ndc: str | None = Field(default=None, description="National Drug Code (N4/ND).")
    udi: str | None = Field(default=None, description="GS1 UDI device identifier or full UDI string.")
    other: list[Identifier] = Field(default_factory=list)


class Quantity(CanonicalModel):
    """A quantity with its unit of measure (as sent; code tables may normalize it)."""

    value: Decimal
    uom: str | None = Field(default=None, description="Unit of measure code, e.g. EA, BX, CA.")


class Money(CanonicalModel):
    """An amount of money. Never a float.

    ``currency`` is set only when the source states it for this amount (cXML ``Money/@currency``);
    absent, the amount is in the document's ``currency``, which is itself absent when neither the
    file nor the partner profile says which currency it is (nothing is assumed).
    """

    amount: Decimal
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class Provenance(CanonicalModel):
    """Where a document came from, for the audit trail and for every consumer's logs."""

    partner: str | None = Field(default=None, description="Partner profile id; None when no profile matched.")
    source_file_id: str | None = Field(default=None, description="Archive id (sha256) of the received file.")
    interchange_control: str | None = Field(default=None, description="ISA13, verbatim.")
    group_control: str | None = Field(default=None, description="GS06.")
    set_control: str | None = Field(default=None, description="ST02, verbatim.")
    format: str = Field(default="x12", description="x12, csv or xml.")
    version: str | None = Field(default=None, description="e.g. 004010, 005010, cXML 1.2.050.")
    test: bool = Field(default=False, description="True for test data (ISA15=T, cXML deploymentMode test).")
    correlation_id: str | None = Field(default=None, description="Follows the document into every log and request.")
    received_on: date | None = None
