"""What every part of :class:`~gateway.store.store.Store` shares: the database, the clock, the event log.

The store's operations are grouped by concern in mixins (``files``,
``lineage``, ``keys``, ``queries``), all built on :class:`StoreBase`;
:class:`~gateway.store.store.Store` puts them together.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, insert, select

from gateway.store.engine import Database
from gateway.store.errors import NotFoundError, StoreValueError
from gateway.store.rows import Record
from gateway.store.schema import events
from gateway.store.statuses import EntityKind, EventAction

__all__ = ["EVENT_INSERT", "Clock", "StoreBase", "utc_now"]

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime; passed in so tests can move time."""

E = TypeVar("E", bound=StrEnum)

EVENT_INSERT = insert(events)
"""Appending an event; the values come with each execution (one statement, compiled once)."""


def utc_now() -> datetime:
    """The wall clock, in UTC (the default :data:`Clock`)."""
    return datetime.now(UTC)


def new_correlation_id() -> str:
    """A fresh correlation id (a UUID4 string)."""
    return str(uuid.uuid4())


def as_enum(enum: type[E], value: str, what: str) -> E:
    """``enum(value)``, or a :class:`StoreValueError` listing the allowed values."""
    try:
        return enum(value)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in enum)
        raise StoreValueError(f"{what} {value!r} is not one of: {allowed}") from exc


def to_json(value: Any, what: str) -> str:
    """``value`` as compact JSON text (dates and decimals as strings)."""
    try:
        return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreValueError(f"{what} cannot be stored as JSON: {exc}") from exc


def aware(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreValueError(f"{what} must be an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class StoreBase:
    """The database, the clock and the helpers every store operation uses."""

    def __init__(self, url: str, *, clock: Clock | None = None) -> None:
        self._db = Database(url)
        self._clock: Clock = clock or utc_now
        self._statements: dict[str, Any] = {}  # built once per store: building one costs more than running it

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._db.dialect

    @property
    def database(self) -> Database:
        """The engine and its transactions (the runtime watches it for stalls)."""
        return self._db

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._db.url.render_as_string(hide_password=True)

    def snapshot(self, what: str) -> AbstractContextManager[None]:
        """A block whose reads (on this thread) share one read transaction: one consistent view of the
        ledger, one connection checkout (:meth:`Database.snapshot`). A page is rendered inside one."""
        return self._db.snapshot(what)

    def close(self) -> None:
        """Close the pooled connections; the store may still be used (it reconnects)."""
        self._db.dispose()

    def _now(self) -> datetime:
        return aware(self._clock(), "the clock's time")

    @staticmethod
    def event_row(
        *,
        kind: EntityKind,
        entity_id: int,
        file_id: int | None,
        action: EventAction,
        from_status: str | None,
        to_status: str,
        at: datetime,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """The values of one event row (to append several with one ``executemany``)."""
        return {
            "entity_kind": kind.value,
            "entity_id": entity_id,
            "file_id": file_id,
            "action": action.value,
            "from_status": from_status,
            "to_status": to_status,
            "reason": reason,
            "details": None if details is None else to_json(dict(details), "event details"),
            "correlation_id": correlation_id,
            "actor": actor,
            "at": at,
        }

    @classmethod
    def _event(cls, conn: Connection, **values: Any) -> None:
        """Append one event (see :meth:`event_row`), in the caller's transaction."""
        conn.execute(EVENT_INSERT, cls.event_row(**values))

    @staticmethod
    def _get(conn: Connection, table: Table, entity_id: int, *, lock: bool = False) -> Record:
        """The row ``entity_id`` of ``table`` (locked FOR UPDATE on PostgreSQL if ``lock``)."""
        query = select(table).where(table.c.id == entity_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFoundError(f"no {table.name} row with id {entity_id}")
        return row
