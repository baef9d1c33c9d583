"""Opening the database: URL checks, SQLite settings, transactions and error translation.

SQLite is made safe for several processes sharing one file: WAL (readers
never block the writer), a busy timeout (a writer waits for the lock instead
of failing), foreign keys on, and ``BEGIN IMMEDIATE`` for write transactions
so a transaction takes the write lock before its first read; two processes
then serialize instead of one failing with ``database is locked`` when it
tries to upgrade a read lock. Read transactions use a plain ``BEGIN``.
Before ``BEGIN IMMEDIATE`` the gateway's writers of one file queue on a lock
file of their own (:class:`WriterTurns`): woken at once, not at the busy
handler's next sleep.

PostgreSQL is reached through psycopg 3 (``postgresql://`` URLs are switched
to ``postgresql+psycopg://``). Writes run at READ COMMITTED; the statements
that need more (leases, sequences, dedupe keys) lock rows themselves or are
single upserts. Reads run at REPEATABLE READ, so a file's tree is read from
one snapshot.

A database that stops answering must not hang the gateway. PostgreSQL
connections get a connect timeout, TCP keep-alives, a TCP user timeout and a
server-side ``statement_timeout`` (defaults below; a libpq parameter given in
the URL query wins). None of these fires when the path to the server stalls
(a proxy that stops forwarding keeps the TCP connection alive), so the
database also says what it is doing (:meth:`Database.stalled`) and can cut
its connections (:meth:`Database.abort`): the runtime's watchdog logs a
stalled store and aborts a call that outlives its timeout, which then fails
as :class:`StoreUnavailableError` like any lost connection. A SQLite file is
created readable by its owner only (0600; SQLite gives its journals the same
mode).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import socket
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gateway.store.errors import SchemaError, StoreError, StoreUnavailableError, StoreValueError

__all__ = ["BUSY_TIMEOUT_SECONDS", "Database", "normalize_url"]

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for another process's write lock before giving up."""
TURN_SECONDS = 10.0
"""How long a SQLite writer waits for its turn among the gateway's writers (:class:`WriterTurns`) before
going on to SQLite's own wait for the lock."""

PG_CONNECT_ARGS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""libpq parameters every PostgreSQL connection gets unless its URL sets them."""
PG_STATEMENT_TIMEOUT_MS = 60_000
"""The server cancels a statement that runs longer (``options=-c statement_timeout=...`` in the URL wins)."""

_READ_ONLY = "gateway_read_only"
# SQLSTATEs worth retrying: serialization failure, deadlock, lock not available, connection problems.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57P01", "57P03"}
_MISSING_SQLSTATES = {"42P01", "42703"}  # undefined table, undefined column


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; refuse backends other than SQLite and PostgreSQL; use psycopg 3 for PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreValueError(f"not a database URL: {url!r} ({exc})") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise StoreValueError(
        f"unsupported database {backend!r} in {parsed.render_as_string(hide_password=True)}: "
        "use sqlite:///path/to/gateway.sqlite or postgresql+psycopg://user@host/db"
    )


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        _wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while another connection holds the new file's lock: SQLite
    answers "database is locked" at once there, without its busy handler (two workers starting on one new
    ledger at the same moment; the first one's switch to WAL lasts a moment)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    delay = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _sqlite_begin(connection: Connection) -> None:
    read_only = connection.get_execution_options().get(_READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _private_file(database: str) -> Callable[[Any, Any], None]:
    """A ``connect`` listener making the SQLite file readable by this user only (0600), before the WAL
    pragma creates its journals (SQLite gives them the database file's mode)."""
    path = Path(database)

    def chmod(_dbapi_connection: Any, _record: Any) -> None:
        with contextlib.suppress(OSError):  # not ours, or read-only: SQLite reports what matters
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                os.chmod(path, 0o600)

    return chmod


def _pg_connect_args(url: URL) -> dict[str, Any]:
    given = set(url.query)
    args = {k: v for k, v in PG_CONNECT_ARGS.items() if k not in given}
    options = url.query.get("options", "")
    options = options if isinstance(options, str) else " ".join(options)
    if "statement_timeout" not in options:  # kept beside the URL's own options (a search_path...)
        args["options"] = f"{options} -c statement_timeout={PG_STATEMENT_TIMEOUT_MS}".strip()
    return args


def _sqlite_file(url: URL) -> str | None:
    """The SQLite database file ``url`` names (None for another database, in memory or a ``file:`` URI)."""
    database = url.database if url.get_backend_name() == "sqlite" else None
    return database if database and database != ":memory:" and not database.startswith("file:") else None


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        on_disk = _sqlite_file(url)
        if on_disk is not None:
            Path(on_disk).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        if on_disk is not None:
            event.listen(engine, "connect", _private_file(on_disk))
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args=_pg_connect_args(url))


def translate(exc: SQLAlchemyError, what: str) -> StoreError:
    """The store error for a SQLAlchemy/driver error raised while doing ``what``."""
    orig = getattr(exc, "orig", None)
    if isinstance(orig, StoreError):  # raised by a type's bind processor, wrapped by SQLAlchemy
        return orig
    text = str(orig if orig is not None else exc).strip().splitlines()[0]
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _MISSING_SQLSTATES or "no such table" in text or "no such column" in text:
        return SchemaError(f"{what}: {text}; is the database migrated? run `gateway db upgrade`")
    if (
        isinstance(exc, PoolTimeoutError | OperationalError)
        or sqlstate in _TRANSIENT_SQLSTATES
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    ):
        return StoreUnavailableError(f"{what}: {text}")
    return StoreError(f"{what}: {text}")


_VALUES = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


@functools.lru_cache(maxsize=4096)
def write_kind(what: str) -> str:
    """``what`` a write transaction does, without its counts and quoted values: ``record the results of 32
    file(s)`` → ``record the results of N file(s)``, ``claim dedupe key 'a1b2'`` → ``claim dedupe key '…'``:
    one name per kind, a bounded set (:meth:`Database.write_totals`, a metric's label)."""
    return _VALUES.sub(lambda m: "N" if m.group().isdigit() else m.group()[0] + "…" + m.group()[0], what)


class WriterTurns:
    """Writers of one SQLite file queue on a lock file of their own before ``BEGIN IMMEDIATE``.

    SQLite's busy handler polls a held write lock with sleeps of 1, 2, 5, 10, 15, 20 and 25 ms: a writer
    whose turn came after 3 ms sleeps until 8. With the service and its delivery processes writing one
    ledger, the service's results transaction waited 2.0-2.8 s for the lock per 3,000 files so (1.0 s
    with turns). Here the threads of a process wait on a thread lock (woken at once) and the processes on
    an ``flock`` of ``<database>-writers`` tried every 0.1-2 ms. SQLite's lock still protects the data:
    a writer that did not get its turn within :data:`TURN_SECONDS` (another writer hung in its
    transaction), or any other program writing to the file, goes on to ``BEGIN IMMEDIATE`` and SQLite's
    own wait. A folder where the lock file cannot be made means SQLite's wait alone.
    """

    def __init__(self, database: str) -> None:
        self.path = os.path.abspath(database) + "-writers"
        self._thread = threading.RLock()
        self._depth = 0  # nested write blocks of the thread holding the turn
        self._fd: int | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the turn for the block (nested blocks on one thread share the outer turn)."""
        deadline = time.monotonic() + TURN_SECONDS
        if not self._thread.acquire(timeout=TURN_SECONDS):
            yield
            return
        try:
            self._depth += 1
            if self._depth == 1:
                self._lock_file(deadline)
            yield
        finally:
            self._depth -= 1
            # By depth, not by what _lock_file returned: an exception from a signal handler can come between
            # the flock and that return. Unlocking a lock not had does nothing.
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._thread.release()

    def _lock_file(self, deadline: float) -> bool:
        """Whether the file was locked by ``deadline`` (if not, SQLite's own wait follows)."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                return False
            weakref.finalize(self, os.close, self._fd)
        delay = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() + delay > deadline:
                    return False
            time.sleep(delay)
            delay = min(delay * 1.5, 0.002)


class Database:
    """An engine plus the two kinds of transaction the store uses."""

    def __init__(self, url: str | URL) -> None:
        self.url = normalize_url(url)
        self.engine = _make_engine(self.url)
        self._busy: dict[int, tuple[str, float]] = {}  # thread → what its transaction does, since when
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()  # DBAPI connections, to cut on abort
        self._lock = threading.Lock()
        self._shared = threading.local()  # the read transaction a snapshot() block lends to this thread's reads
        self._writes: dict[str, list[Any]] = {}  # write_kind → [count, seconds waiting, seconds held]
        on_disk = _sqlite_file(self.url)
        self._turns = WriterTurns(on_disk) if on_disk is not None else None
        if self.dialect == "postgresql":
            event.listen(self.engine, "connect", self._remember)

    def _remember(self, dbapi_connection: Any, _record: Any) -> None:
        with self._lock:
            self._connections.add(dbapi_connection)

    def stalled(self) -> tuple[str, float] | None:
        """``(what, seconds)`` for the oldest transaction in progress on any thread (None when the database
        is idle): a call hung in the delivery thread is seen while the main thread's calls come and go."""
        busy = self.busy_since()
        return None if busy is None else (busy[0], time.monotonic() - busy[1])

    def busy_since(self) -> tuple[str, float] | None:
        """``(what, monotonic start)`` of the oldest transaction in progress: the same stall keeps its start."""
        busy = tuple(self._busy.values())  # a copy: other threads add and remove their own entries
        return min(busy, key=lambda b: b[1]) if busy else None

    def abort(self) -> int:
        """Cut every PostgreSQL connection's socket (called from another thread when a call has hung past its
        timeout): the waiting call fails with a lost connection, the pool reconnects. Returns how many."""
        if self.dialect != "postgresql":
            return 0  # SQLite waits on a file lock with its busy timeout, never on a network
        with self._lock:
            conns = list(self._connections)
        cut = 0
        for conn in conns:
            fd = getattr(getattr(conn, "pgconn", None), "socket", -1)
            if not isinstance(fd, int) or fd < 0:
                continue
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(fd))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    cut += 1
                finally:
                    sock.close()
        return cut

    @contextmanager
    def _tracking(self, what: str) -> Iterator[None]:
        me = threading.get_ident()
        outer = me in self._busy  # a nested transaction on this thread: the outer one is what is timed
        if not outer:
            self._busy[me] = (what, time.monotonic())
        try:
            yield
        finally:
            if not outer:
                self._busy.pop(me, None)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self, what: str) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite); committed when the block ends cleanly.

        Counted in :meth:`write_totals`: how long it waited to begin (on SQLite, for the write lock) and
        how long it then held the transaction open, commit included."""
        turn = self._turns.turn() if self._turns is not None else contextlib.nullcontext()
        asked = time.monotonic()
        began: float | None = None
        try:
            with self._tracking(what), turn, self.engine.begin() as conn:
                began = time.monotonic()
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc, what) from exc
        finally:
            self._count_write(what, asked, began)

    def _count_write(self, what: str, asked: float, began: float | None) -> None:
        ended = time.monotonic()
        waited, held = (ended - asked, 0.0) if began is None else (began - asked, ended - began)
        kind = write_kind(what)
        with self._lock:
            totals = self._writes.get(kind)
            if totals is None:
                self._writes[kind] = [1, waited, held]
            else:
                totals[0] += 1
                totals[1] += waited
                totals[2] += held

    def write_totals(self) -> dict[str, tuple[int, float, float]]:
        """Write transactions of this process so far, by kind (:func:`write_kind`): ``(how many, seconds
        waiting to begin, seconds held)``. On SQLite the held time is the ledger's one write lock: near the
        run's length, the writers of every process sharing it take turns for it."""
        with self._lock:
            return {kind: (int(n), waited, held) for kind, (n, waited, held) in self._writes.items()}

    def write_summary(self) -> str | None:
        """One line of :meth:`write_totals` for the log (None before any write)."""
        totals = self.write_totals()
        if not totals:
            return None
        count = sum(t[0] for t in totals.values())
        waited = sum(t[1] for t in totals.values())
        held = sum(t[2] for t in totals.values())
        top = sorted(totals.items(), key=lambda kv: -kv[1][2])[:3]
        most = "; ".join(f"{kind} {t[2]:.2f} s in {t[0]}" for kind, t in top)
        return (
            f"ledger writes: {count} transaction(s), {waited:.2f} s waiting to begin, {held:.2f} s held; "
            f"held longest: {most}"
        )

    @contextmanager
    def read(self, what: str) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot (REPEATABLE READ on PostgreSQL), no write lock.

        Inside :meth:`snapshot` on the same thread, the snapshot's transaction (no new one).
        """
        shared: Connection | None = getattr(self._shared, "conn", None)
        if shared is not None:
            try:
                yield shared
            except SQLAlchemyError as exc:
                raise translate(exc, what) from exc
            return
        try:
            with self._tracking(what), self.engine.connect() as conn:
                if self.dialect == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                else:
                    conn.execution_options(**{_READ_ONLY: True})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise translate(exc, what) from exc

    @contextmanager
    def snapshot(self, what: str) -> Iterator[None]:
        """Every read this thread makes in the block shares one read transaction: one consistent view and
        one connection checkout, not one per call (a dashboard page makes a dozen; on a busy machine each
        checkout, BEGIN and COMMIT is a round trip that waits for the CPU). Nested snapshots join the outer
        one; writes are not affected."""
        if getattr(self._shared, "conn", None) is not None:
            yield
            return
        with self.read(what) as conn:
            self._shared.conn = conn
            try:
                yield
            finally:
                self._shared.conn = None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
