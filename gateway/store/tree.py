"""Reading a file's tree and events, and resetting a half-processed file.

Crash safety: a file's processing is re-runnable. The runtime processes a
file in several transactions; if a worker dies half-way, the next worker
that claims the file calls :meth:`TreeOps.reset_file_children` first,
which deletes the half-written children (and the dedupe keys they claimed),
keeps their events and appends a ``reset`` event, so a rerun never creates
a second copy of a document.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, Table, delete, select

from gateway.store.base import as_enum
from gateway.store.deliveries import DeliveryOps
from gateway.store.errors import TransitionError
from gateway.store.files import FileOps, _check_lease
from gateway.store.rows import (
    DocumentRow,
    EventRow,
    FileRow,
    FileTree,
    GroupNode,
    GroupRow,
    InterchangeNode,
    InterchangeRow,
    SetNode,
    SetRow,
)
from gateway.store.schema import (
    dedupe_keys,
    documents,
    events,
    files,
    groups,
    interchanges,
    search_keys,
    transaction_sets,
)
from gateway.store.statuses import FILE_FINAL, EntityKind, EventAction, FileStatus

__all__ = ["TreeOps"]

CHILD_TABLES: tuple[tuple[EntityKind, Table], ...] = (
    (EntityKind.DOCUMENT, documents),
    (EntityKind.TRANSACTION_SET, transaction_sets),
    (EntityKind.GROUP, groups),
    (EntityKind.INTERCHANGE, interchanges),
)
"""A file's children, in the order they can be deleted (children before parents)."""

_MAX_ANCESTORS = 1000


class TreeOps(FileOps):
    """A file's tree and events; resetting its children."""

    def file_tree(self, file_id: int) -> FileTree:
        """The file, what it contained (interchanges → groups → sets → documents), its ancestors and children."""
        with self._db.read("read a file's tree") as conn:
            file = FileRow.from_mapping(self._get(conn, files, file_id))
            ancestors = self._ancestors(conn, file)
            children = [
                FileRow.from_mapping(r)
                for r in conn.execute(select(files).where(files.c.parent_id == file_id).order_by(files.c.id)).mappings()
            ]
            rows = {
                table.name: conn.execute(
                    select(table).where(table.c.file_id == file_id).order_by(table.c.position, table.c.id)
                )
                .mappings()
                .all()
                for _, table in CHILD_TABLES
            }
        docs_by_set: defaultdict[int | None, list[DocumentRow]] = defaultdict(list)
        for doc in map(DocumentRow.from_mapping, rows["documents"]):
            docs_by_set[doc.transaction_set_id].append(doc)
        sets_by_group: defaultdict[int, list[SetNode]] = defaultdict(list)
        for set_row in map(SetRow.from_mapping, rows["transaction_sets"]):
            sets_by_group[set_row.group_id].append(SetNode(set_row, tuple(docs_by_set[set_row.id])))
        groups_by_interchange: defaultdict[int, list[GroupNode]] = defaultdict(list)
        for group in map(GroupRow.from_mapping, rows["groups"]):
            groups_by_interchange[group.interchange_id].append(GroupNode(group, tuple(sets_by_group[group.id])))
        nodes = tuple(
            InterchangeNode(ic, tuple(groups_by_interchange[ic.id]))
            for ic in map(InterchangeRow.from_mapping, rows["interchanges"])
        )
        return FileTree(file, nodes, tuple(docs_by_set[None]), tuple(ancestors), tuple(children))

    def _ancestors(self, conn: Connection, file: FileRow) -> list[FileRow]:
        chain: list[FileRow] = []
        parent_id = file.parent_id
        while parent_id is not None and len(chain) < _MAX_ANCESTORS:
            parent = FileRow.from_mapping(self._get(conn, files, parent_id))
            chain.append(parent)
            parent_id = parent.parent_id
        return chain

    def events_for(self, kind: str, entity_id: int) -> list[EventRow]:
        """Every event of one entity, oldest first."""
        entity = as_enum(EntityKind, kind, "entity kind")
        query = (
            select(events)
            .where(events.c.entity_kind == entity.value, events.c.entity_id == entity_id)
            .order_by(events.c.id)
        )
        with self._db.read("read events") as conn:
            return [EventRow.from_mapping(r) for r in conn.execute(query).mappings()]

    def events_for_file(self, file_id: int) -> list[EventRow]:
        """Every event of a file and of everything in it (deleted rows included), oldest first."""
        query = select(events).where(events.c.file_id == file_id).order_by(events.c.id)
        with self._db.read("read a file's events") as conn:
            return [EventRow.from_mapping(r) for r in conn.execute(query).mappings()]

    def reset_file_children(self, file_id: int, worker: str | None = None, reason: str | None = None) -> dict[str, int]:
        """Delete a not-yet-finished file's interchanges, groups, sets and documents, to redo it from scratch.

        Also forgets the dedupe keys those rows claimed (a rerun claims them
        again). Events stay; a ``reset`` event on the file records what was
        deleted. Refused (:class:`TransitionError`) once the file is
        ``processed``, ``partial`` or ``duplicate``; a leased file can only be
        reset by its lease owner (``worker``). Returns the deleted counts per table.
        """
        now = self._now()
        with self._db.write(f"reset file {file_id}") as conn:
            row = self._get(conn, files, file_id, lock=True)
            status = FileStatus(row["status"])
            if status in FILE_FINAL:
                raise TransitionError(f"file {file_id} is {status}: its results are final; reprocess it as a new file")
            _check_lease(row, worker, "reset")
            deleted = {"dedupe_keys": self._forget_keys(conn, file_id)}
            deleted["deliveries"] = DeliveryOps.forget_untried_deliveries(conn, file_id)
            conn.execute(delete(search_keys).where(search_keys.c.file_id == file_id))  # the documents' keys
            for _, table in CHILD_TABLES:
                deleted[table.name] = conn.execute(delete(table).where(table.c.file_id == file_id)).rowcount
            self._event(
                conn,
                kind=EntityKind.FILE,
                entity_id=file_id,
                file_id=file_id,
                action=EventAction.RESET,
                from_status=status.value,
                to_status=status.value,
                at=now,
                reason=reason or "children deleted for a rerun",
                details={"deleted": deleted},
                correlation_id=row["correlation_id"],
                actor=worker,
            )
        return deleted

    @staticmethod
    def _forget_keys(conn: Connection, file_id: int) -> int:
        count = 0
        for kind, table in CHILD_TABLES:
            owned = select(table.c.id).where(table.c.file_id == file_id)
            result = conn.execute(
                delete(dedupe_keys).where(
                    dedupe_keys.c.first_entity_kind == kind.value, dedupe_keys.c.first_entity_id.in_(owned)
                )
            )
            count += result.rowcount
        return count
