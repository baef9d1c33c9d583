"""Reconciliation's periodic check: which chains time can still change, and whose turn it is.

Time-based SLAs (no 855 within N hours of the 850, no 856 by the expected date, no 810 N days after
shipment) move with the clock, not with documents. ``gateway run`` reconciles the chains that still
wait for one of those documents every ``processing.sla_check_seconds``; :meth:`ReconTimerOps.take_turn`
makes that one worker at a time across every process on the store (a ``recon_cursors`` row holding the
last turn's time, moved under the lock reconciliation writes take).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, Connection, case, func, or_, select

from gateway.store.base import StoreBase
from gateway.store.schema import recon_links

__all__ = ["ReconTimerOps"]

Key = tuple[str, str]


class ReconTimerOps(StoreBase):
    """The SLA timer's turn and the chains it looks at."""

    _cursor: Callable[[Connection, str], int]
    _advance: Callable[[Connection, str, int], None]

    def take_turn(self, name: str, every_seconds: float) -> bool:
        """Whether this caller runs the periodic job ``name`` now: True (and the turn is recorded, at the
        store's clock) when no worker took it in the last ``every_seconds``."""
        with self._db.write(f"take the {name} turn") as conn:
            last = self._cursor(conn, name)  # the lock, and the last turn in epoch seconds (0: never)
            now = int(self._now().timestamp())
            if now - last < every_seconds:
                return False
            self._advance(conn, name, now)
            return True

    def chains_awaiting(self) -> list[Key]:
        """The chains with an order still missing an acknowledgment, a ship notice or an invoice (not
        counting cancellations): the ones whose time-based exceptions may still open."""

        def has(doc_type: str) -> ColumnElement[int]:
            live = (recon_links.c.doc_type == doc_type) & (func.coalesce(recon_links.c.purpose, "") != "cancel")
            return func.sum(case((live, 1), else_=0))

        query = (
            select(recon_links.c.partner_id, recon_links.c.po_number)
            .group_by(recon_links.c.partner_id, recon_links.c.po_number)
            .having(
                has("purchase_order") > 0,
                or_(has("po_acknowledgment") == 0, has("ship_notice") == 0, has("invoice") == 0),
            )
        )
        with self._db.read("list PO chains waiting for a document") as conn:
            return sorted((str(p), str(n)) for p, n in conn.execute(query))
