"""The gateway's ledger: :class:`Store`, one object over SQLite or PostgreSQL.

Operations are grouped by concern in mixins: :mod:`~gateway.store.files`
(recording, leasing, finishing files), :mod:`~gateway.store.lineage`
(adding interchanges, groups, sets, documents; statuses), :mod:`~gateway.store.tree` (a file's
tree and events; resets),
:mod:`~gateway.store.keys` (sequences, dedupe keys),
:mod:`~gateway.store.outbound`, :mod:`~gateway.store.queries`, :mod:`~gateway.store.acks` and
:mod:`~gateway.store.ackviews`. Every
public method is one transaction, and every status change in it appends
an event in that same transaction.
"""

from __future__ import annotations

from types import TracebackType

from gateway.store import migrate
from gateway.store.acks import AckOps
from gateway.store.ackviews import AckQueryOps
from gateway.store.base import Clock
from gateway.store.bulk import BulkOps
from gateway.store.docsearch import DocumentSearchOps
from gateway.store.errors import SchemaError
from gateway.store.keys import KeyOps  # noqa: F401 - part of ResultOps
from gateway.store.outbound import OutboundOps
from gateway.store.overview import OverviewOps
from gateway.store.queries import QueryOps
from gateway.store.recon import ReconOps
from gateway.store.results import ResultOps
from gateway.store.retention import RetentionOps
from gateway.store.search import SearchOps
from gateway.store.tree import TreeOps

__all__ = ["DEFAULT_URL", "Store"]

DEFAULT_URL = "sqlite:///var/gateway.db"
"""Where the ledger lives when no URL is given: a SQLite file under ``var/`` in the working directory
(the same default as the runtime's settings)."""


class Store(
    ResultOps,
    TreeOps,
    OutboundOps,
    QueryOps,
    AckOps,
    AckQueryOps,
    SearchOps,
    DocumentSearchOps,
    OverviewOps,
    ReconOps,
    BulkOps,
    RetentionOps,
):
    """The ledger at ``url``: ``sqlite:///path/to/file.sqlite`` or ``postgresql+psycopg://user@host/db``.

    ``clock`` returns the current aware datetime (default: the wall clock in
    UTC); leases, windows and timestamps all read it, so tests can move time.
    The schema is created or brought up to date by :meth:`upgrade`
    (``gateway db upgrade``). Use it as a context manager, or call
    :meth:`close`, to release pooled connections.
    """

    def __init__(self, url: str = DEFAULT_URL, *, clock: Clock | None = None) -> None:
        super().__init__(url, clock=clock)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def upgrade(self, revision: str = "head", *, from_scratch: bool = True) -> str | None:
        """Apply the packaged migrations up to ``revision``, in one transaction; returns the revision reached.
        An empty database asked for the head is built at the head in one step (``from_scratch``, see
        :func:`~gateway.store.migrate.create_head`); ``from_scratch=False`` replays every migration."""
        to_head = revision in ("head", migrate.HEAD)
        with self._db.write("upgrade the schema") as conn:
            if to_head and migrate.current_revision(conn) == migrate.HEAD:
                return migrate.HEAD  # already there: Alembic is not even imported
            migrate.lock(conn)  # then look again: another process may have built it meanwhile
            if from_scratch and to_head and migrate.is_empty(conn):
                migrate.create_head(conn)
            else:
                migrate.upgrade(conn, revision)
            return migrate.current_revision(conn)

    def revision(self) -> str | None:
        """The migration revision of the database (None when it was never migrated)."""
        with self._db.read("read the schema revision") as conn:
            return migrate.current_revision(conn)

    def check_schema(self) -> None:
        """Raise :class:`SchemaError` unless the database is at the newest migration this code ships."""
        current, head = self.revision(), migrate.head_revision()
        if current != head:
            raise SchemaError(
                f"database {self.url} is at revision {current or '(none)'}, the code needs {head}: "
                "run `gateway db upgrade`"
            )
