"""An index on outbound (status, id): the overview's "unrouted outbound" list (issue 14; docs/performance.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

``gateway status`` and the web overview list the newest outbound items no routing rule matched
(``status = 'unrouted'``, newest first). Without an index on the status every page read all of
``outbound`` (0.7 million rows on the bench ledger: 140 to 190 ms) to find none; with
``(status, id)`` it is a short backward range of one index, whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_outbound_status"), "outbound", ["status", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbound_status"), table_name="outbound")
