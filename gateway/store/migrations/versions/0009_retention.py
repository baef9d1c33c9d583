"""purges: the audit record of retention (``gateway archive purge``); deliveries.parent_id indexed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

One row per purged file: its hash, size, name, partner, when it was received and purged, by whom and
why, whether its blob left the archive, and how much ledger detail went with it (JSON counts). A
unique ``file_id`` makes a purge happen once; the purge checks it before touching a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "purges",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("file_id", _id_type(), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(1024), nullable=False),
        _ts("received_at"),
        sa.Column("blob_removed", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("older_than", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("purged_at"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_purges_file_id_files")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purges")),
        sa.UniqueConstraint("file_id", name=op.f("uq_purges_file_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_purges_purged_at"), "purges", ["purged_at"])
    op.create_index(op.f("ix_purges_sha256"), "purges", ["sha256"])
    # Bulk retransmit picks the latest link of each chain: deliveries no other delivery points at.
    op.create_index(op.f("ix_deliveries_parent_id"), "deliveries", ["parent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_parent_id"), table_name="deliveries")
    op.drop_table("purges")
