"""The store never waits for ever: PostgreSQL connections carry connect, keep-alive and statement
timeouts (the URL's own parameters win), the database says what it is waiting on, and a SQLite ledger is
readable by its owner only."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from storekit import db_url_fixture, pg_admin_fixture  # noqa: F401 - fixtures

from gateway.store import Store
from gateway.store.engine import PG_STATEMENT_TIMEOUT_MS


def _show(store: Store, setting: str) -> str:
    with store.database.read("show a setting") as conn:
        return str(conn.execute(text(f"SHOW {setting}")).scalar())


def test_postgresql_connections_get_a_statement_timeout_beside_the_urls_options(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    with Store(db_url) as store:  # the test schema's URL carries options=-csearch_path=...
        assert _show(store, "statement_timeout") == f"{PG_STATEMENT_TIMEOUT_MS // 1000 // 60}min"
        assert _show(store, "search_path").startswith("gw_"), "the URL's own options are kept"
        with store.database.read("read") as conn:
            assert conn.connection.dbapi_connection.info.get_parameters()["connect_timeout"] == "10"  # type: ignore[union-attr]


def test_a_statement_timeout_in_the_url_wins(pg_admin: Engine) -> None:
    url = pg_admin.url.update_query_dict({"options": "-c statement_timeout=1500"})
    with Store(url.render_as_string(hide_password=False)) as store:
        assert _show(store, "statement_timeout") == "1500ms"
        started = time.monotonic()
        with pytest.raises(Exception, match="statement timeout"), store.database.read("sleep") as conn:
            conn.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 5


def test_the_database_says_what_it_is_waiting_on(db_url: str) -> None:
    with Store(db_url) as store:
        db = store.database
        assert db.stalled() is None
        with db.read("a slow read"):
            time.sleep(0.2)
            what, seconds = db.stalled() or ("", 0.0)
            assert what == "a slow read" and seconds >= 0.2
        assert db.stalled() is None


def test_a_call_hung_in_another_thread_stays_visible_while_this_threads_calls_come_and_go(db_url: str) -> None:
    """The delivery thread's hung call is what the watchdog must see, whatever the main thread does."""
    with Store(db_url) as store:
        db = store.database
        inside, release = threading.Event(), threading.Event()

        def hang() -> None:
            with db.read("the delivery thread's read"):
                inside.set()
                release.wait(10)

        other = threading.Thread(target=hang)
        other.start()
        try:
            assert inside.wait(10)
            since = db.busy_since()
            with db.read("a quick read on this thread"):
                pass  # ends before the other thread's call: it must not clear it
            assert db.busy_since() == since and since is not None
            assert since[0] == "the delivery thread's read"
        finally:
            release.set()
            other.join(10)
        assert db.stalled() is None


def test_a_sqlite_ledger_and_its_journals_are_private(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}") as store:
        store.upgrade()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "var").iterdir()}
    assert modes and all(mode == 0o600 for mode in modes.values()), modes
    legacy = tmp_path / "old.sqlite"
    legacy.touch(mode=0o644)
    os.chmod(legacy, 0o644)
    with Store(f"sqlite:///{legacy}") as store:
        store.upgrade()
    assert stat.S_IMODE(legacy.stat().st_mode) == 0o600, "an existing ledger is made private too"
