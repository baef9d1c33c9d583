"""The initial staging tables: document headers and their history, lines, statuses, the ship-notice
hierarchy, charges, taxes, parties, references and dates.

Revision ID: 0001
Revises:
Create Date: 2026-12-06

Self-contained on purpose: the types are frozen here as literals rather than imported from the
code (an amount is ``NUMERIC(20, 6)``, or its text on SQLite, which has no exact decimal), so this
revision creates the same schema forever. Table names take the prefix the run is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

from gateway.delivery.staging.migrate import prefix_of

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEC = sa.Numeric(20, 6).with_variant(sa.String(40), "sqlite")
LONG = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
ID, NAME, CODE, UOM = 80, 255, 16, 16

CHILDREN = (
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


def _s(name: str, length: int, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _items(prefix: str = "") -> list[sa.Column[Any]]:
    return [
        _s(f"{prefix}vendor_part", ID),
        _s(f"{prefix}buyer_item", ID),
        _s(f"{prefix}manufacturer_part", ID),
        _s(f"{prefix}gtin", 40),
        _s(f"{prefix}ndc", 40),
        _s(f"{prefix}udi", NAME),
    ]


def _money(name: str) -> list[sa.Column[Any]]:
    return [sa.Column(name, DEC, nullable=True), _s(f"{name}_currency", 3)]


def _child(p: str, name: str, keys: list[str], *columns: sa.Column[Any]) -> None:
    table = f"{p}{name}"
    op.create_table(
        table,
        sa.Column("header_id", sa.Integer(), nullable=False),
        *[sa.Column(k, sa.Integer(), nullable=False) for k in keys],
        *columns,
        sa.PrimaryKeyConstraint("header_id", *keys, name=f"pk_{table}"),
        sa.ForeignKeyConstraint(["header_id"], [f"{p}document.id"], name=f"fk_{table}_header"),
    )


def _header(p: str) -> None:
    table = f"{p}document"
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _s("partner_id", 64, False),
        _s("doc_type", 20, False),
        _s("doc_key", 100, False),
        sa.Column("version", sa.Integer(), nullable=False),
        _s("content_sha256", 64, False),
        _s("idempotency_key", 128, False),
        _s("correlation_id", 64, False),
        sa.Column("ledger_document_id", sa.BigInteger(), nullable=True),
        sa.Column("ledger_delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("ledger_file_id", sa.BigInteger(), nullable=True),
        _s("source_file_sha256", 64),
        _s("interchange_control", ID),
        _s("group_control", ID),
        _s("set_control", ID),
        _s("source_format", CODE),
        _s("source_version", 32),
        sa.Column("test", sa.Boolean(), nullable=False),
        _s("purpose", CODE, False),
        _s("purpose_code", CODE),
        sa.Column("document_date", sa.Date(), nullable=False),
        _s("po_number", ID),
        sa.Column("po_date", sa.Date(), nullable=True),
        _s("release_number", ID),
        _s("order_type", CODE),
        sa.Column("requested_delivery", sa.Date(), nullable=True),
        _s("ack_type", 32),
        _s("ack_type_code", CODE),
        _s("supplier_order_number", ID),
        _s("invoice_number", ID),
        sa.Column("credit_memo", sa.Boolean(), nullable=True),
        _s("currency", 3),
        sa.Column("total_amount", DEC, nullable=True),
        _s("total_currency", 3),
        _s("terms_type_code", CODE),
        _s("terms_basis_date_code", CODE),
        sa.Column("terms_discount_percent", DEC, nullable=True),
        sa.Column("terms_discount_days", sa.Integer(), nullable=True),
        sa.Column("terms_discount_due_date", sa.Date(), nullable=True),
        sa.Column("terms_net_days", sa.Integer(), nullable=True),
        sa.Column("terms_net_due_date", sa.Date(), nullable=True),
        sa.Column("terms_description", sa.Text(), nullable=True),
        _s("fob_payment_method", CODE),
        _s("fob_location", ID),
        _s("buyer_id", ID),
        _s("buyer_name", NAME),
        _s("vendor_id", ID),
        _s("vendor_name", NAME),
        _s("ship_to_id", ID),
        _s("ship_to_name", NAME),
        _s("bill_to_id", ID),
        _s("bill_to_name", NAME),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("document", LONG, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("partner_id", "doc_type", "doc_key", name=f"uq_{table}_key"),
    )


def _history(p: str) -> None:
    table = f"{p}document_history"
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("header_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _s("content_sha256", 64, False),
        _s("idempotency_key", 128, False),
        _s("correlation_id", 64, False),
        sa.Column("ledger_document_id", sa.BigInteger(), nullable=True),
        _s("purpose", CODE, False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("superseded_at", sa.DateTime(), nullable=False),
        sa.Column("document", LONG, nullable=False),
        sa.UniqueConstraint("header_id", "version", name=f"uq_{table}_version"),
        sa.ForeignKeyConstraint(["header_id"], [f"{p}document.id"], name=f"fk_{table}_header"),
    )


def _children(p: str) -> None:
    i = sa.Integer
    _child(
        p,
        "party",
        ["party_seq"],
        sa.Column("order_seq", i(), nullable=True),
        _s("role", CODE, False),
        _s("role_code", CODE),
        _s("name", NAME),
        _s("id_qualifier", CODE),
        _s("id_value", ID),
        sa.Column("other_ids", sa.Text(), nullable=True),
        _s("address_line_1", NAME),
        _s("address_line_2", NAME),
        _s("city", ID),
        _s("state", 32),
        _s("postal_code", 32),
        _s("country", CODE),
        _s("contact", NAME),
    )
    _child(
        p,
        "reference",
        ["ref_seq"],
        _s("scope", CODE, False),
        sa.Column("line_seq", i(), nullable=True),
        sa.Column("order_seq", i(), nullable=True),
        _s("qualifier", 32, False),
        _s("value", NAME, False),
        _s("description", NAME),
    )
    _child(
        p,
        "date",
        ["date_seq"],
        _s("qualifier", CODE, False),
        sa.Column("value", sa.Date(), nullable=False),
        _s("time", CODE),
    )
    _child(
        p,
        "line",
        ["line_seq"],
        _s("line_number", 32),
        _s("po_number", ID),
        sa.Column("quantity", DEC),
        _s("uom", UOM),
        *_money("unit_price"),
        *_money("contract_price"),
        *_items(),
        sa.Column("description", sa.Text()),
        sa.Column("requested_delivery", sa.Date()),
        _s("lot", ID),
        _s("serial", ID),
        sa.Column("notes", sa.Text()),
    )
    _child(
        p,
        "line_status",
        ["line_seq", "status_seq"],
        _s("bucket", 32, False),
        _s("raw_code", CODE, False),
        sa.Column("quantity", DEC),
        _s("uom", UOM),
        sa.Column("scheduled_date", sa.Date()),
        _s("date_qualifier", CODE),
        *_items("substitute_"),
    )
    _child(
        p,
        "charge",
        ["charge_seq"],
        sa.Column("line_seq", i()),
        _s("kind", CODE, False),
        _s("code", CODE),
        *_money("amount"),
        _s("description", NAME),
    )
    _child(
        p,
        "tax",
        ["tax_seq"],
        sa.Column("line_seq", i()),
        _s("type_code", CODE),
        *_money("amount"),
        sa.Column("percent", DEC),
    )
    _child(
        p,
        "shipment",
        [],
        _s("shipment_id", ID, False),
        sa.Column("shipped_at", sa.DateTime()),
        sa.Column("ship_date", sa.Date()),
        _s("carrier", ID),
        _s("bill_of_lading", ID),
        sa.Column("tracking_numbers", sa.Text()),
        sa.Column("package_count", i()),
        sa.Column("gross_weight", DEC),
        _s("gross_weight_uom", UOM),
    )
    _child(p, "ship_order", ["order_seq"], _s("po_number", ID, False), sa.Column("po_date", sa.Date()))
    _child(
        p,
        "ship_pack",
        ["pack_seq"],
        sa.Column("order_seq", i(), nullable=False),
        sa.Column("parent_pack_seq", i()),
        _s("level", CODE, False),
        _s("sscc", 40),
        sa.Column("marks", sa.Text()),
    )
    _child(
        p,
        "ship_item",
        ["item_seq"],
        sa.Column("order_seq", i(), nullable=False),
        sa.Column("pack_seq", i()),
        _s("line_number", 32),
        *_items(),
        sa.Column("quantity", DEC, nullable=False),
        _s("uom", UOM),
        sa.Column("ordered_quantity", DEC),
        _s("ordered_uom", UOM),
        _s("lot", ID),
        _s("serial", ID),
        sa.Column("expiration_date", sa.Date()),
        sa.Column("production_date", sa.Date()),
        sa.Column("description", sa.Text()),
    )


def upgrade() -> None:
    p = prefix_of(context.config)
    _header(p)
    _history(p)
    _children(p)


def downgrade() -> None:
    p = prefix_of(context.config)
    for name in reversed(CHILDREN):
        op.drop_table(f"{p}{name}")
    op.drop_table(f"{p}document_history")
    op.drop_table(f"{p}document")
