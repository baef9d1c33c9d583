"""Recording what processing found in a batch of files, in one transaction (batched writes).

The runtime builds a plan per file in memory (interchange → groups → sets
→ documents, plus CSV/XML documents, plus the acknowledgment each
interchange is owed) and :meth:`ResultOps.record_batch` writes the plans of
a whole batch of leased files, with their events, dedupe-key claims and
acknowledgments, in a single transaction. Duplicates are decided there (the
claims are atomic), and acknowledgments are numbered there, after the claims,
so an interchange found to be a duplicate is never acknowledged as new and
no control number is drawn for an acknowledgment that is not recorded. The
file's ``results_at`` is set in the same transaction; the runtime then
writes the outputs and :meth:`ResultOps.finish_files` moves the files to
their final status. A worker that dies between the two leaves
``results_at`` set: the next owner re-writes the outputs from the ledger.

One transaction for a batch instead of one per row (or per file) is what
lets a single worker keep up with hundreds of small files a second; every
row still gets its events, statuses and lease checks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, String, bindparam, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.planning import (
    AckBuilder,
    DocPlan,
    FileFinal,
    FilePlan,
    GroupPlan,
    InterchangePlan,
    OutboundPlan,
    SetPlan,
)
from gateway.store.base import EVENT_INSERT, as_enum, to_json
from gateway.store.deliveries import DeliveryOps, OwedDelivery
from gateway.store.errors import LeaseError, NotFoundError, StoreValueError, TransitionError
from gateway.store.files import NextBatch, _check_lease
from gateway.store.inserts import insert_ids
from gateway.store.keys import KeyOps
from gateway.store.lineage import LineageOps
from gateway.store.outbound import INTERCHANGE_SEQUENCE
from gateway.store.rows import DedupeRow, FileRow, Record
from gateway.store.schema import dedupe_keys, documents, files, groups, interchanges, outbound, transaction_sets
from gateway.store.search import insert_keys, search_rows
from gateway.store.statuses import FILE_TRANSITIONS, EntityKind, EventAction, FileStatus, OutboundStatus

__all__ = [
    "AckBuilder",
    "DocPlan",
    "FileFinal",
    "FilePlan",
    "GroupPlan",
    "InterchangePlan",
    "OutboundPlan",
    "ResultOps",
    "SetPlan",
]


@dataclass(slots=True)
class _Batch:
    """One record_batch call: its connection and the events to insert at the end."""

    conn: Connection
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, **values: Any) -> None:
        self.events.append({"details": None, "actor": None, "reason": None, "correlation_id": None, **values})


@dataclass(slots=True)
class _Claim:
    """One dedupe key to claim for an entity; ``first`` is filled with the earlier claim when it is a duplicate."""

    kind: str
    partner_id: str | None
    key: str
    entity_kind: str
    entity_id: int
    window: float | None = None
    first: DedupeRow | None = None


_ROW_KEYS = {
    interchanges.name: ("file_id", "position"),
    groups.name: ("interchange_id", "position"),
    transaction_sets.name: ("group_id", "position"),
    documents.name: ("file_id", "transaction_set_id", "position"),
    outbound.name: ("file_id", "control_number", "reason"),
}
"""What tells a batch's new rows apart, so one statement inserts them all (:func:`insert_ids`)."""

_ADVISORY_LOCKS = text("SELECT pg_advisory_xact_lock(id) FROM unnest(CAST(:ids AS bigint[])) AS id")
"""unnest keeps the array's order, so the locks are taken in the sorted order the caller passes."""


_LIMITS = {
    t.name: [(c.name, c.type.length) for c in t.c if isinstance(c.type, String) and c.type.length]
    for t in (interchanges, groups, transaction_sets, documents, outbound)
}


def _check_lengths(table: Any, rows: list[dict[str, Any]]) -> None:
    """Refuse a value longer than its column with one message on both databases (SQLite would store it,
    PostgreSQL would fail the whole transaction with a message that does not say which row)."""
    for values in rows:
        for name, limit in _LIMITS[table.name]:
            value = values.get(name)
            if isinstance(value, str) and len(value) > limit:
                raise StoreValueError(
                    f"{table.name}.{name} holds at most {limit} characters, got {len(value)}: {value[:60]!r}..."
                )


def _lock_id(name: str) -> int:
    """A stable signed 64-bit id for an advisory lock on ``name`` (a collision only makes two keys queue)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


_RESULTS_AT = (
    update(files)
    .where(files.c.id == bindparam("file_id"))
    .values(results_at=bindparam("now"), results=bindparam("results"), updated_at=bindparam("now"))
)
_FINISH = (
    update(files)
    .where(files.c.id == bindparam("file_id"))
    .values(
        status=bindparam("status"),
        reason=bindparam("reason"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("now"),
    )
)


def _kept(final: FileFinal | None) -> str | None:
    """A file's final status as kept with its results (``files.results``), read back by ``pending_final``."""
    if final is None:
        return None
    # the fields as they are (JSON data already): dataclasses.asdict deep-copies them first
    kept = {"file_id": final.file_id, "status": final.status, "reason": final.reason, "details": final.details}
    return to_json(kept, "a file's final status")


class ResultOps(LineageOps, KeyOps, DeliveryOps):
    """The batched writer."""

    def record_batch(
        self,
        worker: str,
        plans: list[FilePlan],
        before_commit: Callable[[], object] | None = None,
        *,
        delivery_lease: float = 300.0,
        finish: bool = False,
        claim: NextBatch | None = None,
    ) -> list[FilePlan]:
        """Write the plans of files leased to ``worker`` in one transaction; fills ids, ``duplicate_of``,
        ``bytes_duplicate_of`` and ``outbound``. A plan whose file is no longer leased to ``worker`` is
        skipped with ``lost`` set (the new owner redoes that file); the others are recorded. A complete
        plan's ``conclude`` is called once its duplicates are known; the final status it returns is kept
        with the file (:meth:`pending_final`) until :meth:`finish_files`.

        ``before_commit`` runs last inside the transaction: the place to make durable the archive blobs
        the acknowledgment builders staged, since the rows committed here point at them.

        Each document that stays translated (not a duplicate) and each acknowledgment is owed to its
        destinations (``DocPlan.routes``, ``OutboundPlan.destinations``): those deliveries are recorded
        here too (the transactional outbox), leased to ``worker`` for ``delivery_lease`` seconds, and
        listed in ``plan.owed``.

        ``finish``: a complete plan's file also takes its final status in this transaction, as
        :meth:`finish_files` would give it (for a worker that delivers nothing itself: its delivery processes
        take the deliveries, so there is nothing left to do between the two, and one transaction is saved).

        ``claim`` (with ``finish``): the next batch is claimed last in this transaction, its rows set in
        ``claim`` once it has committed (:class:`NextBatch`)."""
        if not plans:
            return plans
        if claim is not None and not finish:
            raise StoreValueError("the next batch is claimed only with the files finished in the same transaction")
        claimed: list[FileRow] = []
        with self._db.write(f"record the results of {len(plans)} file(s)") as conn:
            rows, lost = self._leased(conn, worker, [p.file_id for p in plans], "record results for")
            for plan in plans:
                plan.lost = lost.get(plan.file_id)
            recorded = [p for p in plans if p.lost is None]
            self._lock_keys(conn, recorded)
            batch = _Batch(conn)
            correlations = {p.file_id: rows[p.file_id]["correlation_id"] for p in recorded}
            owed = self._plans_on(batch, recorded, correlations)
            # Last, so a partner's sequence row stays locked (PostgreSQL) for the shortest time.
            self._acks_on(batch, owed, correlations)
            self._owed_on(conn, recorded, correlations, worker, delivery_lease)
            now = self._now()
            concluded = [(p.file_id, self._concluded(p)) for p in recorded if p.complete]
            if concluded:
                kept = [{"file_id": i, "results": _kept(final), "now": now} for i, final in concluded]
                conn.execute(_RESULTS_AT, kept)
            if batch.events:
                conn.execute(EVENT_INSERT, batch.events)  # one executemany for the batch
            if finish:
                self._finish_on(conn, worker, [final for _, final in concluded if final is not None], rows, now)
            claimed_at = time.monotonic()  # before the claim reads the clock: renewals are then not late
            if claim is not None:
                claimed = self._claim_next(conn, worker, claim)
            if before_commit is not None:
                before_commit()
        if claim is not None:  # committed: leased now
            claim.rows, claim.leased_at = claimed, claimed_at
        return plans

    def _claim_next(self, conn: Connection, worker: str, claim: NextBatch) -> list[FileRow]:
        """The next batch, claimed last in the results transaction, in a savepoint: a claim that fails
        (a statement timeout) costs only the claim (the next batch claims on its own), not the results."""
        try:
            with conn.begin_nested():
                return self.claim_files_on(
                    conn, worker, claim.limit, claim.lease_seconds, max_attempts=claim.max_attempts
                )
        except SQLAlchemyError as exc:
            claim.error = f"claiming the next batch with the results failed (it claims on its own): {exc}"
            return []

    def _owed_on(
        self, conn: Connection, plans: list[FilePlan], correlations: dict[int, str], worker: str, lease: float
    ) -> None:
        """The deliveries the recorded documents and acknowledgments are owed (after their ids are known)."""
        every: list[OwedDelivery] = []
        for plan in plans:
            plan.owed = []
            docs = [st.document for ic in plan.interchanges for g in ic.groups for st in g.sets if st.document]
            for doc in [*docs, *plan.documents]:
                if doc.id is None or doc.status != "translated" or doc.duplicate_of is not None:
                    continue
                source: dict[str, Any] = {
                    "kind": "document",
                    "canonical": doc.canonical,
                    "business_key": doc.business_key,
                    "position": doc.position,
                }
                for destination, rule in doc.routes:
                    plan.owed.append(
                        OwedDelivery(
                            destination,
                            doc.doc_type,
                            doc.partner_id,
                            doc.correlation_id,
                            doc.correlation_id,
                            file_id=plan.file_id,
                            document_id=doc.id,
                            rule=rule,
                            source=source,
                        )
                    )
            for ic in plan.interchanges:
                out = ic.outbound
                if out is None or out.id is None:
                    continue
                source = {
                    "kind": "outbound",
                    "sha256": out.sha256,
                    "control_number": out.control_number,
                    "data": out.data,
                }
                for destination, rule in out.routes:
                    plan.owed.append(
                        OwedDelivery(
                            destination,
                            out.kind,
                            out.partner_id,
                            correlations[plan.file_id],
                            f"outbound:{out.id}",
                            file_id=plan.file_id,
                            outbound_id=out.id,
                            rule=rule,
                            source=source,
                        )
                    )
            every.extend(plan.owed)
        self.deliveries_on(conn, every, worker, lease)

    @staticmethod
    def _leased(
        conn: Connection, worker: str, file_ids: list[int], doing: str
    ) -> tuple[dict[int, Record], dict[int, str]]:
        """The files' rows, locked, and why each one ``worker`` no longer holds the lease of is lost."""
        ids = sorted(set(file_ids))
        query = select(files).where(files.c.id.in_(ids)).order_by(files.c.id).with_for_update()
        rows: dict[int, Record] = {r["id"]: r for r in conn.execute(query).mappings()}
        lost: dict[int, str] = {}
        for file_id in ids:
            row = rows.get(file_id)
            try:
                if row is None:
                    raise NotFoundError(f"no files row with id {file_id}")
                _check_lease(row, worker, doing)
            except (LeaseError, NotFoundError) as exc:
                lost[file_id] = str(exc)
        return rows, lost

    def _lock_keys(self, conn: Connection, plans: list[FilePlan]) -> None:
        """PostgreSQL: lock every dedupe key the batch will claim, in one global order, before claiming any.

        Two workers' batches may share keys (a resent file in each), or acknowledge two partners, whose
        sequence rows the ack draws lock; taken in plan order, A could hold key 1 and wait for key 2 while
        B holds 2 and waits for 1: a deadlock. Transaction-level advisory locks on all of them, taken in
        one sorted order first, make them queue instead. (SQLite has one writer at a time.)
        """
        if self.dialect != "postgresql":
            return
        names: set[str] = set()
        for plan in plans:
            if plan.bytes_key is not None:
                names.add(f"bytes|{plan.partner_id or ''}|{plan.bytes_key}")
            for ic in plan.interchanges:
                if ic.isa13_key is not None and ic.id is None:
                    names.add(f"isa13||{ic.isa13_key}")
                names.update(
                    f"business|{st.document.partner_id or ''}|{st.document.business_key}"
                    for g in ic.groups
                    for st in g.sets
                    if st.document is not None and st.document.business_key is not None
                )
            names.update(
                f"business|{d.partner_id or ''}|{d.business_key}" for d in plan.documents if d.business_key is not None
            )
            if any(ic.ack is not None for ic in plan.interchanges):
                # the ack draws lock the partner's sequence row
                names.add(f"sequence|{plan.partner_id or ''}|{INTERCHANGE_SEQUENCE}")
        if names:
            hashes = sorted({_lock_id(n) for n in names})
            conn.execute(_ADVISORY_LOCKS, {"ids": hashes})

    @staticmethod
    def _concluded(plan: FilePlan) -> FileFinal | None:
        return plan.conclude(plan) if plan.conclude is not None else None

    @staticmethod
    def pending_final(row: FileRow) -> FileFinal | None:
        """The final status recorded with a file's results (None when its results are not recorded)."""
        if row.results_at is None or row.results is None:
            return None
        data = json.loads(row.results)
        return FileFinal(int(data["file_id"]), str(data["status"]), data.get("reason"), data.get("details"))

    def finish_files(self, worker: str, finals: list[FileFinal]) -> list[int]:
        """Move files leased to ``worker`` to their final status in one transaction, clearing the leases;
        returns the ids of files whose lease was lost meanwhile (left untouched)."""
        if not finals:
            return []
        now = self._now()
        with self._db.write(f"finish {len(finals)} file(s)") as conn:
            rows, gone = self._leased(conn, worker, [f.file_id for f in finals], "finish")
            self._finish_on(conn, worker, [f for f in finals if f.file_id not in gone], rows, now)
        return [f.file_id for f in finals if f.file_id in gone]

    @staticmethod
    def _finish_on(
        conn: Connection, worker: str, finals: list[FileFinal], rows: dict[int, Record], now: datetime
    ) -> None:
        """Move files (their rows locked, leased to ``worker``) to their final statuses, with an event each."""
        updates: list[dict[str, Any]] = []
        new_events: list[dict[str, Any]] = []
        for final in finals:
            row = rows[final.file_id]
            target = as_enum(FileStatus, final.status, "file status")
            current = FileStatus(row["status"])
            if target not in FILE_TRANSITIONS[current]:
                raise TransitionError(f"file {final.file_id}: {current} -> {target} is not allowed")
            updates.append({"file_id": final.file_id, "status": target.value, "reason": final.reason, "now": now})
            new_events.append(
                {
                    "entity_kind": EntityKind.FILE.value,
                    "entity_id": final.file_id,
                    "file_id": final.file_id,
                    "action": EventAction.STATUS.value,
                    "from_status": current.value,
                    "to_status": target.value,
                    "reason": final.reason,
                    "details": None if final.details is None else to_json(final.details, "event details"),
                    "correlation_id": row["correlation_id"],
                    "actor": worker,
                    "at": now,
                }
            )
        if updates:
            conn.execute(_FINISH, updates)
            conn.execute(EVENT_INSERT, new_events)

    def _acks_on(
        self, batch: _Batch, owed: list[tuple[FilePlan, InterchangePlan]], correlations: dict[int, str]
    ) -> None:
        """Record the acknowledgments the interchanges are owed: the one an earlier attempt recorded, else a
        new one (built now, numbered from the partner's sequence); the new ones with one insert."""
        conn = batch.conn
        new: list[tuple[FilePlan, OutboundPlan]] = []
        draws = self.draws_on(conn)
        for plan, ic in owed:
            assert ic.ack is not None
            if plan.rerun and ic.ack_marker is not None:
                ic.outbound = self._earlier_ack(conn, plan.file_id, (ic.ack_marker, *ic.ack_old_markers))
                if ic.outbound is not None:
                    _route_ack(ic, ic.outbound)  # owed again: the deliveries recorded before are found by key
                    continue
            draw = partial(draws.draw, plan.partner_id or "", INTERCHANGE_SEQUENCE)
            ic.outbound = ic.ack(draw, ic.duplicate_of is not None)
            if ic.outbound is not None:
                _route_ack(ic, ic.outbound)
                new.append((plan, ic.outbound))
        draws.finish()
        if not new:
            return
        now = self._now()
        rows = [
            {
                "partner_id": out.partner_id,
                "kind": out.kind,
                "sha256": out.sha256,
                "control_number": out.control_number,
                "group_control_number": None,
                "file_id": plan.file_id,
                "status": _ack_status(out),
                "reason": out.reason,
                "expected_ack": None,
                "ack_due_at": None,
                "correlation_id": correlations[plan.file_id],
                "created_at": now,
                "updated_at": now,
                "route": None if out.route is None else to_json(out.route, "outbound route"),
            }
            for plan, out in new
        ]
        for (plan, out), new_id in zip(new, insert_ids(conn, outbound, rows, _ROW_KEYS[outbound.name]), strict=True):
            out.id = new_id
            details: dict[str, Any] = {
                "kind": out.kind,
                "partner_id": out.partner_id,
                "control_number": out.control_number,
            }
            if out.route is not None:
                details["route"] = out.route
            batch.event(
                entity_kind=EntityKind.OUTBOUND.value,
                entity_id=out.id,
                file_id=plan.file_id,
                action=EventAction.CREATE.value,
                from_status=None,
                to_status=_ack_status(out),
                at=now,
                reason=out.reason,
                details=to_json({**details, "sha256": out.sha256}, "event details"),
                correlation_id=correlations[plan.file_id],
            )

    @staticmethod
    def _earlier_ack(conn: Connection, file_id: int, markers: tuple[str, ...]) -> OutboundPlan | None:
        """The acknowledgment an earlier attempt on the file recorded under one of ``markers``, if any."""
        query = (
            select(outbound)
            .where(outbound.c.file_id == file_id, outbound.c.reason.in_(markers))
            .order_by(outbound.c.id)
            .limit(1)
        )
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return OutboundPlan(
            row["partner_id"], row["kind"], row["sha256"], row["control_number"], row["reason"], id=row["id"]
        )

    def _plans_on(
        self, batch: _Batch, plans: list[FilePlan], correlations: dict[int, str]
    ) -> list[tuple[FilePlan, InterchangePlan]]:
        """Every plan's rows and claims, a level at a time (one statement per level for the whole batch);
        returns the interchanges owed an acknowledgment."""
        conn = batch.conn
        with_bytes = [p for p in plans if p.bytes_key is not None]
        claims = [_Claim("bytes", p.partner_id, str(p.bytes_key), "file", p.file_id) for p in with_bytes]
        self._claim_all(conn, claims)
        for plan, claim in zip(with_bytes, claims, strict=True):
            if claim.first is not None and plan.on_bytes_duplicate is not None:
                plan.bytes_duplicate_of = claim.first.first_entity_id
                plan.interchanges, plan.documents = [], []

        every = [(p, ic) for p in plans for ic in p.interchanges]
        self._update_envelopes(batch, every, correlations)
        for _, ic in every:
            if ic.release_isa13 and ic.id is not None and ic.isa13_key is not None and ic.duplicate_of is None:
                # Rejected at its trailer: its ISA13 is the partner's to send again (see docs/store.md).
                conn.execute(
                    dedupe_keys.delete().where(
                        dedupe_keys.c.kind == "isa13",
                        dedupe_keys.c.key == ic.isa13_key,
                        dedupe_keys.c.first_entity_kind == EntityKind.INTERCHANGE.value,
                        dedupe_keys.c.first_entity_id == ic.id,
                    )
                )
                ic.release_isa13 = False
        ics = [(p, ic) for p, ic in every if ic.id is None]
        ids = self._insert_rows(
            batch,
            interchanges,
            EntityKind.INTERCHANGE,
            [
                {
                    "file_id": p.file_id,
                    "position": ic.position,
                    "sender_qualifier": ic.sender_qualifier,
                    "sender_id": ic.sender_id,
                    "receiver_qualifier": ic.receiver_qualifier,
                    "receiver_id": ic.receiver_id,
                    "control_number": ic.control_number,
                    "version": ic.version,
                    "test": ic.test,
                    "status": ic.status,
                    "reason": ic.reason,
                }
                for p, ic in ics
            ],
            [correlations[p.file_id] for p, _ in ics],
        )
        for (_, ic), new_id in zip(ics, ids, strict=True):
            ic.id, ic.stored = new_id, ic.status
        keyed = [(p, ic) for p, ic in ics if ic.isa13_key is not None]
        claims = [
            _Claim("isa13", None, str(ic.isa13_key), "interchange", int(ic.id or 0), ic.isa13_window) for _, ic in keyed
        ]
        self._claim_all(conn, claims)
        for (p, ic), claim in zip(keyed, claims, strict=True):
            if claim.first is not None and ic.on_duplicate is not None:
                ic.duplicate_of, ic.stored = claim.first.first_entity_id, "duplicate"
                why = f"ISA13 {ic.control_number} already received (interchange {ic.duplicate_of})"
                self._status_on(
                    batch, interchanges, EntityKind.INTERCHANGE, int(ic.id or 0), p.file_id, ic.status,
                    "duplicate", why, correlations[p.file_id],
                )  # fmt: skip

        gs = [(p, ic, pos, g) for p, ic in every for pos, g in enumerate(ic.groups, 1) if g.id is None]
        group_ids = self._insert_rows(
            batch,
            groups,
            EntityKind.GROUP,
            [
                {
                    "file_id": p.file_id,
                    "interchange_id": ic.id,
                    "position": g.position or pos,
                    "functional_id": g.functional_id,
                    "sender_code": g.sender_code,
                    "receiver_code": g.receiver_code,
                    "control_number": g.control_number,
                    "version": g.version,
                    "status": g.status,
                    "reason": None,
                }
                for p, ic, pos, g in gs
            ],
            [correlations[p.file_id] for p, *_ in gs],
        )
        for (*_, g), gid in zip(gs, group_ids, strict=True):
            g.id, g.stored = gid, g.status
        ss = [
            (p, ic, int(g.id or 0), g.first + pos, st)
            for p, ic in every
            for g in ic.groups
            for pos, st in enumerate(g.sets, 1)
        ]
        set_ids = self._insert_rows(
            batch,
            transaction_sets,
            EntityKind.TRANSACTION_SET,
            [
                {
                    "file_id": p.file_id,
                    "group_id": gid,
                    "position": pos,
                    "set_id": st.set_id,
                    "control_number": st.control_number,
                    "status": "duplicate" if ic.duplicate_of is not None else st.status,
                    "reason": "duplicate interchange" if ic.duplicate_of is not None else st.reason,
                    "errors": to_json(st.errors, "transaction set errors"),
                }
                for p, ic, gid, pos, st in ss
            ],
            [correlations[p.file_id] for p, *_ in ss],
        )
        docs: list[tuple[FilePlan, int | None, DocPlan]] = []
        for (p, ic, _, _, st), set_id in zip(ss, set_ids, strict=True):
            if st.document is None:
                continue
            if ic.duplicate_of is not None:
                st.document.duplicate_of = ic.duplicate_of
            else:
                docs.append((p, set_id, st.document))
        docs.extend((p, None, doc) for p in plans for doc in p.documents)
        self._documents_on(batch, docs)
        return [(p, ic) for p, ic in every if ic.ack is not None]

    def _update_envelopes(
        self, batch: _Batch, every: list[tuple[FilePlan, InterchangePlan]], correlations: dict[int, str]
    ) -> None:
        """A later chunk of a big interchange: the statuses its interchange and groups now have."""
        for p, ic in every:
            if ic.id is None:
                continue
            if ic.duplicate_of is None and ic.status != ic.stored:
                self._status_on(
                    batch, interchanges, EntityKind.INTERCHANGE, ic.id, p.file_id, str(ic.stored), ic.status,
                    ic.reason, correlations[p.file_id],
                )  # fmt: skip
                ic.stored = ic.status
            for g in ic.groups:
                if g.id is not None and g.status != g.stored:
                    self._status_on(
                        batch, groups, EntityKind.GROUP, g.id, p.file_id, str(g.stored), g.status,
                        None, correlations[p.file_id],
                    )  # fmt: skip
                    g.stored = g.status

    def _documents_on(self, batch: _Batch, docs: list[tuple[FilePlan, int | None, DocPlan]]) -> None:
        doc_ids = self._insert_rows(
            batch,
            documents,
            EntityKind.DOCUMENT,
            [
                {
                    "file_id": p.file_id,
                    "transaction_set_id": set_id,
                    "position": doc.position,
                    "partner_id": doc.partner_id,
                    "doc_type": doc.doc_type,
                    "business_key": doc.business_key,
                    "status": doc.status,
                    "reason": doc.reason,
                    "canonical": doc.canonical,
                    "correlation_id": doc.correlation_id,
                    "parent_id": doc.parent_id,
                    "warnings": to_json(doc.warnings, "document warnings") if doc.warnings else None,
                    "route": to_json(doc.route, "routing decision") if doc.route else None,
                }
                for p, set_id, doc in docs
            ],
            [doc.correlation_id for _, _, doc in docs],
        )
        for (_, _, doc), new_id in zip(docs, doc_ids, strict=True):
            doc.id = new_id
        insert_keys(batch.conn, [k for p, _, d in docs for k in search_rows(d.canonical, file_id=p.file_id,
                                  document_id=d.id, partner_id=d.partner_id)])  # fmt: skip
        keyed = [(p, doc) for p, _, doc in docs if doc.business_key is not None and doc.status == "translated"]
        claims = [
            _Claim("business", doc.partner_id, str(doc.business_key), "document", int(doc.id or 0)) for _, doc in keyed
        ]
        self._claim_all(batch.conn, claims)
        for (p, doc), claim in zip(keyed, claims, strict=True):
            if claim.first is not None and doc.on_duplicate is not None:
                doc.duplicate_of = claim.first.first_entity_id
                why = f"{doc.business_key} already received (document {doc.duplicate_of})"
                self._status_on(
                    batch, documents, EntityKind.DOCUMENT, int(doc.id or 0), p.file_id, doc.status,
                    doc.on_duplicate, why, doc.correlation_id,
                )  # fmt: skip
        self._routed_by_copy(batch, [doc for _, _, doc in docs if doc.parent_id is not None and doc.routes])

    def _routed_by_copy(self, batch: _Batch, copies: list[DocPlan]) -> None:
        """A reprocessing routed copies of documents that were unrouted: those are no longer an exception for an
        operator (``gateway status``), routed as their copy (one read, only when a reprocessing has copies)."""
        if not copies:
            return
        parents = {int(doc.parent_id or 0): doc for doc in copies}
        query = select(documents.c.id, documents.c.file_id, documents.c.correlation_id).where(
            documents.c.id.in_(list(parents)), documents.c.status == "unrouted"
        )
        for parent_id, file_id, correlation in batch.conn.execute(query).all():
            copy = parents[int(parent_id)]
            why = f"routed as document {copy.id}, its reprocessing"
            self._status_on(
                batch, documents, EntityKind.DOCUMENT, int(parent_id), int(file_id), "unrouted", "routed", why,
                str(correlation),
            )  # fmt: skip

    def _insert_rows(
        self, batch: _Batch, table: Any, kind: EntityKind, rows: list[dict[str, Any]], correlations: list[str]
    ) -> list[int]:
        """Insert ``rows`` into ``table`` with one statement; their ids in order; a create event each."""
        if not rows:
            return []
        _check_lengths(table, rows)
        now = self._now()
        params = [{**values, "created_at": now, "updated_at": now} for values in rows]
        ids = insert_ids(batch.conn, table, params, _ROW_KEYS[table.name])
        for values, new_id, correlation in zip(rows, ids, correlations, strict=True):
            batch.event(
                entity_kind=kind.value,
                entity_id=new_id,
                file_id=values["file_id"],
                action=EventAction.CREATE.value,
                from_status=None,
                to_status=values["status"],
                at=now,
                reason=values.get("reason"),
                correlation_id=correlation,
            )
        return ids

    def _claim_all(self, conn: Connection, claims: list[_Claim]) -> None:
        """Claim many keys: one insert for the new ones; keys seen before (or twice in the batch) are then
        resolved one by one in order, exactly as :meth:`claim_on` does (windows, reruns, hits)."""
        if not claims:
            return
        now = self._now()
        params = [self._claim_values(c.kind, c.partner_id, c.key, c.entity_kind, c.entity_id, now) for c in claims]
        new = {(r.kind, r.partner_id, r.key) for r in conn.execute(self._claim_insert_keys(), params)}
        for claim, values in zip(claims, params, strict=True):
            ident = (values["kind"], values["partner_id"], values["key"])
            if ident in new:
                new.discard(ident)  # the first of the batch to claim it; a repeat resolves against it below
                continue
            claim.first = self.claim_on(
                conn, claim.kind, claim.partner_id, claim.key, claim.entity_kind, claim.entity_id, claim.window
            )

    def _status_on(
        self,
        batch: _Batch,
        table: Any,
        kind: EntityKind,
        entity_id: int,
        file_id: int,
        old: str,
        new: str,
        reason: str | None,
        correlation: str,
    ) -> None:
        now = self._now()
        batch.conn.execute(
            update(table).where(table.c.id == entity_id).values(status=new, reason=reason, updated_at=now)
        )
        batch.event(
            entity_kind=kind.value,
            entity_id=entity_id,
            file_id=file_id,
            action=EventAction.STATUS.value,
            from_status=old,
            to_status=new,
            at=now,
            reason=reason,
            correlation_id=correlation,
        )


def _route_ack(ic: InterchangePlan, out: OutboundPlan) -> None:
    """Where ``out`` (the interchange's acknowledgment, its kind now known) is owed, by the outbound rules."""
    if ic.ack_router is not None:
        out.routes, out.route = ic.ack_router(out.kind)


def _ack_status(out: OutboundPlan) -> str:
    """``unrouted`` when rules were asked and none matched; else ``created``."""
    unrouted = out.route is not None and not out.routes
    return (OutboundStatus.UNROUTED if unrouted else OutboundStatus.CREATED).value
