"""Read-only views for operators and health checks: counts, the oldest pending file, listings."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.planning import ACKNOWLEDGMENT
from gateway.store.base import StoreBase, as_enum
from gateway.store.rows import DocumentRow, FileRow
from gateway.store.schema import STATUS_TABLES, documents, files
from gateway.store.statuses import FileStatus

__all__ = ["PENDING", "QueryOps"]

PENDING = (FileStatus.RECEIVED.value, FileStatus.PROCESSING.value)
"""File statuses that still need a worker."""


class QueryOps(StoreBase):
    """Counts and listings."""

    def counts_by_status(self) -> dict[str, dict[str, int]]:
        """``{table: {status: rows}}`` for every table with a status (tables with no rows map to ``{}``).

        Inbound 997/999/TA1 kept as ``acknowledgment`` documents are counted apart, as
        ``{"acknowledgments": {"received": n}}``: they are neither documents translated nor failures.
        """
        counts: dict[str, dict[str, int]] = {}
        with self._db.read("count rows by status") as conn:
            for table in STATUS_TABLES.values():
                query = select(table.c.status, func.count()).group_by(table.c.status).order_by(table.c.status)
                if table is documents:
                    query = query.where(documents.c.doc_type != ACKNOWLEDGMENT)
                counts[table.name] = {status: int(n) for status, n in conn.execute(query)}
            received = select(func.count()).select_from(documents).where(documents.c.doc_type == ACKNOWLEDGMENT)
            n = int(conn.execute(received).scalar_one())
            counts["acknowledgments"] = {"received": n} if n else {}
        return counts

    def list_documents(self, *, status: str | None = None, limit: int = 100) -> list[DocumentRow]:
        """Documents (not inbound acknowledgments), newest first, optionally in one status."""
        query = select(documents).where(documents.c.doc_type != ACKNOWLEDGMENT).order_by(documents.c.id.desc())
        if status is not None:
            query = query.where(documents.c.status == status)
        with self._db.read("list documents") as conn:
            return [DocumentRow.from_mapping(r) for r in conn.execute(query.limit(limit)).mappings()]

    def document_ids_by_position(self, file_id: int) -> dict[int, int]:
        """A file's documents (not inbound acknowledgments) by their position in it: id."""
        query = select(documents.c.position, documents.c.id).where(
            documents.c.file_id == file_id, documents.c.doc_type != ACKNOWLEDGMENT
        )
        with self._db.read(f"read the documents of file {file_id}") as conn:
            return {int(pos): int(i) for pos, i in conn.execute(query)}

    def oldest_pending(self) -> FileRow | None:
        """The longest-waiting file still ``received`` or ``processing`` (a stuck intake shows here), or None."""
        query = select(files).where(files.c.status.in_(PENDING)).order_by(files.c.received_at, files.c.id).limit(1)
        with self._db.read("find the oldest pending file") as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else FileRow.from_mapping(row)

    def list_files(
        self, status: str | None = None, partner: str | None = None, limit: int = 50, *, before_id: int | None = None
    ) -> list[FileRow]:
        """Files newest first, optionally of one status and/or partner; ``before_id`` pages backwards."""
        query = select(files).order_by(files.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(files.c.status == as_enum(FileStatus, status, "file status").value)
        if partner is not None:
            query = query.where(files.c.partner_id == partner)
        if before_id is not None:
            query = query.where(files.c.id < before_id)
        with self._db.read("list files") as conn:
            return [FileRow.from_mapping(r) for r in conn.execute(query).mappings()]
