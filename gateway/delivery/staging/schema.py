"""The staging tables, as SQLAlchemy metadata built for a table prefix (``stg_`` by default).

One header row per document key and partner (``{prefix}document``), its previous versions
(``{prefix}document_history``), and child tables keyed by ``(header_id, <seq>)``, holding the
current version only. ``docs/erp-staging.md`` documents every column for ERP teams; the
migrations in ``migrations/versions`` create exactly these tables (a test compares them).

Sizes are chosen for MariaDB/MySQL's limits: the unique key is 184 characters (736 bytes in
utf8mb4, under InnoDB's oldest 767-byte index limit), free text is ``TEXT`` (not counted in the
65,535-byte row limit), and no other string column is indexed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from gateway.delivery.staging.types import LONG_TEXT, ExactDecimal

__all__ = ["CHILD_TABLES", "build_metadata"]

CHILD_TABLES = (
    "party",
    "reference",
    "date",
    "line",
    "line_status",
    "charge",
    "tax",
    "shipment",
    "ship_order",
    "ship_pack",
    "ship_item",
)
"""The child tables, by name without the prefix, in the order they are written."""

ID = 80  # an identifier as partners send it (X12 allows 48; cXML more)
NAME = 255
CODE = 16
UOM = 16


def _item_columns(prefix: str = "") -> list[Column[Any]]:
    """The item identifiers of a line or shipped item (``substitute_`` for an ack's substitute)."""
    return [
        Column(f"{prefix}vendor_part", String(ID)),
        Column(f"{prefix}buyer_item", String(ID)),
        Column(f"{prefix}manufacturer_part", String(ID)),
        Column(f"{prefix}gtin", String(40)),
        Column(f"{prefix}ndc", String(40)),
        Column(f"{prefix}udi", String(NAME)),
    ]


def _child(metadata: MetaData, prefix: str, name: str, keys: list[str], *columns: Column[Any]) -> Table:
    """A child table: ``header_id`` plus ``keys`` as its primary key, a foreign key to the header."""
    table = f"{prefix}{name}"
    return Table(
        table,
        metadata,
        Column("header_id", Integer, nullable=False),
        *[Column(k, Integer, nullable=False) for k in keys],
        *columns,
        PrimaryKeyConstraint("header_id", *keys, name=f"pk_{table}"),
        ForeignKeyConstraint(["header_id"], [f"{prefix}document.id"], name=f"fk_{table}_header"),
    )


def _header(metadata: MetaData, prefix: str) -> Table:
    table = f"{prefix}document"
    return Table(
        table,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("partner_id", String(64), nullable=False),
        Column("doc_type", String(20), nullable=False),
        Column("doc_key", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("content_sha256", String(64), nullable=False),
        Column("idempotency_key", String(128), nullable=False),
        Column("correlation_id", String(64), nullable=False),
        Column("ledger_document_id", BigInteger),
        Column("ledger_delivery_id", BigInteger),
        Column("ledger_file_id", BigInteger),
        Column("source_file_sha256", String(64)),
        Column("interchange_control", String(ID)),
        Column("group_control", String(ID)),
        Column("set_control", String(ID)),
        Column("source_format", String(CODE)),
        Column("source_version", String(32)),
        Column("test", Boolean, nullable=False),
        Column("purpose", String(CODE), nullable=False),
        Column("purpose_code", String(CODE)),
        Column("document_date", Date, nullable=False),
        Column("po_number", String(ID)),
        Column("po_date", Date),
        Column("release_number", String(ID)),
        Column("order_type", String(CODE)),
        Column("requested_delivery", Date),
        Column("ack_type", String(32)),
        Column("ack_type_code", String(CODE)),
        Column("supplier_order_number", String(ID)),
        Column("invoice_number", String(ID)),
        Column("credit_memo", Boolean),
        Column("currency", String(3)),
        Column("total_amount", ExactDecimal),
        Column("total_currency", String(3)),
        Column("terms_type_code", String(CODE)),
        Column("terms_basis_date_code", String(CODE)),
        Column("terms_discount_percent", ExactDecimal),
        Column("terms_discount_days", Integer),
        Column("terms_discount_due_date", Date),
        Column("terms_net_days", Integer),
        Column("terms_net_due_date", Date),
        Column("terms_description", Text),
        Column("fob_payment_method", String(CODE)),
        Column("fob_location", String(ID)),
        Column("buyer_id", String(ID)),
        Column("buyer_name", String(NAME)),
        Column("vendor_id", String(ID)),
        Column("vendor_name", String(NAME)),
        Column("ship_to_id", String(ID)),
        Column("ship_to_name", String(NAME)),
        Column("bill_to_id", String(ID)),
        Column("bill_to_name", String(NAME)),
        Column("notes", Text),
        Column("document", LONG_TEXT, nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        UniqueConstraint("partner_id", "doc_type", "doc_key", name=f"uq_{table}_key"),
    )


def _history(metadata: MetaData, prefix: str) -> Table:
    table = f"{prefix}document_history"
    return Table(
        table,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("header_id", Integer, nullable=False),
        Column("version", Integer, nullable=False),
        Column("content_sha256", String(64), nullable=False),
        Column("idempotency_key", String(128), nullable=False),
        Column("correlation_id", String(64), nullable=False),
        Column("ledger_document_id", BigInteger),
        Column("purpose", String(CODE), nullable=False),
        Column("loaded_at", DateTime, nullable=False),
        Column("superseded_at", DateTime, nullable=False),
        Column("document", LONG_TEXT, nullable=False),
        UniqueConstraint("header_id", "version", name=f"uq_{table}_version"),
        ForeignKeyConstraint(["header_id"], [f"{prefix}document.id"], name=f"fk_{table}_header"),
    )


def _money(name: str) -> list[Column[Any]]:
    return [Column(name, ExactDecimal), Column(f"{name}_currency", String(3))]


def _children(metadata: MetaData, p: str) -> None:
    _child(
        metadata,
        p,
        "party",
        ["party_seq"],
        Column("order_seq", Integer),
        Column("role", String(CODE), nullable=False),
        Column("role_code", String(CODE)),
        Column("name", String(NAME)),
        Column("id_qualifier", String(CODE)),
        Column("id_value", String(ID)),
        Column("other_ids", Text),
        Column("address_line_1", String(NAME)),
        Column("address_line_2", String(NAME)),
        Column("city", String(ID)),
        Column("state", String(32)),
        Column("postal_code", String(32)),
        Column("country", String(CODE)),
        Column("contact", String(NAME)),
    )
    _child(
        metadata,
        p,
        "reference",
        ["ref_seq"],
        Column("scope", String(CODE), nullable=False),
        Column("line_seq", Integer),
        Column("order_seq", Integer),
        Column("qualifier", String(32), nullable=False),
        Column("value", String(NAME), nullable=False),
        Column("description", String(NAME)),
    )
    _child(
        metadata,
        p,
        "date",
        ["date_seq"],
        Column("qualifier", String(CODE), nullable=False),
        Column("value", Date, nullable=False),
        Column("time", String(CODE)),
    )
    _child(
        metadata,
        p,
        "line",
        ["line_seq"],
        Column("line_number", String(32)),
        Column("po_number", String(ID)),
        Column("quantity", ExactDecimal),
        Column("uom", String(UOM)),
        *_money("unit_price"),
        *_money("contract_price"),
        *_item_columns(),
        Column("description", Text),
        Column("requested_delivery", Date),
        Column("lot", String(ID)),
        Column("serial", String(ID)),
        Column("notes", Text),
    )
    _child(
        metadata,
        p,
        "line_status",
        ["line_seq", "status_seq"],
        Column("bucket", String(32), nullable=False),
        Column("raw_code", String(CODE), nullable=False),
        Column("quantity", ExactDecimal),
        Column("uom", String(UOM)),
        Column("scheduled_date", Date),
        Column("date_qualifier", String(CODE)),
        *_item_columns("substitute_"),
    )
    _child(
        metadata,
        p,
        "charge",
        ["charge_seq"],
        Column("line_seq", Integer),
        Column("kind", String(CODE), nullable=False),
        Column("code", String(CODE)),
        *_money("amount"),
        Column("description", String(NAME)),
    )
    _child(
        metadata,
        p,
        "tax",
        ["tax_seq"],
        Column("line_seq", Integer),
        Column("type_code", String(CODE)),
        *_money("amount"),
        Column("percent", ExactDecimal),
    )
    _child(
        metadata,
        p,
        "shipment",
        [],
        Column("shipment_id", String(ID), nullable=False),
        Column("shipped_at", DateTime),
        Column("ship_date", Date),
        Column("carrier", String(ID)),
        Column("bill_of_lading", String(ID)),
        Column("tracking_numbers", Text),
        Column("package_count", Integer),
        Column("gross_weight", ExactDecimal),
        Column("gross_weight_uom", String(UOM)),
    )
    _child(
        metadata,
        p,
        "ship_order",
        ["order_seq"],
        Column("po_number", String(ID), nullable=False),
        Column("po_date", Date),
    )
    _child(
        metadata,
        p,
        "ship_pack",
        ["pack_seq"],
        Column("order_seq", Integer, nullable=False),
        Column("parent_pack_seq", Integer),
        Column("level", String(CODE), nullable=False),
        Column("sscc", String(40)),
        Column("marks", Text),
    )
    _child(
        metadata,
        p,
        "ship_item",
        ["item_seq"],
        Column("order_seq", Integer, nullable=False),
        Column("pack_seq", Integer),
        Column("line_number", String(32)),
        *_item_columns(),
        Column("quantity", ExactDecimal, nullable=False),
        Column("uom", String(UOM)),
        Column("ordered_quantity", ExactDecimal),
        Column("ordered_uom", String(UOM)),
        Column("lot", String(ID)),
        Column("serial", String(ID)),
        Column("expiration_date", Date),
        Column("production_date", Date),
        Column("description", Text),
    )


def _alerts(metadata: MetaData, p: str) -> None:
    """Reconciliation's outputs (staging migration 0002): one row per exception (its latest alert: a
    reopening updates it) and one per billed ship-notice line (written once)."""
    Table(
        f"{p}recon_exception",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("partner_id", String(64), nullable=False),
        Column("exception_id", BigInteger, nullable=False),
        Column("version", Integer, nullable=False),
        Column("kind", String(32), nullable=False),
        Column("severity", String(CODE), nullable=False),
        Column("status", String(CODE), nullable=False),
        Column("po_number", String(ID), nullable=False),
        Column("po_line", String(64)),
        Column("expected", Text),
        Column("actual", Text),
        Column("amount", ExactDecimal),
        Column("reason", Text, nullable=False),
        Column("documents", Text, nullable=False),
        Column("opened_at", DateTime, nullable=False),
        Column("idempotency_key", String(128), nullable=False),
        Column("ledger_delivery_id", BigInteger),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        UniqueConstraint("partner_id", "exception_id", name=f"uq_{p}recon_exception_key"),
    )
    Table(
        f"{p}billing_event",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("partner_id", String(64), nullable=False),
        Column("billing_key", String(120), nullable=False),  # with partner_id: 184 characters, as the header key
        Column("po_number", String(ID), nullable=False),
        Column("po_line", String(64)),
        Column("ship_notice", String(ID), nullable=False),
        Column("ship_notice_document", String(48)),
        *_item_columns(),
        Column("lot", String(ID)),
        Column("serial", String(ID)),
        Column("quantity", ExactDecimal, nullable=False),
        Column("uom", String(UOM)),
        Column("contract_price", ExactDecimal),
        Column("currency", String(3)),
        Column("amount", ExactDecimal),
        Column("idempotency_key", String(128), nullable=False),
        Column("ledger_delivery_id", BigInteger),
        Column("created_at", DateTime, nullable=False),
        UniqueConstraint("partner_id", "billing_key", name=f"uq_{p}billing_event_key"),
    )


def build_metadata(prefix: str = "stg_") -> MetaData:
    """The staging tables named with ``prefix`` (a fresh MetaData each call)."""
    metadata = MetaData()
    _header(metadata, prefix)
    _history(metadata, prefix)
    _children(metadata, prefix)
    _alerts(metadata, prefix)
    return metadata
