"""Reconciliation's outputs as a transactional outbox: exception alerts and billing events are recorded
(outbound item, search keys, a delivery per destination) in the very transaction that writes the
exceptions they are about, so a crash loses neither: before the commit nothing happened and the next
run does it all again; after it, the deliveries are in the ledger and any worker sends them (their
idempotency key is fixed when the row is written, so a resend carries the same key).

- Alerts: every ``open`` or ``reopen`` event of ``recon_events`` past the ``alerts`` cursor is claimed
  in the transaction that wrote it, the cursor moved with it (no rule routes alerts: passed over).
- Billing events: one ``recon_billing`` row per billed ship-notice line (migration 0011, unique on
  partner, shipment, PO, position, item, lot, serial; the insert does nothing when the row exists), and
  a line whose PO line has an open price exception is withheld until it is resolved or waived.

What to send and where is the runtime's business (:class:`ReconOutbox`, implemented by
:class:`gateway.runtime.recon_alerts.ReconOutputs`); the store only writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.reconcile.billing import PRICE_KINDS, BillingLine
from gateway.store.base import StoreBase
from gateway.store.recon_rows import ChainData, ExceptionRow
from gateway.store.rows import OutboundRow
from gateway.store.schema import deliveries, recon_billing, recon_events, recon_exceptions, search_keys
from gateway.store.statuses import ExceptionStatus

__all__ = ["OutboxItem", "OutboxWrites", "ReconOutbox", "ReconOutboxOps"]

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """An alert or event to record: its JSON already in the archive under ``sha256``, routed to
    ``deliver_to``; ``keys`` are its search keys (``("exception", "12")``)."""

    partner_id: str
    kind: str
    sha256: str
    reason: str
    deliver_to: tuple[str, ...]
    keys: tuple[tuple[str, str], ...] = ()


@dataclass
class OutboxWrites:
    """What one transaction recorded: deliveries to try once it commits, and how many of each."""

    deliveries: list[int] = field(default_factory=list)
    alerts: int = 0
    events: int = 0


class ReconOutbox(Protocol):
    """What the store asks the runtime while it reconciles (routing and the archive are the runtime's)."""

    worker: str

    def routes_alerts(self) -> bool:
        """Whether some rule routes ``recon_exception`` (if not, openings are passed over)."""

    def alert(self, exception: ExceptionRow) -> OutboxItem | None:
        """The alert for an opened exception (None: no rule routes it for that partner)."""

    def billing(self, chains: Sequence[ChainData]) -> list[BillingLine]:
        """The chargeable ship-notice lines of ``chains``, billed or not yet."""

    def billing_event(self, line: BillingLine) -> OutboxItem | None:
        """The billing event for ``line`` (None: no rule routes it)."""

    def committed(self, writes: OutboxWrites) -> None:
        """Told after the transaction that recorded ``writes`` committed (the deliveries may be tried)."""


class ReconOutboxOps(StoreBase):
    """Writing :class:`ReconOutbox` items in the caller's reconciliation transaction."""

    add_outbound: Callable[..., OutboundRow]  # OutboundOps's, in the Store
    _cursor: Callable[[Connection, str], int]
    _advance: Callable[[Connection, str, int], None]

    def _outbox_on(
        self, conn: Connection, keys: Sequence[Key], chains: Mapping[Key, ChainData], outbox: ReconOutbox
    ) -> OutboxWrites:
        """Record, in ``conn``, the alerts of every opening not yet claimed and the billing events due on
        ``chains`` (the chains ``keys`` just reconciled)."""
        writes = OutboxWrites()
        self._alerts_on(conn, outbox, writes)
        self._billing_on(conn, keys, chains, outbox, writes)
        return writes

    def _record_on(self, conn: Connection, item: OutboxItem, worker: str) -> tuple[int, list[int]]:
        """Record ``item`` in ``conn``; returns its outbound id and its deliveries' ids."""
        row = self.add_outbound(
            item.partner_id,
            item.kind,
            item.sha256,
            reason=item.reason[:1000],
            deliver_to=list(item.deliver_to),
            worker=worker,
            keys=item.keys,
            conn=conn,
        )
        query = select(deliveries.c.id).where(deliveries.c.outbound_id == row.id).order_by(deliveries.c.id)
        return row.id, [int(i) for i in conn.execute(query).scalars()]

    def _alerts_on(self, conn: Connection, outbox: ReconOutbox, writes: OutboxWrites) -> None:
        start = self._cursor(conn, "alerts")
        if not outbox.routes_alerts():
            last = conn.execute(select(func.max(recon_events.c.id))).scalar()
            if last is not None and int(last) > start:
                self._advance(conn, "alerts", int(last))
            return
        while True:
            claimed, opened = self._claim_openings_on(conn, start, 500)
            for exception in opened:
                item = outbox.alert(exception)
                if item is not None:
                    writes.deliveries += self._record_on(conn, item, outbox.worker)[1]
                    writes.alerts += 1
            if claimed < 500:
                return
            start = self._cursor(conn, "alerts")

    def _claim_openings_on(self, conn: Connection, start: int, batch: int) -> tuple[int, list[ExceptionRow]]:
        """The exceptions of the next ``batch`` open/reopen events past ``start``, oldest first, the
        ``alerts`` cursor moved past them in ``conn``; returns (events claimed, exceptions)."""
        rows = conn.execute(
            select(recon_events.c.id, recon_events.c.exception_id)
            .where(recon_events.c.id > start, recon_events.c.action.in_(("open", "reopen")))
            .order_by(recon_events.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return 0, []
        self._advance(conn, "alerts", int(rows[-1][0]))
        ids = [int(r[1]) for r in rows]
        found = {
            int(r["id"]): ExceptionRow.from_mapping(r)
            for r in conn.execute(select(recon_exceptions).where(recon_exceptions.c.id.in_(ids))).mappings()
        }
        return len(rows), [found[i] for i in ids if i in found]

    def _billing_on(
        self,
        conn: Connection,
        keys: Sequence[Key],
        chains: Mapping[Key, ChainData],
        outbox: ReconOutbox,
        writes: OutboxWrites,
    ) -> None:
        lines = outbox.billing([chains[k] for k in keys if k in chains])
        if not lines:
            return
        wanted = list({(b.partner, b.po_number) for b in lines})
        held = {
            (str(p), str(n), line)
            for p, n, line in conn.execute(
                select(recon_exceptions.c.partner_id, recon_exceptions.c.po_number, recon_exceptions.c.line).where(
                    # each column IN its values (a superset, narrowed below): SQLite reads a row-value
                    # IN by scanning the table
                    recon_exceptions.c.partner_id.in_(sorted({p for p, _ in wanted})),
                    recon_exceptions.c.po_number.in_(sorted({n for _, n in wanted})),
                    recon_exceptions.c.status == ExceptionStatus.OPEN.value,
                    recon_exceptions.c.kind.in_(sorted(PRICE_KINDS)),
                )
            )
        }
        due = [b for b in lines if (b.partner, b.po_number, b.line) not in held]
        billed = self._billed_on(conn, due)
        for b in due:
            if (b.partner, b.key) in billed:
                continue
            item = outbox.billing_event(b)  # None: no rule routes it (nothing recorded: billed once one does)
            if item is None or not self._claim_line_on(conn, b):
                continue
            outbound_id, ids = self._record_on(conn, item, outbox.worker)
            conn.execute(
                update(recon_billing)
                .where(recon_billing.c.partner_id == b.partner, recon_billing.c.billing_key == b.key)
                .values(outbound_id=outbound_id)
            )
            writes.deliveries += ids
            writes.events += 1

    def _billed_on(self, conn: Connection, lines: Sequence[BillingLine]) -> set[tuple[str, str]]:
        """Which lines' keys are billed already: in ``recon_billing``, or (events recorded before it
        existed) as an outbound item's ``billing`` search key."""
        found: set[tuple[str, str]] = set()
        keys = sorted({(b.partner, b.key) for b in lines})
        for start in range(0, len(keys), 400):
            part = keys[start : start + 400]
            rows = conn.execute(
                select(recon_billing.c.partner_id, recon_billing.c.billing_key).where(
                    recon_billing.c.partner_id.in_(sorted({p for p, _ in part})),
                    recon_billing.c.billing_key.in_(sorted({k for _, k in part})),
                )
            )
            asked = set(part)
            found.update((str(p), str(k)) for p, k in rows if (str(p), str(k)) in asked)
            old = conn.execute(
                select(search_keys.c.partner_id, search_keys.c.value).where(
                    search_keys.c.kind == "billing",
                    search_keys.c.value.in_([k.strip().upper() for _, k in part]),
                    search_keys.c.outbound_id.is_not(None),
                )
            )
            upper = {(str(p), str(v)) for p, v in old}
            found.update((p, k) for p, k in part if (p, k.strip().upper()) in upper)
        return found

    def _claim_line_on(self, conn: Connection, b: BillingLine) -> bool:
        """Insert the line's ``recon_billing`` row; False when it is there already (billed by another
        transaction that committed first: the unique key decides, the insert does nothing)."""
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        stmt = (
            dialect.insert(recon_billing)
            .values(
                partner_id=b.partner,
                shipment_id=b.shipment_id[:128],
                po_number=b.po_number,
                position=b.position,
                item=b.item_id[:128],
                lot=(b.lot or "")[:64],
                serial=(b.serial or b.udi or "")[:128],
                billing_key=b.key,
                outbound_id=None,
                created_at=self._now(),
            )
            .on_conflict_do_nothing()
            .returning(recon_billing.c.id)
        )
        return conn.execute(stmt).scalar() is not None
