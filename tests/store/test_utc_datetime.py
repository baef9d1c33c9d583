"""The ledger's datetime column type (gateway.store.schema.UTCDateTime) on SQLite: the text it stores
is SQLAlchemy's DATETIME text of the UTC time, whichever way the value was made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, select, text
from sqlalchemy.dialects import sqlite

from gateway.store.errors import StoreValueError
from gateway.store.schema import UTCDateTime

META = MetaData()
STAMPS = Table("stamps", META, Column("id", Integer, primary_key=True), Column("at", UTCDateTime(), nullable=True))

VALUES = [
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(999, 1, 1, tzinfo=UTC),  # a year of three digits is still written with four
    datetime(2026, 6, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))),  # stored as 2026-06-02 04:30 UTC
    datetime(2026, 6, 1, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))),
]


def _sqlalchemy_text(value: datetime) -> str:
    """What SQLAlchemy's own SQLite DATETIME writes for the naive UTC time (the format the ledger has)."""
    dialect = sqlite.dialect()
    plain = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert plain is not None
    return str(plain(value.astimezone(UTC).replace(tzinfo=None)))


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_sqlite_stores_the_utc_time_as_sqlalchemys_datetime_text_and_reads_it_back_aware(value: datetime) -> None:
    engine = create_engine("sqlite://")
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(STAMPS.insert(), [{"id": 1, "at": value}])
        stored = conn.execute(text("SELECT at FROM stamps")).scalar_one()
        read = conn.execute(select(STAMPS.c.at)).scalar_one()
        # Compared as stored text too: lease expiry and due times are compared in SQL as strings.
        earlier = conn.execute(select(STAMPS.c.id).where(STAMPS.c.at < value + timedelta(microseconds=1))).all()
    assert stored == _sqlalchemy_text(value)
    assert read == value and read.tzinfo is UTC
    assert earlier == [(1,)]


def test_a_naive_datetime_is_refused_and_none_stays_null() -> None:
    engine = create_engine("sqlite://")
    META.create_all(engine)
    with engine.begin() as conn:
        with pytest.raises(Exception) as caught:
            conn.execute(STAMPS.insert(), [{"id": 1, "at": datetime(2026, 1, 1)}])
        conn.execute(STAMPS.insert(), [{"id": 2, "at": None}])
        assert conn.execute(text("SELECT at FROM stamps")).all() == [(None,)]
    # SQLAlchemy wraps what a bind processor raises; the store's own error, with its code, is the cause.
    error = caught.value if isinstance(caught.value, StoreValueError) else caught.value.__cause__
    assert isinstance(error, StoreValueError) and "naive datetime" in str(error)


def test_the_same_value_bound_in_many_rows_and_values_in_turn_each_store_their_own_text() -> None:
    """The processor keeps the last value's text: one object in many rows, values alternating with each
    other and with None, and equal values made apart, each row still stores its own time."""
    engine = create_engine("sqlite://")
    META.create_all(engine)
    now = VALUES[0]
    rows = [
        now,
        now,
        None,
        now,
        VALUES[3],
        now,
        None,
        None,
        VALUES[1],
        VALUES[1],
        datetime.fromisoformat(now.isoformat()),
    ]
    with engine.begin() as conn:
        conn.execute(STAMPS.insert(), [{"id": i, "at": v} for i, v in enumerate(rows)])
        stored = [r[0] for r in conn.execute(text("SELECT at FROM stamps ORDER BY id"))]
    assert stored == [None if v is None else _sqlalchemy_text(v) for v in rows]
