"""Indexes the dashboard's overview reads on a big ledger (issue 14; docs/performance.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

"Today" and "this week" by partner, document type and status are counted from the index alone:
``documents (created_at, partner_id, doc_type, status)`` and ``files (received_at, partner_id, status)``
replace the single-column time indexes of 0006 (whose lookups they serve as well), so a week of a
million-document ledger is a range of one index, not a visit to each row's canonical JSON. Each
destination's deliveries of the day are counted from ``deliveries (delivered_at, destination, status)``,
so the backlog table no longer counts every delivery ever made; the open reconciliation exceptions of
each kind from ``recon_exceptions (status, kind)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACED = {
    # table: (old index, its columns, new index, its columns)
    "documents": ("ix_documents_created_at", ["created_at"], "ix_documents_traffic",
                  ["created_at", "partner_id", "doc_type", "status"]),
    "files": ("ix_files_received_at", ["received_at"], "ix_files_traffic", ["received_at", "partner_id", "status"]),
}  # fmt: skip
ADDED = {
    "deliveries": ("ix_deliveries_delivered", ["delivered_at", "destination", "status"]),
    "recon_exceptions": ("ix_recon_exceptions_status_kind", ["status", "kind"]),
}


def upgrade() -> None:
    for table, (old, _columns, new, columns) in REPLACED.items():
        op.create_index(op.f(new), table, columns)
        op.drop_index(op.f(old), table_name=table)
    for table, (name, columns) in ADDED.items():
        op.create_index(op.f(name), table, columns)


def downgrade() -> None:
    for table, (name, _columns) in ADDED.items():
        op.drop_index(op.f(name), table_name=table)
    for table, (old, columns, new, _columns) in REPLACED.items():
        op.create_index(op.f(old), table, columns)
        op.drop_index(op.f(new), table_name=table)
