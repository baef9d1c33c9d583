"""documents.warnings: the business-level warnings found on a translated document.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

A document may disagree with itself (``CTT01``/``CTT02``, a stated total,
duplicate line numbers, a cXML item without a line number): it is still
translated and delivered, and the warnings (``BIZ-*``, each located on its
segment or XML element) are kept with it as JSON, for ``messages show``.
NULL for documents recorded before this revision and for those without any.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("warnings", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("warnings")
