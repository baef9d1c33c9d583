"""Inserting many rows with one statement and getting each row's generated values back.

SQLAlchemy's ordered form (``returning(..., sort_by_parameter_order=True)``) needs a sentinel the
dialect can sort on; SQLite has none, so there it sends one statement per row (a batch of 32 files
then costs some 200 round trips through the driver and SQLAlchemy's execution path). SQLite does
return every row of a multi-row ``INSERT ... RETURNING``, in no documented order, so
:func:`insert_returning` returns the columns that tell the rows apart with the generated ones and
puts them back in the caller's order itself; when the rows do not differ in those columns it uses
the ordered form. The rows are the same either way: only the number of statements changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, RowMapping, Table

from gateway.store.errors import StoreError

__all__ = ["insert_ids", "insert_returning"]


@cache
def _statement(table: Table, columns: tuple[str, ...], ordered: bool) -> Insert:
    """Built once per table and columns (building a statement costs more than running it)."""
    return table.insert().returning(*(table.c[c] for c in columns), sort_by_parameter_order=ordered)


def insert_returning(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: tuple[str, ...], columns: tuple[str, ...]
) -> list[RowMapping]:
    """Insert ``rows`` into ``table``; returns, for each row in order, its ``keys`` and ``columns`` (as
    written or generated). ``keys`` are columns whose values (as the rows give them, compared as Python
    values) tell the rows apart: one multi-row statement when they do, the ordered form otherwise."""
    if not rows:
        return []
    wanted = [tuple(r[k] for k in keys) for r in rows]
    chosen = tuple(dict.fromkeys((*keys, *columns)))
    if len(set(wanted)) < len(wanted):
        return list(conn.execute(_statement(table, chosen, True), list(rows)).mappings())
    result = conn.execute(_statement(table, chosen, False), list(rows)).mappings()
    found = {tuple(r[k] for k in keys): r for r in result}
    if any(w not in found for w in wanted):
        raise StoreError(f"{table.name}: {len(rows)} row(s) inserted, but the rows returned do not match them")
    return [found[w] for w in wanted]


def insert_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> list[int]:
    """Insert ``rows`` into ``table``; their generated ids, in order (see :func:`insert_returning`)."""
    return [int(r["id"]) for r in insert_returning(conn, table, rows, keys, ("id",))]
