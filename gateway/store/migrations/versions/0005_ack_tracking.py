"""ack_expectations and ack_receipts: the acknowledgments we are owed, and the ones we matched.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Acknowledgment tracking: one ``ack_expectations`` row per transaction set we sent that a 997/999 must
answer (its control numbers, deadline, verdict, lateness, resend links), and one ``ack_receipts`` row
per inbound 997/999/TA1 document once it was matched (found through a partial index of the
acknowledgment documents) (or found to match nothing, or to repeat an
answer): matching survives restarts and never counts one acknowledgment twice. Self-contained like
0001: the status lists are literals.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWED_STATUSES = ("waiting", "accepted", "accepted_with_errors", "rejected", "overdue")
RECEIPT_OUTCOMES = ("matched", "partly_matched", "unmatched", "duplicate")


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _listed(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ack_expectations",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("outbound_id", _id_type(), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("interchange_control", sa.String(32), nullable=False),
        sa.Column("functional_id", sa.String(8), nullable=False),
        sa.Column("group_control", sa.String(32), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("set_id", sa.String(8), nullable=False),
        sa.Column("set_control", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("group_status", sa.String(32), nullable=True),
        sa.Column("deadline_seconds", sa.Integer(), nullable=False),
        _ts("tracked_from", nullable=True),
        _ts("due_at", nullable=True),
        _ts("acked_at", nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("ack_document_id", _id_type(), nullable=True),
        sa.Column("ta1_code", sa.String(4), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.Column("resent_from", _id_type(), nullable=True),
        sa.Column("resent_as", _id_type(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(_listed("status", OWED_STATUSES), name=op.f("ck_ack_expectations_status")),
        sa.ForeignKeyConstraint(
            ["outbound_id"], ["outbound.id"], name=op.f("fk_ack_expectations_outbound_id_outbound")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ack_expectations")),
        sa.UniqueConstraint(
            "outbound_id",
            "group_control",
            "set_control",
            name=op.f("uq_ack_expectations_outbound_id_group_control_set_control"),
        ),
        sqlite_autoincrement=True,
    )
    for name, columns in {
        "status_due_at": ["status", "due_at"],
        "partner_group": ["partner_id", "group_control"],
        "partner_interchange": ["partner_id", "interchange_control"],
    }.items():
        op.create_index(op.f(f"ix_ack_expectations_{name}"), "ack_expectations", columns)
    op.create_table(
        "ack_receipts",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("document_id", _id_type(), nullable=False),
        sa.Column("file_id", _id_type(), nullable=True),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("control_number", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("outbound_id", _id_type(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        _ts("received_at"),
        _ts("created_at"),
        sa.CheckConstraint(_listed("outcome", RECEIPT_OUTCOMES), name=op.f("ck_ack_receipts_outcome")),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_ack_receipts_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ack_receipts")),
        sa.UniqueConstraint("document_id", name=op.f("uq_ack_receipts_document_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_ack_receipts_outcome"), "ack_receipts", ["outcome"])
    acknowledgments = sa.text("doc_type = 'acknowledgment'")
    op.create_index(
        op.f("ix_documents_acknowledgments"), "documents", ["id"],
        sqlite_where=acknowledgments, postgresql_where=acknowledgments,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index(op.f("ix_documents_acknowledgments"), "documents")
    op.drop_table("ack_receipts")
    op.drop_table("ack_expectations")
