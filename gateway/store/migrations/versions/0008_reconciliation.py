"""recon_links, recon_exceptions, recon_events, recon_cursors: reconciliation of PO chains.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06

The PO chain index (each 850, 855, 856 and 810 linked to its partner and PO number; an 856 or an 810
may link to several POs), the exceptions reconciliation finds with their life (open, resolved,
waived) and an event for every change, and how far the index has read the documents. Exceptions keep
their own event table: the ledger's ``events`` would need its CHECK constraints rebuilt (a copy of
the largest table on SQLite) for a new entity kind. Self-contained like 0001: the lists are literals.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXCEPTION_STATUSES = ("open", "resolved", "waived")


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "recon_links",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("po_number", sa.String(128), nullable=False),
        sa.Column("doc_type", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(48), nullable=False),
        sa.Column("number", sa.String(128), nullable=True),
        sa.Column("purpose", sa.String(16), nullable=True),
        sa.Column("canonical", sa.Text(), nullable=True),
        _ts("received_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_links")),
        sa.UniqueConstraint("partner_id", "po_number", "ref", name=op.f("uq_recon_links_partner_id_po_number_ref")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recon_links_number", "recon_links", ["partner_id", "doc_type", "number"])
    op.create_index("ix_recon_links_ref", "recon_links", ["ref"])
    statuses = ", ".join(repr(s) for s in EXCEPTION_STATUSES)
    op.create_table(
        "recon_exceptions",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("po_number", sa.String(128), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("line", sa.String(64), nullable=True),
        sa.Column("documents", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("actual", sa.Text(), nullable=False),
        sa.Column("amount", sa.String(40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("resolved_by", sa.String(16), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("resolved_at", nullable=True),
        sa.CheckConstraint(f"status IN ({statuses})", name=op.f("ck_recon_exceptions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_exceptions")),
        sa.UniqueConstraint(
            "partner_id", "po_number", "key", name=op.f("uq_recon_exceptions_partner_id_po_number_key")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recon_exceptions_status_partner_id", "recon_exceptions", ["status", "partner_id"])
    op.create_index("ix_recon_exceptions_created_at", "recon_exceptions", ["created_at"])
    op.create_table(
        "recon_events",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("exception_id", _id_type(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        _ts("at"),
        sa.ForeignKeyConstraint(
            ["exception_id"], ["recon_exceptions.id"], name=op.f("fk_recon_events_exception_id_recon_exceptions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_recon_events_exception_id", "recon_events", ["exception_id", "id"])
    op.create_table(
        "recon_cursors",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_recon_cursors")),
    )


def downgrade() -> None:
    op.drop_table("recon_cursors")
    op.drop_table("recon_events")
    op.drop_table("recon_exceptions")
    op.drop_table("recon_links")
