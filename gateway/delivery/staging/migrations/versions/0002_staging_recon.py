"""Reconciliation's outputs in the staging tables: exception alerts and billing events (issue 13).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

``{prefix}recon_exception``: one row per exception, the latest alert of it (an exception reopened
updates its row and counts ``version``). ``{prefix}billing_event``: one row per billed ship-notice
line, written once. Self-contained, as 0001: the types are literals here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from gateway.delivery.staging.migrate import prefix_of

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEC = sa.Numeric(20, 6).with_variant(sa.String(40), "sqlite")
ID, NAME, CODE, UOM = 80, 255, 16, 16


def _s(name: str, length: int, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def upgrade() -> None:
    p = prefix_of(context.config)
    op.create_table(
        f"{p}recon_exception",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _s("partner_id", 64, False),
        sa.Column("exception_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _s("kind", 32, False),
        _s("severity", CODE, False),
        _s("status", CODE, False),
        _s("po_number", ID, False),
        _s("po_line", 64),
        sa.Column("expected", sa.Text(), nullable=True),
        sa.Column("actual", sa.Text(), nullable=True),
        sa.Column("amount", DEC, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("documents", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        _s("idempotency_key", 128, False),
        sa.Column("ledger_delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("partner_id", "exception_id", name=f"uq_{p}recon_exception_key"),
    )
    op.create_table(
        f"{p}billing_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _s("partner_id", 64, False),
        _s("billing_key", 120, False),
        _s("po_number", ID, False),
        _s("po_line", 64),
        _s("ship_notice", ID, False),
        _s("ship_notice_document", 48),
        _s("vendor_part", ID),
        _s("buyer_item", ID),
        _s("manufacturer_part", ID),
        _s("gtin", 40),
        _s("ndc", 40),
        _s("udi", NAME),
        _s("lot", ID),
        _s("serial", ID),
        sa.Column("quantity", DEC, nullable=False),
        _s("uom", UOM),
        sa.Column("contract_price", DEC, nullable=True),
        _s("currency", 3),
        sa.Column("amount", DEC, nullable=True),
        _s("idempotency_key", 128, False),
        sa.Column("ledger_delivery_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("partner_id", "billing_key", name=f"uq_{p}billing_event_key"),
    )


def downgrade() -> None:
    p = prefix_of(context.config)
    op.drop_table(f"{p}billing_event")
    op.drop_table(f"{p}recon_exception")
