"""What a file contained: adding interchanges, groups, transaction sets and documents; changing statuses.

Every row added appends a ``create`` event, and every status change a
``status`` event, in the same transaction. Events carry the ``file_id`` of
the file they belong to, so a file's whole history is one query
(:meth:`~gateway.store.tree.TreeOps.events_for_file`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, update

from gateway.store.base import as_enum, new_correlation_id, to_json
from gateway.store.errors import StoreValueError
from gateway.store.files import FileOps
from gateway.store.rows import (
    DocumentRow,
    GroupRow,
    InterchangeRow,
    Record,
    SetRow,
)
from gateway.store.schema import (
    STATUS_ENUMS,
    STATUS_TABLES,
    documents,
    files,
    groups,
    interchanges,
    transaction_sets,
)
from gateway.store.search import insert_keys, search_rows
from gateway.store.statuses import (
    DocumentStatus,
    EntityKind,
    EnvelopeStatus,
    EventAction,
    SetStatus,
)

__all__ = ["LineageOps"]


class LineageOps(FileOps):
    """Adding the parts of a file and changing their statuses."""

    def _add(
        self,
        conn: Connection,
        table: Table,
        kind: EntityKind,
        values: dict[str, Any],
        correlation_id: str,
        reason: str | None,
    ) -> Record:
        now = self._now()
        row = (
            conn.execute(insert(table).values(**values, created_at=now, updated_at=now).returning(*table.c))
            .mappings()
            .one()
        )
        self._event(
            conn,
            kind=kind,
            entity_id=row["id"],
            file_id=row["file_id"],
            action=EventAction.CREATE,
            from_status=None,
            to_status=row["status"],
            at=now,
            reason=reason,
            correlation_id=correlation_id,
        )
        return row

    @staticmethod
    def _next_position(conn: Connection, table: Table, parent_column: str, parent_id: int) -> int:
        last = conn.execute(
            select(func.max(table.c.position)).where(table.c[parent_column] == parent_id)
        ).scalar_one_or_none()
        return int(last or 0) + 1

    def add_interchange(
        self,
        file_id: int,
        *,
        sender_qualifier: str,
        sender_id: str,
        receiver_qualifier: str,
        receiver_id: str,
        control_number: str,
        version: str,
        test: bool = False,
        status: str = EnvelopeStatus.RECEIVED,
        reason: str | None = None,
        position: int | None = None,
    ) -> InterchangeRow:
        """Record an interchange of ``file_id`` (``position``: 1-based order in the file, default next)."""
        verdict = as_enum(EnvelopeStatus, status, "interchange status")
        with self._db.write("add an interchange") as conn:
            file = self._get(conn, files, file_id)
            values = {
                "file_id": file_id,
                "position": position
                if position is not None
                else self._next_position(conn, interchanges, "file_id", file_id),
                "sender_qualifier": sender_qualifier,
                "sender_id": sender_id,
                "receiver_qualifier": receiver_qualifier,
                "receiver_id": receiver_id,
                "control_number": control_number,
                "version": version,
                "test": test,
                "status": verdict.value,
                "reason": reason,
            }
            row = self._add(conn, interchanges, EntityKind.INTERCHANGE, values, file["correlation_id"], reason)
        return InterchangeRow.from_mapping(row)

    def add_group(
        self,
        interchange_id: int,
        *,
        functional_id: str,
        control_number: str,
        version: str,
        sender_code: str | None = None,
        receiver_code: str | None = None,
        status: str = EnvelopeStatus.RECEIVED,
        reason: str | None = None,
        position: int | None = None,
    ) -> GroupRow:
        """Record a functional group of interchange ``interchange_id``."""
        verdict = as_enum(EnvelopeStatus, status, "group status")
        with self._db.write("add a group") as conn:
            parent = self._get(conn, interchanges, interchange_id)
            file = self._get(conn, files, parent["file_id"])
            values = {
                "file_id": parent["file_id"],
                "interchange_id": interchange_id,
                "position": position
                if position is not None
                else self._next_position(conn, groups, "interchange_id", interchange_id),
                "functional_id": functional_id,
                "sender_code": sender_code,
                "receiver_code": receiver_code,
                "control_number": control_number,
                "version": version,
                "status": verdict.value,
                "reason": reason,
            }
            row = self._add(conn, groups, EntityKind.GROUP, values, file["correlation_id"], reason)
        return GroupRow.from_mapping(row)

    def add_set(
        self,
        group_id: int,
        *,
        set_id: str,
        control_number: str,
        status: str = SetStatus.RECEIVED,
        errors: Sequence[Mapping[str, Any]] = (),
        reason: str | None = None,
        position: int | None = None,
    ) -> SetRow:
        """Record a transaction set of group ``group_id`` with its located errors (stored as JSON)."""
        verdict = as_enum(SetStatus, status, "transaction set status")
        with self._db.write("add a transaction set") as conn:
            parent = self._get(conn, groups, group_id)
            file = self._get(conn, files, parent["file_id"])
            values = {
                "file_id": parent["file_id"],
                "group_id": group_id,
                "position": position
                if position is not None
                else self._next_position(conn, transaction_sets, "group_id", group_id),
                "set_id": set_id,
                "control_number": control_number,
                "status": verdict.value,
                "reason": reason,
                "errors": to_json([dict(e) for e in errors], "transaction set errors"),
            }
            row = self._add(conn, transaction_sets, EntityKind.TRANSACTION_SET, values, file["correlation_id"], reason)
        return SetRow.from_mapping(row)

    def add_document(
        self,
        file_id: int,
        *,
        doc_type: str,
        canonical: str,
        transaction_set_id: int | None = None,
        partner_id: str | None = None,
        business_key: str | None = None,
        status: str = DocumentStatus.TRANSLATED,
        reason: str | None = None,
        correlation_id: str | None = None,
        parent_id: int | None = None,
        position: int | None = None,
    ) -> DocumentRow:
        """Record a canonical document (``canonical``: its JSON text) found in ``file_id``.

        ``transaction_set_id`` is the set it was translated from (None for
        CSV/XML); it must belong to the same file. ``partner_id`` defaults to
        the file's; ``correlation_id`` to a new one; ``parent_id`` links a
        reprocessed document to its original.
        """
        verdict = as_enum(DocumentStatus, status, "document status")
        with self._db.write("add a document") as conn:
            file = self._get(conn, files, file_id)
            if transaction_set_id is not None:
                owner = self._get(conn, transaction_sets, transaction_set_id)["file_id"]
                if owner != file_id:
                    raise StoreValueError(
                        f"transaction set {transaction_set_id} belongs to file {owner}, not {file_id}"
                    )
            if parent_id is not None:
                self._get(conn, documents, parent_id)
            correlation = correlation_id or new_correlation_id()
            values = {
                "file_id": file_id,
                "transaction_set_id": transaction_set_id,
                "position": position
                if position is not None
                else self._next_position(conn, documents, "file_id", file_id),
                "partner_id": partner_id if partner_id is not None else file["partner_id"],
                "doc_type": doc_type,
                "business_key": business_key,
                "status": verdict.value,
                "reason": reason,
                "canonical": canonical,
                "correlation_id": correlation,
                "parent_id": parent_id,
            }
            row = self._add(conn, documents, EntityKind.DOCUMENT, values, correlation, reason)
            insert_keys(
                conn, search_rows(canonical, file_id=file_id, document_id=row["id"], partner_id=row["partner_id"])
            )
        return DocumentRow.from_mapping(row)

    def set_status(
        self,
        kind: str,
        entity_id: int,
        status: str,
        reason: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> None:
        """Change the status of any entity and append an event; no-op when the status is already ``status``.

        ``kind`` is an :class:`EntityKind` value. Files go through
        :meth:`set_file_status` (with ``actor`` as the lease-owning worker),
        so their state machine and leases apply.
        """
        entity = as_enum(EntityKind, kind, "entity kind")
        if entity is EntityKind.FILE:
            self.set_file_status(entity_id, status, reason, actor, details=details)
            return
        table = STATUS_TABLES[entity]
        target = as_enum(STATUS_ENUMS[entity], status, f"{entity} status")
        now = self._now()
        with self._db.write(f"set {entity} {entity_id} {target}") as conn:
            row = self._get(conn, table, entity_id, lock=True)
            if row["status"] == target.value:
                return
            conn.execute(
                update(table).where(table.c.id == entity_id).values(status=target.value, reason=reason, updated_at=now)
            )
            correlation = row["correlation_id"] if "correlation_id" in table.c else None
            if correlation is None and row["file_id"] is not None:
                correlation = self._get(conn, files, row["file_id"])["correlation_id"]
            self._event(
                conn,
                kind=entity,
                entity_id=entity_id,
                file_id=row["file_id"],
                action=EventAction.STATUS,
                from_status=row["status"],
                to_status=target.value,
                at=now,
                reason=reason,
                details=details,
                correlation_id=correlation,
                actor=actor,
            )
