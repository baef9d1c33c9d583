"""Reconciliation's state: the PO chain index, the exceptions and their events (tables in migration 0008).

The index links every purchase order, acknowledgment, ship notice and invoice to its partner and PO
number (``recon_links``; an 856 or an 810 may name several POs). It is filled from the documents table
past a cursor (:meth:`ReconOps.index_new_documents`), and from our own sent 850s
(:meth:`ReconOps.index_sent_order`). :meth:`ReconOps.reconcile_pending` takes the chains whose links
are new, hands their documents to a ``compute`` function (the pure :func:`gateway.reconcile.reconcile`,
wired by the runtime) and writes what it found, in one transaction with the cursor, so a crash
re-reconciles rather than skips. An exception is open until it is no longer found (a later document
resolved it) or an operator resolves or waives it; every change appends a ``recon_events`` row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, cast, func, insert, literal, select, text, update

from gateway.reconcile.model import Discrepancy
from gateway.store.errors import NotFoundError, StoreValueError, TransitionError
from gateway.store.inserts import insert_ids
from gateway.store.recon_outbox import OutboxWrites, ReconOutbox, ReconOutboxOps
from gateway.store.recon_rows import ChainData, ExceptionEvent, ExceptionRow, LinkedDoc
from gateway.store.recon_timer import ReconTimerOps
from gateway.store.rows import Record
from gateway.store.schema import documents, recon_cursors, recon_events, recon_exceptions, recon_links
from gateway.store.statuses import ExceptionStatus

__all__ = ["ChainData", "ExceptionEvent", "ExceptionRow", "LinkedDoc", "ReconOps", "po_numbers"]

CHAIN_TYPES = ("purchase_order", "po_acknowledgment", "ship_notice", "invoice")
RESCAN = 1000
"""How many document ids before the index's cursor are looked at again (see ``index_new_documents``)."""
_DOC_REF = literal("document:") + cast(documents.c.id, String)
Key = tuple[str, str]
Compute = Callable[[list["ChainData"]], dict[Key, list[Discrepancy]]]


def po_numbers(doc_type: str, doc: dict[str, Any]) -> set[str]:
    """The PO numbers a canonical document (as parsed JSON) refers to."""
    if doc_type == "ship_notice":
        return {o["po_number"] for o in doc.get("orders", ()) if o.get("po_number")}
    found = {doc["po_number"]} if doc.get("po_number") else set()
    if doc_type == "invoice":
        found |= {line["po_number"] for line in doc.get("lines", ()) if line.get("po_number")}
    return found


def _number(doc_type: str, doc: dict[str, Any]) -> str | None:
    if doc_type == "invoice":
        return str(doc.get("invoice_number") or "") or None
    if doc_type == "ship_notice":
        return str(doc.get("shipment_id") or "") or None
    return None


def _pairs_in(
    first: ColumnElement[Any], second: ColumnElement[Any], pairs: Iterable[tuple[str, str]]
) -> ColumnElement[bool]:
    """Rows whose (``first``, ``second``) may be among ``pairs``: each column IN its values, a superset the
    caller narrows. SQLite reads a row-value ``(a, b) IN (...)`` by scanning the whole table; this uses
    the index on the two columns (on PostgreSQL too)."""
    pairs = list(pairs)
    return first.in_(sorted({a for a, _ in pairs})) & second.in_(sorted({b for _, b in pairs}))


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class ReconOps(ReconOutboxOps, ReconTimerOps):
    """The chain index and the exceptions' life."""

    # --- the index --------------------------------------------------------------------------------

    def _lock(self, conn: Connection) -> None:
        """Writers of the index and of exceptions take turns (SQLite's write lock does this by itself)."""
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gateway recon'))"))

    def _cursor(self, conn: Connection, name: str) -> int:
        self._lock(conn)
        value = conn.execute(select(recon_cursors.c.value).where(recon_cursors.c.name == name)).scalar()
        if value is None:
            conn.execute(insert(recon_cursors).values(name=name, value=0, updated_at=self._now()))
            return 0
        return int(value)

    def _advance(self, conn: Connection, name: str, value: int) -> None:
        conn.execute(
            update(recon_cursors).where(recon_cursors.c.name == name).values(value=value, updated_at=self._now())
        )

    def index_new_documents(self, batch: int = 2000) -> int:
        """Link the documents recorded since the last call to their POs; returns how many were read.

        Ids are handed out before commit, so on PostgreSQL a document may commit after one with a higher
        id was indexed: the last :data:`RESCAN` ids before the cursor are looked at again, for chain
        documents that have no link yet."""
        with self._db.write("index documents for reconciliation") as conn:
            return self._index_on(conn, batch)[0]

    def _index_on(self, conn: Connection, batch: int) -> tuple[int, bool]:
        """:meth:`index_new_documents` in ``conn``; returns how many were read and whether ``batch`` rows
        were (there may be more)."""
        start = self._cursor(conn, "documents")
        newer = documents.c.id > start
        if start:
            unlinked = ~select(recon_links.c.id).where(recon_links.c.ref == _DOC_REF).exists()
            missed = documents.c.doc_type.in_(CHAIN_TYPES) & unlinked
            # The range first, so the query reads ids past start - RESCAN, not the whole table.
            newer = (documents.c.id > start - RESCAN) & (newer | missed)
        rows = conn.execute(
            select(
                documents.c.id,
                documents.c.partner_id,
                documents.c.doc_type,
                documents.c.canonical,
                documents.c.status,
                documents.c.created_at,
            )
            .where(newer)
            .order_by(documents.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return 0, False
        links: list[dict[str, Any]] = []
        for doc_id, partner, doc_type, canonical, status, created in rows:
            if doc_type not in CHAIN_TYPES or status == "failed":
                continue
            doc = json.loads(canonical)
            for po in sorted(po_numbers(doc_type, doc)):
                links.append(
                    {
                        "partner_id": partner or "",
                        "po_number": po[:128],
                        "doc_type": doc_type,
                        "ref": f"document:{doc_id}",
                        "number": (_number(doc_type, doc) or "")[:128] or None,
                        "purpose": str(doc.get("purpose") or "original")[:16],
                        "canonical": None,
                        "received_at": created,
                    }
                )
        if links:
            conn.execute(insert(recon_links), links)
        last = int(rows[-1][0])
        if last > start:
            self._advance(conn, "documents", last)
        # re-read old ones (no PO number) do not count
        return sum(1 for r in rows if int(r[0]) > start), len(rows) == batch

    def index_sent_order(self, partner_id: str, po_number: str, canonical: str, outbound_id: int) -> None:
        """Link a purchase order we sent (its canonical JSON kept here: no document row holds it);
        recording it twice is harmless."""
        ref = f"outbound:{outbound_id}"
        with self._db.write("index a sent order for reconciliation") as conn:
            self._lock(conn)
            found = conn.execute(
                select(recon_links.c.id).where(
                    recon_links.c.partner_id == partner_id,
                    recon_links.c.po_number == po_number,
                    recon_links.c.ref == ref,
                )
            ).first()
            if found is None:
                conn.execute(
                    insert(recon_links).values(
                        partner_id=partner_id,
                        po_number=po_number,
                        doc_type="purchase_order",
                        ref=ref,
                        number=None,
                        purpose="original",
                        canonical=canonical,
                        received_at=self._now(),
                    )
                )

    def chain_keys(self, partner_id: str | None = None) -> list[Key]:
        """Every (partner, PO number) the index knows, in order."""
        query = select(recon_links.c.partner_id, recon_links.c.po_number).distinct()
        if partner_id is not None:
            query = query.where(recon_links.c.partner_id == partner_id)
        with self._db.read("list PO chains") as conn:
            return sorted((str(p), str(n)) for p, n in conn.execute(query))

    # --- reconciling --------------------------------------------------------------------------------

    def reconcile_pending(
        self, compute: Compute, actor: str, chains: int = 500, outbox: ReconOutbox | None = None
    ) -> int:
        """Reconcile the chains with links newer than the last run, ``chains`` per transaction; returns how
        many chains were reconciled. ``outbox``: exception alerts and billing events are recorded in each
        transaction too (:mod:`gateway.store.recon_outbox`)."""
        done, more = 0, True
        while more:
            with self._db.write("reconcile new PO chains") as conn:
                count, more, writes = self._pending_on(conn, compute, actor, chains, outbox)
            more = more or count > 0  # until a run finds nothing new
            if outbox is not None:
                outbox.committed(writes)
            done += count
        return done

    def catch_up(
        self,
        compute: Compute,
        actor: str,
        *,
        batch: int = 2000,
        chains: int = 500,
        outbox: ReconOutbox | None = None,
    ) -> int:
        """Index the documents recorded since the last call and reconcile the chains with new links (as
        :meth:`index_new_documents` then :meth:`reconcile_pending`), in one transaction when both fit in
        it (the runtime's call after each batch); a backlog bigger than that continues in turns as they
        do. Returns how many chains were reconciled."""
        with self._db.write("index and reconcile new documents") as conn:
            _, more_documents = self._index_on(conn, batch)
            done, more_chains, writes = (0, True, OutboxWrites())
            if not more_documents:
                done, more_chains, writes = self._pending_on(conn, compute, actor, chains, outbox)
        if outbox is not None:
            outbox.committed(writes)
        if more_documents or more_chains:
            while self.index_new_documents(batch):
                pass
            done += self.reconcile_pending(compute, actor, chains, outbox)
        return done

    def _pending_on(
        self, conn: Connection, compute: Compute, actor: str, chains: int, outbox: ReconOutbox | None
    ) -> tuple[int, bool, OutboxWrites]:
        """One run of :meth:`reconcile_pending` in ``conn``: how many chains it reconciled, whether there
        may be more, and what it recorded in ``outbox``."""
        start = self._cursor(conn, "links")
        rows = conn.execute(
            select(recon_links.c.id, recon_links.c.partner_id, recon_links.c.po_number)
            .where(recon_links.c.id > start)
            .order_by(recon_links.c.id)
            .limit(chains * 4)
        ).all()
        every = list(dict.fromkeys((str(p), str(n)) for _, p, n in rows))
        keys = every[:chains]
        if not keys:
            # openings no run of this worker claimed (e.g. recorded before)
            return 0, False, self._outbox_on(conn, [], {}, outbox) if outbox is not None else OutboxWrites()
        chosen = set(keys)
        last = max(int(i) for i, p, n in rows if (p, n) in chosen)
        writes = self._reconcile_on(conn, keys, compute, actor, outbox)
        self._advance(conn, "links", last)
        return len(keys), len(rows) == chains * 4 or len(every) > chains, writes

    def reconcile_chains(
        self,
        keys: Sequence[Key] | None,
        compute: Compute,
        actor: str,
        chains: int = 500,
        partner_id: str | None = None,
        outbox: ReconOutbox | None = None,
    ) -> int:
        """Reconcile chains again (``gateway recon run``), ``chains`` per transaction: ``keys``, or all of
        ``partner_id``'s, or (both None) every chain, after which the runtime's pending links are done too."""
        everything = keys is None and partner_id is None
        with self._db.read("read the index's end") as conn:
            upto = conn.execute(select(func.max(recon_links.c.id))).scalar() if everything else None
        chosen = list(keys) if keys is not None else self.chain_keys(partner_id)
        for part in _chunks(chosen, chains):
            with self._db.write("reconcile PO chains") as conn:
                self._cursor(conn, "links")  # the same lock as the runtime's runs
                writes = self._reconcile_on(conn, list(part), compute, actor, outbox)
            if outbox is not None:
                outbox.committed(writes)
        if upto is not None:
            with self._db.write("move the index's cursor") as conn:
                if self._cursor(conn, "links") < upto:
                    self._advance(conn, "links", int(upto))
        return len(chosen)

    def orders_recorded(self, since: datetime, until: datetime) -> list[Key]:
        """The chains whose order was sent or received in [since, until)."""
        query = (
            select(recon_links.c.partner_id, recon_links.c.po_number)
            .where(
                recon_links.c.doc_type == "purchase_order",
                recon_links.c.received_at >= since,
                recon_links.c.received_at < until,
            )
            .distinct()
        )
        with self._db.read("list the orders of a period") as conn:
            return sorted((str(p), str(n)) for p, n in conn.execute(query))

    def chains(self, keys: Sequence[Key], chunk: int = 500) -> Iterator[ChainData]:
        """The chains ``keys`` with their documents, read ``chunk`` at a time."""
        for part in _chunks(list(keys), chunk):
            with self._db.read("read PO chains") as conn:
                yield from self._load(conn, list(part)).values()

    def chain_data(self, partner_id: str, po_number: str) -> ChainData:
        """One chain's documents (``gateway recon show``)."""
        with self._db.read("read a PO chain") as conn:
            return self._load(conn, [(partner_id, po_number)])[(partner_id, po_number)]

    def _load(self, conn: Connection, keys: list[Key]) -> dict[Key, ChainData]:
        out = {k: ChainData(*k) for k in keys}
        links = [
            r
            for r in conn.execute(
                select(recon_links)
                .where(_pairs_in(recon_links.c.partner_id, recon_links.c.po_number, keys))
                .order_by(recon_links.c.id)
            ).mappings()
            if (r["partner_id"], r["po_number"]) in out
        ]
        ids = {int(r["ref"].split(":")[1]) for r in links if r["ref"].startswith("document:")}
        texts: dict[int, str] = {}
        for part in _chunks(sorted(ids), 900):
            texts.update(
                (int(i), str(c))
                for i, c in conn.execute(select(documents.c.id, documents.c.canonical).where(documents.c.id.in_(part)))
            )
        numbers: set[tuple[str, str]] = set()
        for r in links:
            canonical = r["canonical"] if r["ref"].startswith("outbound:") else texts.get(int(r["ref"].split(":")[1]))
            if canonical is None:
                continue  # a document replaced by a rerun: its new copy has its own link
            out[(r["partner_id"], r["po_number"])].docs.append(_linked(r, canonical))
            if r["doc_type"] == "invoice" and r["number"]:
                numbers.add((r["partner_id"], r["number"]))
        if numbers:
            seen = conn.execute(
                select(recon_links).where(
                    recon_links.c.doc_type == "invoice",
                    _pairs_in(recon_links.c.partner_id, recon_links.c.number, numbers),
                )
            ).mappings()
            by_number: dict[tuple[str, str], list[LinkedDoc]] = {}
            for r in seen:
                if (r["partner_id"], r["number"]) not in numbers:
                    continue
                by_number.setdefault((r["partner_id"], r["number"]), []).append(_linked(r, ""))
            for chain in out.values():
                for doc in chain.docs:
                    if doc.doc_type == "invoice" and doc.number:
                        chain.invoices_seen[doc.number] = by_number.get((chain.partner_id, doc.number), [])
        return out

    def _reconcile_on(
        self, conn: Connection, keys: list[Key], compute: Compute, actor: str, outbox: ReconOutbox | None
    ) -> OutboxWrites:
        chains = self._load(conn, keys)
        found = compute(list(chains.values()))
        existing: dict[Key, dict[str, Record]] = {k: {} for k in keys}
        query = select(recon_exceptions).where(
            _pairs_in(recon_exceptions.c.partner_id, recon_exceptions.c.po_number, keys)
        )
        for stored in conn.execute(query).mappings():
            if (stored["partner_id"], stored["po_number"]) not in existing:
                continue
            existing[(stored["partner_id"], stored["po_number"])][stored["key"]] = stored
        now = self._now()
        inserts: list[dict[str, Any]] = []
        updates: list[tuple[Record, dict[str, Any], str, str | None]] = []
        for key in keys:
            chain = chains[key]
            latest = max(chain.docs, key=lambda d: (d.received_at, d.ref), default=None)
            have = existing[key]
            now_found = {d.key: d for d in found.get(key, [])}
            for k, d in now_found.items():
                values = _values(d)
                row: Record | None = have.get(k)
                if row is None:
                    inserts.append(
                        {**values, "partner_id": key[0], "po_number": key[1], "key": k[:512],
                         "status": ExceptionStatus.OPEN.value, "resolved_by": None, "resolution": None,
                         "created_at": now, "updated_at": now, "resolved_at": None}
                    )  # fmt: skip
                elif row["status"] == ExceptionStatus.OPEN.value:
                    if (row["reason"], row["amount"], row["documents"]) != (
                        values["reason"],
                        values["amount"],
                        values["documents"],
                    ):
                        updates.append((row, values, "update", values["reason"]))
                elif row["resolved_by"] == "document":
                    values.update(
                        status=ExceptionStatus.OPEN.value, resolved_by=None, resolution=None, resolved_at=None
                    )
                    updates.append((row, values, "reopen", f"found again: {values['reason']}"))
            for k, old in have.items():
                if k not in now_found and old["status"] == ExceptionStatus.OPEN.value:
                    why = "no longer found" + (f" once {latest.ref} ({_what(latest)}) was recorded" if latest else "")
                    values = {
                        "status": ExceptionStatus.RESOLVED.value,
                        "resolved_by": "document",
                        "resolution": why,
                        "resolved_at": now,
                    }
                    updates.append((old, values, "resolve", why))
        events: list[dict[str, Any]] = []
        if inserts:
            ids = insert_ids(conn, recon_exceptions, inserts, ("partner_id", "po_number", "key"))
            events += [
                {"exception_id": int(i), "action": "open", "from_status": None, "to_status": "open",
                 "reason": v["reason"], "actor": actor, "at": now}
                for i, v in zip(ids, inserts, strict=True)
            ]  # fmt: skip
        for changed, values, action, reason in updates:
            conn.execute(
                update(recon_exceptions).where(recon_exceptions.c.id == changed["id"]).values(**values, updated_at=now)
            )
            events.append(
                {"exception_id": changed["id"], "action": action, "from_status": changed["status"],
                 "to_status": values.get("status", changed["status"]), "reason": reason, "actor": actor, "at": now}
            )  # fmt: skip
        if events:
            conn.execute(insert(recon_events), events)
        return self._outbox_on(conn, keys, chains, outbox) if outbox is not None else OutboxWrites()

    # --- reading and settling -----------------------------------------------------------------------

    def list_exceptions(
        self,
        *,
        partner_id: str | None = None,
        po_number: str | None = None,
        kind: str | None = None,
        severity: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 1000,
    ) -> list[ExceptionRow]:
        """Exceptions, oldest first, filtered."""
        query = select(recon_exceptions).order_by(recon_exceptions.c.id)
        for column, value in (
            (recon_exceptions.c.partner_id, partner_id),
            (recon_exceptions.c.po_number, po_number),
            (recon_exceptions.c.kind, kind),
            (recon_exceptions.c.severity, severity),
            (recon_exceptions.c.status, status),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(recon_exceptions.c.created_at >= since)
        if until is not None:
            query = query.where(recon_exceptions.c.created_at < until)
        if limit is not None:
            query = query.limit(limit)
        with self._db.read("list reconciliation exceptions") as conn:
            return [ExceptionRow.from_mapping(r) for r in conn.execute(query).mappings()]

    def get_exception(self, exception_id: int) -> ExceptionRow:
        """One exception; NotFoundError when there is none with that id."""
        with self._db.read("read a reconciliation exception") as conn:
            row = conn.execute(select(recon_exceptions).where(recon_exceptions.c.id == exception_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no reconciliation exception {exception_id}")
        return ExceptionRow.from_mapping(row)

    def count_exceptions(self) -> dict[str, int]:
        """Exceptions by status."""
        query = select(recon_exceptions.c.status, func.count()).group_by(recon_exceptions.c.status)
        with self._db.read("count reconciliation exceptions") as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}

    def exception_events(self, exception_id: int) -> list[ExceptionEvent]:
        """An exception's life, oldest first."""
        query = select(recon_events).where(recon_events.c.exception_id == exception_id).order_by(recon_events.c.id)
        with self._db.read("read an exception's events") as conn:
            return [ExceptionEvent(**dict(r)) for r in conn.execute(query).mappings()]

    def settle_exception(
        self, exception_id: int, status: str, reason: str, actor: str, outbox: ReconOutbox | None = None
    ) -> ExceptionRow:
        """An operator resolves or waives an open exception, with a reason (an event records it); with
        ``outbox``, the billing events it held back are recorded in the same transaction."""
        if status not in (ExceptionStatus.RESOLVED.value, ExceptionStatus.WAIVED.value):
            raise StoreValueError(f"an operator may resolve or waive an exception, not set it {status!r}")
        if not reason.strip():
            raise StoreValueError("a reason is required")
        now = self._now()
        writes = OutboxWrites()
        with self._db.write(f"{status} exception {exception_id}") as conn:
            if outbox is not None:
                self._lock(conn)  # billing is decided under the lock reconciliation writes take
            row = conn.execute(
                select(recon_exceptions).where(recon_exceptions.c.id == exception_id).with_for_update()
            ).mappings().first()  # fmt: skip
            if row is None:
                raise NotFoundError(f"no reconciliation exception {exception_id}")
            if row["status"] != ExceptionStatus.OPEN.value:
                raise TransitionError(
                    f"exception {exception_id} is {row['status']} ({row['resolution']}), not open: "
                    f"it cannot be {status}"
                )
            values = {"status": status, "resolved_by": "operator", "resolution": reason, "resolved_at": now}
            conn.execute(
                update(recon_exceptions).where(recon_exceptions.c.id == exception_id).values(**values, updated_at=now)
            )
            conn.execute(
                insert(recon_events).values(
                    exception_id=exception_id, action=status[:-1] if status.endswith("d") else status,
                    from_status=row["status"], to_status=status, reason=reason, actor=actor, at=now,
                )
            )  # fmt: skip
            updated = conn.execute(select(recon_exceptions).where(recon_exceptions.c.id == exception_id)).mappings()
            settled = ExceptionRow.from_mapping(updated.one())
            if outbox is not None:
                key = (settled.partner_id, settled.po_number)
                writes = self._outbox_on(conn, [key], self._load(conn, [key]), outbox)
        if outbox is not None:
            outbox.committed(writes)
        return settled


def _linked(r: Record, canonical: str) -> LinkedDoc:
    return LinkedDoc(
        ref=r["ref"],
        doc_type=r["doc_type"],
        canonical=canonical,
        received_at=r["received_at"],
        number=r["number"],
        purpose=r["purpose"],
        po_number=r["po_number"],
    )


def _what(doc: LinkedDoc) -> str:
    names = {"purchase_order": "order", "po_acknowledgment": "acknowledgment", "ship_notice": "ship notice"}
    name = names.get(doc.doc_type, doc.doc_type)
    return f"{name} {doc.number}" if doc.number else name


def _values(d: Discrepancy) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "severity": d.severity.value,
        "line": d.line,
        "documents": json.dumps(list(d.documents)),
        "expected": d.expected,
        "actual": d.actual,
        "amount": None if d.amount is None else str(d.amount),
        "reason": d.reason,
    }
