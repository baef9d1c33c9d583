"""Fixtures for the store tests: every store test runs on SQLite and on PostgreSQL.

Not a ``conftest.py``: ``tests/`` has no packages, so a second ``conftest``
module would shadow the root one that other tests import from. Test modules
import the fixtures they use from here.

PostgreSQL is ``$GATEWAY_TEST_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Each test gets its own
schema, reached through ``search_path`` in the URL (so spawned processes
and Alembic land in it too), dropped afterwards. When the server is not
reachable the PostgreSQL cases are skipped, except under ``CI=true`` where
they fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import PG_URL, pg_admin_fixture, schema_url, unavailable  # noqa: F401 - shared with the runtime tests
from sqlalchemy import Engine, text

from gateway.store import Archive, Store

BACKENDS = ["sqlite", "postgresql"]
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(name="db_url", params=BACKENDS)
def db_url_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'gateway.sqlite'}"
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"gw_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    """The store's clock in tests."""
    return FakeClock()


@pytest.fixture(name="store")
def store_fixture(db_url: str, clock: FakeClock) -> Iterator[Store]:
    """A migrated store on a fake clock."""
    with Store(db_url, clock=clock) as store:
        store.upgrade()
        yield store


@pytest.fixture(name="archive")
def archive_fixture(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """An empty archive."""
    return Archive(tmp_path_factory.mktemp("archive"))


def sha(n: int) -> str:
    """A well-formed, distinct digest for file ``n`` (the bytes need not exist for ledger tests)."""
    return f"{n:064x}"


def record(
    store: Store,
    n: int = 1,
    *,
    partner_id: str | None = "acme",
    parent_id: int | None = None,
    status: str = "received",
) -> int:
    """Record file ``n`` with plausible values; returns its id."""
    row = store.record_file(
        sha(n),
        100 + n,
        f"file{n}.edi",
        f"inbox:acme/file{n}.edi",
        partner_id,
        "x12",
        parent_id=parent_id,
        status=status,
    )
    return row.id
