"""Recording what processing found in a file, in one transaction per interchange (batched writes).

The runtime builds a plan in memory (interchange → groups → sets → documents,
plus CSV/XML documents) and :meth:`ResultOps.record_results` writes it all,
with its events and dedupe-key claims, in a single transaction; the final
call also moves the file to its final status and clears its lease. One
transaction instead of one per row is what lets a single worker keep up with
hundreds of small files a second; everything else about the rows (events,
statuses, lease checks) is as in the one-row methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, update

from gateway.store.base import as_enum, to_json
from gateway.store.errors import TransitionError
from gateway.store.files import _check_lease
from gateway.store.keys import KeyOps
from gateway.store.lineage import LineageOps
from gateway.store.schema import documents, events, files, groups, interchanges, transaction_sets
from gateway.store.statuses import FILE_TRANSITIONS, EntityKind, EventAction, FileStatus

__all__ = ["DocPlan", "FilePlan", "GroupPlan", "InterchangePlan", "ResultOps", "SetPlan"]


@dataclass(slots=True)
class DocPlan:
    """A canonical document to record. ``on_duplicate``: the status a duplicate business key gives
    (``duplicate`` or ``held``), or None to let it through. ``duplicate_of`` is filled in."""

    doc_type: str
    canonical: str
    correlation_id: str
    partner_id: str | None = None
    business_key: str | None = None
    status: str = "translated"
    reason: str | None = None
    on_duplicate: str | None = "duplicate"
    duplicate_of: int | None = None
    id: int | None = None


@dataclass(slots=True)
class SetPlan:
    """A transaction set and its document (None when it failed)."""

    set_id: str
    control_number: str
    status: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    document: DocPlan | None = None


@dataclass(slots=True)
class GroupPlan:
    """A functional group and its sets."""

    functional_id: str
    control_number: str
    version: str
    status: str
    sender_code: str | None = None
    receiver_code: str | None = None
    sets: list[SetPlan] = field(default_factory=list)


@dataclass(slots=True)
class InterchangePlan:
    """An interchange; ``isa13_key`` is claimed within ``isa13_window`` seconds (None: forever)."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    control_number: str
    version: str
    status: str
    test: bool = False
    reason: str | None = None
    isa13_key: str | None = None
    isa13_window: float | None = None
    on_duplicate: str | None = "duplicate"
    groups: list[GroupPlan] = field(default_factory=list)
    duplicate_of: int | None = None
    id: int | None = None


@dataclass(slots=True)
class FilePlan:
    """One batch of results; ``final_status`` (with ``reason``/``details``) finishes the file."""

    interchanges: list[InterchangePlan] = field(default_factory=list)
    documents: list[DocPlan] = field(default_factory=list)
    final_status: str | None = None
    reason: str | None = None
    details: dict[str, Any] | None = None


@dataclass(slots=True)
class _Batch:
    """One record_results call: its connection, the events to insert at the end, the next positions."""

    conn: Connection
    interchange: int
    document: int
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, **values: Any) -> None:
        self.events.append({"details": None, "actor": None, "reason": None, "correlation_id": None, **values})


class ResultOps(LineageOps, KeyOps):
    """The batched writer."""

    def record_results(self, file_id: int, worker: str, plan: FilePlan) -> FilePlan:
        """Write ``plan`` for the leased file in one transaction; fills ids and ``duplicate_of``."""
        with self._db.write(f"record the results of file {file_id}") as conn:
            row = self._get(conn, files, file_id, lock=True)
            _check_lease(row, worker, "record results for")
            correlation = row["correlation_id"]
            batch = _Batch(
                conn,
                interchange=self._next_position(conn, interchanges, "file_id", file_id) - 1,
                document=self._next_position(conn, documents, "file_id", file_id) - 1,
            )
            for ic in plan.interchanges:
                self._interchange_on(batch, file_id, correlation, ic)
            for doc in plan.documents:
                self._document_on(batch, file_id, None, doc)
            if plan.final_status is not None:
                self._finish_on(conn, row, worker, plan)
            if batch.events:
                conn.execute(insert(events), batch.events)  # one executemany for the batch
        return plan

    def _row(self, batch: _Batch, table: Any, kind: EntityKind, values: dict[str, Any], correlation: str) -> int:
        now = self._now()
        stmt = table.insert().returning(table.c.id)  # built once per table by SQLAlchemy's cache
        new_id = batch.conn.execute(stmt, {**values, "created_at": now, "updated_at": now}).scalar_one()
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
        return int(new_id)

    def _status_on(
        self,
        batch: _Batch,
        table: Any,
        kind: EntityKind,
        entity_id: int,
        file_id: int,
        old: str,
        new: str,
        reason: str,
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

    def _interchange_on(self, batch: _Batch, file_id: int, correlation: str, ic: InterchangePlan) -> None:
        batch.interchange += 1
        position = batch.interchange
        ic.id = self._row(
            batch,
            interchanges,
            EntityKind.INTERCHANGE,
            {
                "file_id": file_id,
                "position": position,
                "sender_qualifier": ic.sender_qualifier,
                "sender_id": ic.sender_id,
                "receiver_qualifier": ic.receiver_qualifier,
                "receiver_id": ic.receiver_id,
                "control_number": ic.control_number,
                "version": ic.version,
                "test": ic.test,
                "status": ic.status,
                "reason": ic.reason,
            },
            correlation,
        )
        duplicate = False
        if ic.isa13_key is not None:
            first = self.claim_on(
                batch.conn, "isa13", None, ic.isa13_key, "interchange", ic.id, window_seconds=ic.isa13_window
            )
            if first is not None and ic.on_duplicate is not None:
                ic.duplicate_of = first.first_entity_id
                duplicate = True
                why = f"ISA13 {ic.control_number} already received (interchange {first.first_entity_id})"
                self._status_on(
                    batch,
                    interchanges,
                    EntityKind.INTERCHANGE,
                    ic.id,
                    file_id,
                    ic.status,
                    "duplicate",
                    why,
                    correlation,
                )
        for gpos, g in enumerate(ic.groups, 1):
            group_id = self._row(
                batch,
                groups,
                EntityKind.GROUP,
                {
                    "file_id": file_id,
                    "interchange_id": ic.id,
                    "position": gpos,
                    "functional_id": g.functional_id,
                    "sender_code": g.sender_code,
                    "receiver_code": g.receiver_code,
                    "control_number": g.control_number,
                    "version": g.version,
                    "status": g.status,
                    "reason": None,
                },
                correlation,
            )
            for spos, st in enumerate(g.sets, 1):
                status = "duplicate" if duplicate else st.status
                set_row = self._row(
                    batch,
                    transaction_sets,
                    EntityKind.TRANSACTION_SET,
                    {
                        "file_id": file_id,
                        "group_id": group_id,
                        "position": spos,
                        "set_id": st.set_id,
                        "control_number": st.control_number,
                        "status": status,
                        "reason": "duplicate interchange" if duplicate else st.reason,
                        "errors": to_json(st.errors, "transaction set errors"),
                    },
                    correlation,
                )
                if st.document is not None and not duplicate:
                    self._document_on(batch, file_id, set_row, st.document)
                elif st.document is not None:
                    st.document.duplicate_of = ic.duplicate_of

    def _document_on(self, batch: _Batch, file_id: int, set_row: int | None, doc: DocPlan) -> None:
        batch.document += 1
        position = batch.document
        doc.id = self._row(
            batch,
            documents,
            EntityKind.DOCUMENT,
            {
                "file_id": file_id,
                "transaction_set_id": set_row,
                "position": position,
                "partner_id": doc.partner_id,
                "doc_type": doc.doc_type,
                "business_key": doc.business_key,
                "status": doc.status,
                "reason": doc.reason,
                "canonical": doc.canonical,
                "correlation_id": doc.correlation_id,
                "parent_id": None,
            },
            doc.correlation_id,
        )
        if doc.business_key is None or doc.status != "translated":
            return
        first = self.claim_on(batch.conn, "business", doc.partner_id, doc.business_key, "document", doc.id)
        if first is not None and doc.on_duplicate is not None:
            doc.duplicate_of = first.first_entity_id
            why = f"{doc.business_key} already received (document {first.first_entity_id})"
            self._status_on(
                batch,
                documents,
                EntityKind.DOCUMENT,
                doc.id,
                file_id,
                doc.status,
                doc.on_duplicate,
                why,
                doc.correlation_id,
            )

    def _finish_on(self, conn: Connection, row: Any, worker: str, plan: FilePlan) -> None:
        target = as_enum(FileStatus, str(plan.final_status), "file status")
        current = FileStatus(row["status"])
        if target not in FILE_TRANSITIONS[current]:
            raise TransitionError(f"file {row['id']}: {current} -> {target} is not allowed")
        now = self._now()
        conn.execute(
            update(files)
            .where(files.c.id == row["id"])
            .values(status=target.value, reason=plan.reason, lease_owner=None, lease_expires_at=None, updated_at=now)
        )
        self._event(
            conn,
            kind=EntityKind.FILE,
            entity_id=row["id"],
            file_id=row["id"],
            action=EventAction.STATUS,
            from_status=current.value,
            to_status=target.value,
            at=now,
            reason=plan.reason,
            details=plan.details,
            correlation_id=row["correlation_id"],
            actor=worker,
        )
