"""Connecting to the ERP's database and reading its errors: the loader's I/O edge.

Every backend gets the same promises: a connection attempt gives up after
``connect_timeout_seconds``, a statement after ``statement_timeout_seconds``, a wait for a locked
row after ``lock_timeout_seconds`` (each fails as a transient error, retried by the delivery
policy), and writes run at READ COMMITTED with the header row locked ``FOR UPDATE``. SQLite has
no row locks: a write transaction starts with ``BEGIN IMMEDIATE`` and so takes the file's write
lock first, waiting up to the lock timeout; the file is switched to WAL (readers never block it).
MariaDB/MySQL sessions run in strict mode, so a value the column cannot hold is an error, never a
silent truncation.

:func:`classify` turns a SQLAlchemy error into what the delivery policy must do with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gateway.delivery.staging.config import StagingConfig

__all__ = ["Verdict", "classify", "first_line", "make_engine"]

_STRICT_MODE = "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
# Errors meaning the staging tables are not there (or older than the code): the operator migrates,
# and the delivery is retried meanwhile rather than dead-lettered.
_MISSING = re.compile(r"no such (table|column)|doesn't exist|does not exist|Unknown column", re.I)
_MISSING_SQLSTATES = {"42P01", "42703"}
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "57P01", "57P03", "08000", "08003", "08006"}
_MYSQL_TRANSIENT = {1205, 1213, 2002, 2003, 2006, 2013, 1040, 1053}  # lock wait, deadlock, gone away...
# Lock conflicts with another session (deadlock, lock or serialization timeout): the database is up
# and other documents may well load; a batch falls back to one transaction per document.
_CONFLICT_SQLSTATES = {"40001", "40P01", "55P03"}
# The server answered but refused the connection: no such database, or the credentials. Retried (a DBA may
# create it meanwhile), but said as it is, not as a database that did not answer.
_REFUSED_SQLSTATES = {"3D000", "28000", "28P01"}
_MYSQL_REFUSED = {1049, 1044, 1045}  # unknown database, access denied to it, access denied for the user
_REFUSED = re.compile(  # psycopg's connection errors carry no SQLSTATE: their text says it
    r'(database|role) "[^"]*" does not exist|password authentication failed|no pg_hba\.conf entry|no password supplied',
    re.IGNORECASE,
)
_MYSQL_CONFLICT = {1205, 1213}


def _sqlite(engine: Engine, config: StagingConfig) -> None:
    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={config.lock_timeout_seconds * 1000}")
            # WAL: the ERP's import job reads while the loader writes, and a commit costs one fsync, not three
            # (48 -> 126 documents/s measured here); FULL keeps a committed document through a power cut.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", begin)


def _mysql(engine: Engine, config: StagingConfig) -> None:
    def connect(dbapi_connection: Any, _record: Any) -> None:
        mariadb = "mariadb" in dbapi_connection.get_server_info().lower()
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET SESSION sql_mode = '{_STRICT_MODE}'")
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {config.lock_timeout_seconds}")
            if mariadb:
                cursor.execute(f"SET SESSION max_statement_time = {config.statement_timeout_seconds}")
            else:  # MySQL bounds SELECTs only; the read timeout below bounds the rest
                cursor.execute(f"SET SESSION max_execution_time = {config.statement_timeout_seconds * 1000}")
        finally:
            cursor.close()

    event.listen(engine, "connect", connect)


def make_engine(config: StagingConfig, url: URL) -> Engine:
    """An engine on the ERP's database with the timeouts, isolation and modes described above."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": config.lock_timeout_seconds})
        _sqlite(engine, config)
        return engine
    pool: dict[str, Any] = {
        "pool_size": config.pool_size,
        "max_overflow": config.max_overflow,
        "pool_timeout": config.pool_timeout_seconds,
        "pool_pre_ping": True,
        "pool_recycle": 3600,  # MariaDB closes idle connections after wait_timeout (8 h by default)
        "isolation_level": "READ COMMITTED",
    }
    if backend == "postgresql":
        options = f"-c statement_timeout={config.statement_timeout_seconds * 1000}"
        options += f" -c lock_timeout={config.lock_timeout_seconds * 1000}"
        given = url.query.get("options")
        if given:
            options = f"{given if isinstance(given, str) else ' '.join(given)} {options}"
        args = {
            "connect_timeout": config.connect_timeout_seconds,
            "options": options,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        return create_engine(url.difference_update_query(["options"]), connect_args=args, **pool)
    # A stalled network never answers: the socket read gives up a little after the statement would.
    args = {
        "connect_timeout": config.connect_timeout_seconds,
        "read_timeout": config.statement_timeout_seconds + config.lock_timeout_seconds + 5,
        "write_timeout": config.statement_timeout_seconds + 5,
    }
    engine = create_engine(url, connect_args=args, **pool)
    _mysql(engine, config)
    return engine


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a database error means for the delivery: ``retry``, ``reject`` or ``bug`` (re-raised).

    ``conflict``: a retry because another session held a lock (deadlock, lock wait timeout,
    serialization failure), as opposed to a database that is down, slow or missing its tables.
    """

    action: Literal["retry", "reject", "bug"]
    reason: str
    missing_schema: bool = False
    conflict: bool = False


def first_line(exc: BaseException) -> str:
    """The driver's message, first line only (SQLAlchemy appends the statement and parameters)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _code(exc: DBAPIError) -> tuple[str | None, int | None]:
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    args = getattr(orig, "args", ())
    errno = args[0] if args and isinstance(args[0], int) else None
    return sqlstate, errno


def classify(exc: SQLAlchemyError) -> Verdict:
    """How the delivery policy must treat ``exc``, raised while loading one document."""
    text = first_line(exc)
    if isinstance(exc, PoolTimeoutError | DisconnectionError):
        return Verdict("retry", f"the staging database is busy or unreachable: {text}")
    if not isinstance(exc, DBAPIError):
        return Verdict("bug", text)
    sqlstate, errno = _code(exc)
    if isinstance(exc, IntegrityError | DataError):
        return Verdict("reject", text)
    if sqlstate in _REFUSED_SQLSTATES or errno in _MYSQL_REFUSED or _REFUSED.search(text):
        return Verdict("retry", f"the staging database refused the connection (check its url and credentials): {text}")
    if sqlstate in _MISSING_SQLSTATES or errno in (1146, 1054) or _MISSING.search(text):
        return Verdict("retry", f"the staging tables are missing or behind the code ({text})", missing_schema=True)
    if (
        exc.connection_invalidated
        or isinstance(exc, OperationalError | InterfaceError)
        or sqlstate in _TRANSIENT_SQLSTATES
        or errno in _MYSQL_TRANSIENT
    ):
        conflict = sqlstate in _CONFLICT_SQLSTATES or errno in _MYSQL_CONFLICT
        reason = f"the staging database did not answer or a lock was not granted: {text}"
        return Verdict("retry", reason, conflict=conflict)
    return Verdict("bug", text)
