"""recon_billing: one row per billed ship-notice line, unique, so a line is billed once (issue 13).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Two workers reconciling the same chain at the same instant could each record a billing event for a
line (the check was on the outbound item's search key, outside the reconciliation transaction). The
billing event is now recorded with a row here, in the transaction that reconciles the chain, and the
unique key (partner, shipment, PO, position in the notice, item, lot, serial) makes the second insert
do nothing. Absent lot and serial are '' so that they collide.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recon_billing",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("shipment_id", sa.String(128), nullable=False),
        sa.Column("po_number", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(128), nullable=False),
        sa.Column("lot", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(128), nullable=False),
        sa.Column("billing_key", sa.String(256), nullable=False),
        sa.Column("outbound_id", _id_type(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_billing")),
        sa.UniqueConstraint(
            "partner_id", "shipment_id", "po_number", "position", "item", "lot", "serial", name="uq_recon_billing_line"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recon_billing_billing_key", "recon_billing", ["partner_id", "billing_key"])


def downgrade() -> None:
    op.drop_index("ix_recon_billing_billing_key", table_name="recon_billing")
    op.drop_table("recon_billing")
