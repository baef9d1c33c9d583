"""outbound.route (the routing decision of what we send partners) and the ``unrouted`` outbound status.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-06

Routing rules apply to our 997/999/TA1 and 850s too: the decision (rules matched, destinations) is
kept with the outbound row as ``documents.route`` is with a document, and an outbound item no rule
matches is ``unrouted`` (an exception for an operator, never dropped), so the status CHECK constraint
is rebuilt. Self-contained like 0001: the lists are literals.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("created", "sent", "failed", "cancelled")
STATUSES = (*OLD_STATUSES, "unrouted")
_AUTOINCREMENT = {"sqlite_autoincrement": True}
"""SQLite rebuilds a table to change its CHECK constraints: the copy must keep ids from being reused."""


def _listed(values: Sequence[str]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("outbound", recreate="auto", table_kwargs=_AUTOINCREMENT) as batch:
        batch.add_column(sa.Column("route", sa.Text(), nullable=True))
        batch.drop_constraint(op.f("ck_outbound_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbound_status"), _listed(STATUSES))


def downgrade() -> None:
    op.execute("UPDATE outbound SET status = 'created' WHERE status = 'unrouted'")
    with op.batch_alter_table("outbound", recreate="auto", table_kwargs=_AUTOINCREMENT) as batch:
        batch.drop_constraint(op.f("ck_outbound_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbound_status"), _listed(OLD_STATUSES))
        batch.drop_column("route")
