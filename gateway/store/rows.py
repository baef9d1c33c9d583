"""The rows the store returns: small frozen dataclasses, built from result rows.

JSON columns come back decoded (``errors``, ``details``); ``canonical`` stays
the JSON text it was stored as, for the canonical models to parse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import Any, Self

Record = Mapping[Any, Any]
"""A result row as a mapping (SQLAlchemy's ``RowMapping``, or a plain dict)."""

__all__ = [
    "DedupeRow",
    "DocumentRow",
    "EventRow",
    "FileRow",
    "FileTree",
    "GroupNode",
    "GroupRow",
    "InterchangeNode",
    "InterchangeRow",
    "OutboundRow",
    "Record",
    "SetNode",
    "SetRow",
]


class _Row:
    """``from_mapping`` for dataclasses whose fields are a subset of a table's columns."""

    __slots__ = ()

    @classmethod
    def from_mapping(cls, row: Record) -> Self:
        # A field with a default may be absent from the row (it is not a column: see FileRow.previous_owner).
        names = [f.name for f in fields(cls) if f.name in row or f.default is MISSING]  # type: ignore[arg-type]
        return cls(**{name: row[name] for name in names})


@dataclass(frozen=True, slots=True)
class FileRow(_Row):
    """A received file: its archived bytes, where it came from, and its lease."""

    id: int
    sha256: str
    size: int
    name: str
    origin: str
    partner_id: str | None
    format: str
    status: str
    reason: str | None
    correlation_id: str
    parent_id: int | None
    received_at: datetime
    updated_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    attempts: int
    results_at: datetime | None = None
    results: str | None = None  # JSON: the final status waiting for the outputs (see FileOps.pending_final)
    previous_owner: str | None = None  # not a column: the worker whose lease expired, on a file claimed again


@dataclass(frozen=True, slots=True)
class InterchangeRow(_Row):
    """An ISA/IEA envelope found in a file (``position`` counts from 1 in the file)."""

    id: int
    file_id: int
    position: int
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    control_number: str
    version: str
    test: bool
    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class GroupRow(_Row):
    """A GS/GE functional group (``position`` counts from 1 in its interchange)."""

    id: int
    file_id: int
    interchange_id: int
    position: int
    functional_id: str
    sender_code: str | None
    receiver_code: str | None
    control_number: str
    version: str
    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SetRow:
    """An ST/SE transaction set and its located errors (decoded from JSON)."""

    id: int
    file_id: int
    group_id: int
    position: int
    set_id: str
    control_number: str
    status: str
    reason: str | None
    errors: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_mapping(cls, row: Record) -> SetRow:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["errors"] = json.loads(row["errors"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A canonical document; ``canonical`` is its JSON text; ``warnings`` its business-level warnings
    (``BIZ-*``, located like a set's errors; decoded from JSON, empty when none)."""

    id: int
    file_id: int
    transaction_set_id: int | None
    position: int
    partner_id: str | None
    doc_type: str
    business_key: str | None
    status: str
    reason: str | None
    canonical: str
    correlation_id: str
    parent_id: int | None
    created_at: datetime
    updated_at: datetime
    warnings: list[dict[str, Any]]
    route: dict[str, Any] | None = None  # the routing decision (rules matched, destinations); None before 0004

    @classmethod
    def from_mapping(cls, row: Record) -> DocumentRow:
        values = {f.name: row[f.name] for f in fields(cls) if f.name != "route"}
        values["warnings"] = json.loads(row["warnings"]) if row["warnings"] else []
        raw = row.get("route") if hasattr(row, "get") else None
        return cls(**values, route=json.loads(raw) if raw else None)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One appended ledger event; ``details`` decoded from JSON."""

    id: int
    entity_kind: str
    entity_id: int
    file_id: int | None
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict[str, Any] | None
    correlation_id: str | None
    actor: str | None
    at: datetime

    @classmethod
    def from_mapping(cls, row: Record) -> EventRow:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["details"] = None if row["details"] is None else json.loads(row["details"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class DedupeRow(_Row):
    """A remembered key: who used it first, when it was (last re)claimed, how often it was seen again."""

    id: int
    kind: str
    partner_id: str | None
    key: str
    first_entity_kind: str
    first_entity_id: int
    seen_at: datetime
    hits: int


@dataclass(frozen=True, slots=True)
class OutboundRow(_Row):
    """Something we send: its archived bytes, control numbers and the acknowledgment we expect."""

    id: int
    partner_id: str
    kind: str
    sha256: str
    control_number: str | None
    group_control_number: str | None
    file_id: int | None
    status: str
    reason: str | None
    expected_ack: str | None
    ack_due_at: datetime | None
    correlation_id: str
    created_at: datetime
    updated_at: datetime
    route: dict[str, Any] | None = None  # the outbound routing decision; None before 0013

    @classmethod
    def from_mapping(cls, row: Record) -> OutboundRow:
        values = {f.name: row[f.name] for f in fields(cls) if f.name != "route"}
        raw = row.get("route") if hasattr(row, "get") else None
        return cls(**values, route=json.loads(raw) if raw else None)


@dataclass(frozen=True, slots=True)
class SetNode:
    """A transaction set and the documents translated from it."""

    row: SetRow
    documents: tuple[DocumentRow, ...]


@dataclass(frozen=True, slots=True)
class GroupNode:
    """A functional group and its sets."""

    row: GroupRow
    sets: tuple[SetNode, ...]


@dataclass(frozen=True, slots=True)
class InterchangeNode:
    """An interchange and its groups."""

    row: InterchangeRow
    groups: tuple[GroupNode, ...]


@dataclass(frozen=True, slots=True)
class FileTree:
    """A file's lineage: what it contained, what it was reprocessed from, and its reprocessed copies.

    ``documents`` are the documents with no transaction set (CSV, XML);
    ``ancestors`` runs from the direct parent up to the original file;
    ``children`` are the files whose ``parent_id`` is this file.
    """

    file: FileRow
    interchanges: tuple[InterchangeNode, ...]
    documents: tuple[DocumentRow, ...]
    ancestors: tuple[FileRow, ...]
    children: tuple[FileRow, ...]

    def all_documents(self) -> Iterator[DocumentRow]:
        """Every document of the file, X12 ones in envelope order, then the others."""
        for interchange in self.interchanges:
            for group in interchange.groups:
                for node in group.sets:
                    yield from node.documents
        yield from self.documents
