"""One document into the staging tables, inside the caller's transaction: inserted, updated in place
(version + 1, the previous version kept in ``{prefix}document_history``), or left unchanged.

The rules (``docs/erp-staging.md`` states them for ERP teams):

- the header row of ``(partner_id, doc_type, doc_key)`` is read ``FOR UPDATE``, so two deliveries
  of one document take turns;
- none: the header and its child rows are inserted as version 1;
- the same delivery again (its idempotency key is the header's, or one of its history rows': a
  retry whose first attempt committed but whose answer was lost) or the same content (the hash
  leaves out the envelope's control numbers): nothing is written;
- other content: the header's previous state goes to the history table, the header is updated in
  place with version + 1, and the child rows are deleted and written anew for the new version.

Why a history table rather than versioned child rows: the ERP reads current data with plain joins
on ``header_id``, no ``version`` filter to forget; the previous versions stay whole in their
canonical JSON, which an audit or a dispute needs, and which no later schema change can break.

Every value is checked against its column first (:func:`problems`), so a value a column cannot
hold exactly is refused the same way on every backend, naming the table and the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Executable, String, Table, bindparam, delete, select, update
from sqlalchemy.exc import DataError, IntegrityError

from gateway.delivery.staging.engine import first_line
from gateway.delivery.staging.rows import Rows
from gateway.delivery.staging.schema import CHILD_TABLES, build_metadata
from gateway.delivery.staging.types import DECIMAL_DIGITS, DECIMAL_SCALE, ExactDecimal, fits_decimal

__all__ = ["Loaded", "RowRefused", "Stamp", "Tables", "load", "load_new", "problems"]

_COLUMN = re.compile(r"column\s+[`'\"]?(?:\w+[`'\"]?\.[`'\"]?)*(\w+)|failed: \w+\.(\w+)", re.I)


class Tables:
    """The staging tables of one prefix, and the statements :func:`load` runs on them.

    The statements are built once, their values passed as parameters: SQLAlchemy then finds each one
    compiled in its cache, where a statement built per document with its values inline costs more
    than the database's own work (profiled: about 2 ms of 5 per document).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.metadata = build_metadata(prefix)
        doc = self.document = self.metadata.tables[f"{prefix}document"]
        history = self.history = self.metadata.tables[f"{prefix}document_history"]
        self.children = {name: self.metadata.tables[f"{prefix}{name}"] for name in CHILD_TABLES}
        self.current = (
            select(doc)
            .where(
                (doc.c.partner_id == bindparam("k_partner"))
                & (doc.c.doc_type == bindparam("k_type"))
                & (doc.c.doc_key == bindparam("k_key"))
            )
            .with_for_update()
        )
        self.earlier = select(history.c.version).where(
            (history.c.header_id == bindparam("k_header")) & (history.c.idempotency_key == bindparam("k_idem"))
        )
        self.update_header = update(doc).where(doc.c.id == bindparam("k_header"))
        # For a batch of new documents (load_new): the headers of some keys of one partner and type
        # (whether any is there, then the ids of those it inserted). Not a row-value IN over the three
        # columns: SQLite scans the whole index for that (25-61 ms with 200,000 headers), where this is
        # one index search per key on every backend.
        self.headers_of = select(doc.c.id, doc.c.doc_key).where(
            (doc.c.partner_id == bindparam("k_partner"))
            & (doc.c.doc_type == bindparam("k_type"))
            & doc.c.doc_key.in_(bindparam("k_keys", expanding=True))
        )
        self.limits = {table.name: _limits(table) for table in self.metadata.tables.values()}
        self.inserts = {table.name: table.insert() for table in (doc, history, *self.children.values())}
        self.deletes = {
            name: delete(table).where(table.c.header_id == bindparam("k_header"))
            for name, table in self.children.items()
        }


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the delivery adds to the document's own rows: who, which delivery, when (naive UTC)."""

    partner_id: str
    idempotency_key: str
    correlation_id: str
    document_text: str
    now: datetime
    ledger_document_id: int | None = None
    ledger_delivery_id: int | None = None
    ledger_file_id: int | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a load did: ``action`` is ``inserted``, ``updated`` or ``unchanged``; ``rows`` counts rows written."""

    header_id: int
    version: int
    action: str
    rows: dict[str, int]
    note: str | None = None


class RowRefused(Exception):
    """The database refused a row; ``race`` when it was a concurrent insert of the same key."""

    def __init__(self, table: str, column: str | None, message: str, race: bool = False) -> None:
        where = f"{table}.{column}" if column else table
        super().__init__(f"{where}: {message}")
        self.table, self.column, self.race = table, column, race


def _column(exc: IntegrityError | DataError) -> str | None:
    diag = getattr(exc.orig, "diag", None)  # psycopg names the column of a NOT NULL violation
    if diag is not None and getattr(diag, "column_name", None):
        return str(diag.column_name)
    match = _COLUMN.search(first_line(exc))
    return (match.group(1) or match.group(2)) if match else None


def _write(conn: Connection, table: Table, statement: Executable, params: Any = None, header: bool = False) -> Any:
    try:
        return conn.execute(statement, params) if params is not None else conn.execute(statement)
    except (IntegrityError, DataError) as exc:
        text = first_line(exc)
        race = header and isinstance(exc, IntegrityError) and re.search(r"unique|duplicate", text, re.I) is not None
        raise RowRefused(table.name, _column(exc), text, race=race) from exc


@dataclass(frozen=True, slots=True)
class _Limit:
    """What a column can hold: a value required, an exact decimal, at most ``length`` characters."""

    required: bool
    decimal: bool
    length: int | None


def _limits(table: Table) -> dict[str, _Limit]:
    return {
        column.name: _Limit(
            required=not column.nullable and not column.primary_key,
            decimal=isinstance(column.type, ExactDecimal),
            length=column.type.length if isinstance(column.type, String) else None,
        )
        for column in table.columns
    }


def _problem(table: str, limits: dict[str, _Limit], values: dict[str, Any]) -> str | None:
    for name, value in values.items():
        limit = limits[name]
        if value is None:
            if limit.required:
                return f"{table}.{name}: no value, and the column requires one"
            continue
        if limit.decimal and not fits_decimal(Decimal(value)):
            return (
                f"{table}.{name}: {Decimal(value):f} does not fit NUMERIC({DECIMAL_DIGITS}, {DECIMAL_SCALE}) "
                f"exactly (at most {DECIMAL_SCALE} decimals and {DECIMAL_DIGITS - DECIMAL_SCALE} integer digits)"
            )
        if limit.length is not None and len(str(value)) > limit.length:
            size = len(str(value))
            return f"{table}.{name}: {size} characters, the column holds {limit.length} ({str(value)[:40]!r}...)"
    return None


def problem_in(tables: Tables, table: str, values: dict[str, Any]) -> str | None:
    """The first of ``values`` the columns of ``table`` cannot hold exactly (``table.column: why``), or None."""
    return _problem(table, tables.limits[table], values)


def problems(tables: Tables, rows: Rows, header: dict[str, Any]) -> str | None:
    """The first value a column cannot hold exactly (``table.column: why``), or None."""
    doc = tables.document.name
    found = _problem(doc, tables.limits[doc], header)
    if found:
        return found
    for name, items in rows.children.items():
        table = tables.children[name].name
        for n, item in enumerate(items, 1):
            found = _problem(table, tables.limits[table], item)
            if found:
                return f"{found} (row {n})"
    return None


def header_values(rows: Rows, stamp: Stamp) -> dict[str, Any]:
    """The header row's values, bookkeeping included (``version`` and ``created_at`` are set by :func:`load`)."""
    return {
        **rows.header,
        "partner_id": stamp.partner_id,
        "doc_type": rows.doc_type,
        "doc_key": rows.key,
        "content_sha256": rows.content_sha256,
        "idempotency_key": stamp.idempotency_key,
        "correlation_id": stamp.correlation_id,
        "ledger_document_id": stamp.ledger_document_id,
        "ledger_delivery_id": stamp.ledger_delivery_id,
        "ledger_file_id": stamp.ledger_file_id,
        "document": stamp.document_text,
        "updated_at": stamp.now,
    }


def _child_rows(tables: Tables, rows: Rows, header_id: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
    """The child rows of a document under ``header_id``, by child table (in :data:`CHILD_TABLES` order, the
    empty ones left out), and their counts by table name."""
    found: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for name in CHILD_TABLES:
        items = rows.children.get(name)
        if items:
            found[name] = [{"header_id": header_id, **item} for item in items]
            counts[tables.children[name].name] = len(items)
    return found, counts


def _children(conn: Connection, tables: Tables, rows: Rows, header_id: int) -> dict[str, int]:
    found, counts = _child_rows(tables, rows, header_id)
    for name, items in found.items():
        table = tables.children[name]
        _write(conn, table, tables.inserts[table.name], items)
    return counts


def load(conn: Connection, tables: Tables, rows: Rows, stamp: Stamp) -> Loaded:
    """Write ``rows`` by the rules above, in ``conn``'s transaction (the caller commits)."""
    doc, history = tables.document, tables.history
    values = header_values(rows, stamp)
    key = {"k_partner": stamp.partner_id, "k_type": rows.doc_type, "k_key": rows.key}
    current = conn.execute(tables.current, key).mappings().first()
    if current is None:
        first = {**values, "version": 1, "created_at": stamp.now}
        result = _write(conn, doc, tables.inserts[doc.name], first, header=True)
        header_id = int(result.inserted_primary_key[0])
        counts = {doc.name: 1, **_children(conn, tables, rows, header_id)}
        return Loaded(header_id, 1, "inserted", counts)
    header_id, version = int(current["id"]), int(current["version"])
    if current["idempotency_key"] == stamp.idempotency_key:
        return Loaded(header_id, version, "unchanged", {}, "this delivery was loaded before")
    if current["content_sha256"] == rows.content_sha256:
        return Loaded(header_id, version, "unchanged", {}, f"same content as version {version}")
    earlier = conn.execute(tables.earlier, {"k_header": header_id, "k_idem": stamp.idempotency_key}).scalar()
    if earlier is not None:
        return Loaded(
            header_id, version, "unchanged", {}, f"this delivery was loaded as version {earlier}, since superseded"
        )
    _write(
        conn,
        history,
        tables.inserts[history.name],
        {
            "header_id": header_id,
            "version": version,
            "content_sha256": current["content_sha256"],
            "idempotency_key": current["idempotency_key"],
            "correlation_id": current["correlation_id"],
            "ledger_document_id": current["ledger_document_id"],
            "purpose": current["purpose"],
            "loaded_at": current["updated_at"],
            "superseded_at": stamp.now,
            "document": current["document"],
        },
    )
    for name in reversed(CHILD_TABLES):
        conn.execute(tables.deletes[name], {"k_header": header_id})
    _write(conn, doc, tables.update_header, {**values, "version": version + 1, "k_header": header_id})
    counts = {doc.name: 1, history.name: 1, **_children(conn, tables, rows, header_id)}
    return Loaded(header_id, version + 1, "updated", counts)


def load_new(conn: Connection, tables: Tables, batch: list[tuple[Rows, Stamp]]) -> list[Loaded] | None:
    """A batch of documents none of which has a header yet, its keys distinct, written as :func:`load`
    would insert each (version 1), but with one statement per table (an ``executemany``) and two reads
    per partner and document type, instead of five or six statements per document: None (nothing
    written) when one of them is loaded already. A row the database refuses raises (IntegrityError,
    DataError) with the batch half written: the caller runs this inside a savepoint and rolls it back."""
    keys = [(stamp.partner_id, rows.doc_type, rows.key) for rows, stamp in batch]
    groups: dict[tuple[str, str], list[str]] = {}
    for partner, doc_type, doc_key in keys:
        groups.setdefault((partner, doc_type), []).append(doc_key)

    def asked(group: tuple[str, str]) -> dict[str, Any]:
        return {"k_partner": group[0], "k_type": group[1], "k_keys": groups[group]}

    if any(conn.execute(tables.headers_of.limit(1), asked(group)).first() is not None for group in groups):
        return None
    doc = tables.document
    headers = [{**header_values(rows, stamp), "version": 1, "created_at": stamp.now} for rows, stamp in batch]
    _write(conn, doc, tables.inserts[doc.name], headers, header=True)
    ids = {
        (*group, str(found)): int(header_id)
        for group in groups
        for header_id, found in conn.execute(tables.headers_of, asked(group))
    }
    loaded = []
    children: dict[str, list[dict[str, Any]]] = {name: [] for name in CHILD_TABLES}
    for (rows, _), key in zip(batch, keys, strict=True):
        header_id = ids[key]
        found, counts = _child_rows(tables, rows, header_id)
        for name, items in found.items():
            children[name].extend(items)
        loaded.append(Loaded(header_id, 1, "inserted", {doc.name: 1, **counts}))
    for name, items in children.items():
        if items:
            table = tables.children[name]
            _write(conn, table, tables.inserts[table.name], items)
    return loaded
