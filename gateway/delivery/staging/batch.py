"""A batch of documents in one transaction, each document in a savepoint of its own.

Why: a commit is a disk sync (of SQLite's WAL, of PostgreSQL's WAL, of InnoDB's redo log), and one
commit per document held the loader to 43-126 new documents/s. One transaction per batch costs one
sync for all its documents (``docs/performance.md``, "ERP staging loader").

The rules (``docs/erp-staging.md`` states them for ERP teams):

- every document keeps its all-or-nothing: :func:`~.load.load` writes its header, children and
  history inside a ``SAVEPOINT``. A row the database refuses rolls back to it: that document is
  Rejected (a concurrent insert of the same new key: RetryLater) and the batch goes on without it;
- header rows are locked ``FOR UPDATE`` in ``(partner_id, doc_type, doc_key)`` order (a stable sort,
  so two deliveries of one key in a batch still load in delivery order): two batches sharing
  documents take their row locks in the same order and do not deadlock on them. On SQLite the whole
  batch is one ``BEGIN IMMEDIATE``;
- a lock conflict (deadlock, lock wait timeout, serialization failure): the batch is rolled back,
  the document that met it is RetryLater, and every other document is loaded again in a transaction
  of its own. Not "roll back to the savepoint and go on": InnoDB (MariaDB/MySQL) rolls back the
  whole transaction for a deadlock, savepoints included, and on PostgreSQL the batch would keep
  holding the locks that made the other session wait. Not "RetryLater for all": the others were
  not in conflict, and would wait a whole retry delay for nothing;
- any other transient failure (the database went away, a statement timed out, the tables are
  missing), at any statement or at the commit: nothing of the batch is committed, every document
  is RetryLater (the next attempt would meet the same);
- a refusal that escapes the savepoints (at the commit: no constraint is deferred today, so this
  is a safeguard): each document is loaded again on its own, so only the guilty one is Rejected.

The usual batch is documents seen for the first time, each once. It is written first in one
multi-row INSERT per table (:func:`~.load.load_new`, in one savepoint): a statement per document
and a savepoint each cost the loader more CPU than the database's work (``docs/performance.md``).
When one of its documents is loaded already, or a key repeats, or the database refuses any row
(rolled back), the batch is loaded as above, a savepoint per document, which finds the guilty one;
a lock conflict there abandons the batch as above, every document then loaded on its own (the one
another session holds waits for the lock a second time before it is retried later: which one met
the lock is not known).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.delivery.base import Delivered, Outcome, Rejected, RetryLater
from gateway.delivery.staging.engine import Verdict, classify
from gateway.delivery.staging.load import Loaded, RowRefused, Stamp, Tables, load, load_new
from gateway.delivery.staging.rows import Rows

__all__ = ["Work", "delivered", "load_batch", "refused"]

log = logging.getLogger("gateway.delivery.staging")


@dataclass(frozen=True, slots=True)
class Work:
    """One checked document of a batch: its position in the batch, its rows and its stamp."""

    index: int
    rows: Rows
    stamp: Stamp

    @property
    def lock_order(self) -> tuple[str, str, str]:
        """The header row's key, the order in which a batch locks its rows."""
        return (self.stamp.partner_id, self.rows.doc_type, self.rows.key)


class _Conflict(Exception):
    """A lock conflict in one document (``item``; None: in the batch written at once): the batch is
    abandoned (see the module docstring)."""

    def __init__(self, item: Work | None, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.item, self.verdict = item, verdict


def delivered(key: str, loaded: Loaded) -> Delivered:
    """The Delivered outcome of a load, with what it did for the ledger."""
    response: dict[str, Any] = {
        "action": loaded.action,
        "version": loaded.version,
        "header_id": loaded.header_id,
        "doc_key": key,
        "rows": loaded.rows,
    }
    if loaded.note:
        response["note"] = loaded.note
    return Delivered(response)


def refused(rows: Rows, exc: RowRefused) -> Outcome:
    """The outcome of a row the database refused: a race is retried, anything else rejected."""
    if exc.race:
        return RetryLater(f"another delivery of {rows.doc_type} {rows.key} was loading at the same time")
    return Rejected(f"the staging database refused the row: {exc}")


def load_batch(
    engine: Engine, tables: Tables, work: Sequence[Work], one: Callable[[tuple[Rows, Stamp]], Outcome]
) -> dict[int, Outcome]:
    """Load ``work`` in one transaction by the rules above; ``one`` loads a document in a transaction of
    its own (the fallback). Returns an outcome per ``Work.index``; raises only for a bug."""
    ordered = sorted(work, key=lambda item: item.lock_order)
    try:
        with engine.begin() as conn:
            fresh = _all_new(conn, tables, ordered)
            if fresh is not None:
                return fresh
            return {item.index: _in_savepoint(conn, tables, item) for item in ordered}
    except _Conflict as stop:
        if stop.item is None:  # which document met the lock is not known: each waits for its own
            where, then = "in its one INSERT", "loading each document on its own"
        else:
            where, then = f"at {stop.item.rows.doc_type} {stop.item.rows.key}", "loading the others one by one"
        log.warning("staging batch of %d rolled back %s (%s): %s", len(ordered), where, stop.verdict.reason, then)
        out: dict[int, Outcome] = {} if stop.item is None else {stop.item.index: RetryLater(stop.verdict.reason)}
        out.update({item.index: one((item.rows, item.stamp)) for item in ordered if item is not stop.item})
        return out
    except SQLAlchemyError as exc:
        verdict = classify(exc)
        if verdict.action == "bug":
            raise
        if verdict.action == "reject":
            log.warning("staging batch of %d refused at commit (%s): loading one by one", len(ordered), verdict.reason)
            return {item.index: one((item.rows, item.stamp)) for item in ordered}
        return {item.index: RetryLater(verdict.reason) for item in ordered}


def _all_new(conn: Connection, tables: Tables, ordered: list[Work]) -> dict[int, Outcome] | None:
    """The batch written at once when every document is new and its key distinct; None when it is not
    (nothing written), or the database refused a row (rolled back to the savepoint)."""
    if len(ordered) < 2:
        return None
    if len({item.lock_order for item in ordered}) < len(ordered):  # a document twice: versions in order
        return None
    savepoint = conn.begin_nested()
    try:
        loaded = load_new(conn, tables, [(item.rows, item.stamp) for item in ordered])
    except RowRefused as exc:
        savepoint.rollback()  # a concurrent insert of one key, or a row refused: the savepoints find which
        log.debug("staging batch of %d refused in its one INSERT (%s): loading each in a savepoint", len(ordered), exc)
        return None
    except SQLAlchemyError as exc:
        verdict = classify(exc)
        if verdict.action == "retry" and verdict.conflict:
            raise _Conflict(None, verdict) from exc
        raise
    if loaded is None:
        savepoint.rollback()
        return None
    savepoint.commit()
    return {item.index: delivered(item.rows.key, done) for item, done in zip(ordered, loaded, strict=True)}


def _in_savepoint(conn: Connection, tables: Tables, item: Work) -> Outcome:
    """One document inside ``conn``'s transaction, rolled back to its savepoint if the database refuses it."""
    savepoint = conn.begin_nested()
    try:
        loaded = load(conn, tables, item.rows, item.stamp)
    except RowRefused as exc:
        savepoint.rollback()
        return refused(item.rows, exc)
    except SQLAlchemyError as exc:
        verdict = classify(exc)
        if verdict.action == "reject":
            savepoint.rollback()
            return Rejected(f"the staging database refused the document: {verdict.reason}")
        if verdict.action == "retry" and verdict.conflict:
            raise _Conflict(item, verdict) from exc
        raise  # down, timed out, tables missing, or a bug: the whole batch rolls back
    savepoint.commit()
    return delivered(item.rows.key, loaded)
