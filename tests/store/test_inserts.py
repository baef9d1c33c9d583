"""Many rows in one INSERT, each row's id given back in the caller's order (gateway.store.inserts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select

from gateway.store.inserts import insert_ids, insert_returning

META = MetaData()
ROWS = Table(
    "rows",
    META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(20)),
    sqlite_autoincrement=True,
)


def _engine() -> Any:
    engine = create_engine("sqlite://")
    META.create_all(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda c, cur, sql, *a: statements.append(sql))
    return engine, statements


def test_rows_told_apart_by_their_keys_go_in_one_statement_with_ids_in_order() -> None:
    engine, statements = _engine()
    rows = [{"file_id": f, "position": p, "name": f"{f}.{p}"} for f in (3, 1, 2) for p in (2, 1)]
    with engine.begin() as conn:
        ids = insert_ids(conn, ROWS, rows, ("file_id", "position"))
        assert len(statements) == 1
        stored = {row.id: row.name for row in conn.execute(select(ROWS.c.id, ROWS.c.name))}
    assert [stored[i] for i in ids] == [r["name"] for r in rows]


def test_rows_not_told_apart_use_the_ordered_form() -> None:
    engine, _ = _engine()
    rows = [{"file_id": 1, "position": 1, "name": n} for n in ("a", "b", "c")]
    with engine.begin() as conn:
        returned = insert_returning(conn, ROWS, rows, ("file_id", "position"), ("id", "name"))
    assert [r["name"] for r in returned] == ["a", "b", "c"]
    assert len({r["id"] for r in returned}) == 3


def test_nothing_to_insert() -> None:
    engine, statements = _engine()
    with engine.begin() as conn:
        assert insert_ids(conn, ROWS, [], ("file_id", "position")) == []
    assert statements == []
