"""files.results_at and files.results: a file's results committed, its outputs not yet written.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

The runtime commits a batch of files' results (rows, dedupe claims,
acknowledgments to send) in one transaction and only then writes their
outputs. A worker that dies between the two leaves a file ``processing``
with ``results_at`` set and its final status waiting in ``results`` (JSON):
the next owner writes the outputs again from the ledger and finishes the
file, instead of redoing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("results_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("results", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.drop_column("results")
        batch.drop_column("results_at")
