"""The ``sql`` destination: canonical documents into the ERP's staging tables, and reconciliation's
exception alerts and billing events into theirs (:mod:`.alerts`).

``deliver`` loads one document in a transaction of its own; ``deliver_batch`` (which the delivery
loop prefers) loads a batch in one transaction, each document in a savepoint (:mod:`.batch`).

Outcomes (:mod:`gateway.delivery.base`):

- :class:`Delivered` with ``{"action": inserted|updated|unchanged, "version", "header_id",
  "doc_key", "rows": {table: rows written}}``; the loader is exactly-once by its upsert, so the
  loop may retry freely;
- :class:`RetryLater`: the database is unreachable, a lock was not granted in time (lock timeout,
  deadlock), a statement timed out, two deliveries of one new document raced, or the staging
  tables are missing (an operator migrates; nothing is lost meanwhile);
- :class:`Rejected`: not a canonical document these tables hold (an unknown ``doc_type``, outbound
  bytes, invalid JSON), a value no column can hold exactly, or a row the database refuses; the
  reason names the table and the column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.delivery.base import Delivered, Outcome, Payload, Rejected, RetryLater
from gateway.delivery.staging import migrate
from gateway.delivery.staging.alerts import ALERT_TYPES, NotAnAlert, load_alert, plan_alert
from gateway.delivery.staging.batch import Work, delivered, load_batch, refused
from gateway.delivery.staging.config import StagingConfig, sqlite_file
from gateway.delivery.staging.engine import classify, make_engine
from gateway.delivery.staging.load import RowRefused, Stamp, Tables, header_values, load, problems
from gateway.delivery.staging.rows import NotLoadable, Rows, plan
from gateway.errors import ConfigError

__all__ = ["StagingDestination"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _is_alert(payload: Payload) -> bool:
    """Whether ``payload`` is one of reconciliation's outputs (an outbound JSON body, not a document)."""
    return payload.kind == "outbound" and payload.doc_type in ALERT_TYPES


class StagingDestination:
    """Loads canonical documents into staging tables (see the module docstring for the outcomes)."""

    def __init__(
        self,
        name: str,
        config: StagingConfig,
        clock: Callable[[], datetime] | None = None,
        home: Path | None = None,
    ) -> None:
        """Phase two: connect and migrate (``upgrade: true``) or check the revision. A relative
        SQLite path is taken from ``home`` (the deployment folder).

        An unreachable database does not stop the gateway: the check runs again at the next
        delivery, which is retried meanwhile. Tables at another revision are a ConfigError.
        """
        self.name = name
        self.config = config
        self.tables = Tables(config.table_prefix)
        self._clock = clock or _utc_now
        url = config.engine_url(home)
        on_disk = sqlite_file(url)
        if config.upgrade and on_disk is not None:
            on_disk.parent.mkdir(parents=True, exist_ok=True)  # as the ledger does: upgrade creates the file
        self.engine: Engine = make_engine(config, url)
        self._ready = False
        self._prepare()

    def _prepare(self) -> str | None:
        """Make sure the tables are at HEAD; None when they are, else why not (a transient reason)."""
        if self._ready:
            return None
        prefix = self.config.table_prefix
        try:
            with self.engine.begin() as conn:
                if self.config.upgrade:
                    if migrate.current_revision(conn, prefix) != migrate.HEAD:
                        migrate.upgrade(conn, prefix)
                else:
                    found = migrate.current_revision(conn, prefix)
                    if found != migrate.HEAD:
                        raise ConfigError(
                            f"destination {self.name!r}: the staging tables ({prefix}*) are at revision "
                            f"{found or '(none)'}, the code needs {migrate.HEAD}: set upgrade: true, or have "
                            "the DBA run the staging migrations (docs/erp-staging.md)",
                            code="STG-001",
                        )
        except SQLAlchemyError as exc:
            verdict = classify(exc)
            if verdict.action != "retry":
                raise
            return verdict.reason
        self._ready = True
        return None

    def deliver(self, payload: Payload) -> Outcome:
        """Load one canonical document (or reconciliation alert) in a transaction of its own and say what
        happened."""
        if _is_alert(payload):
            return self._load_alert(payload)
        checked = self._check(payload)
        if isinstance(checked, Rejected):
            return checked
        waiting = self._prepare()
        if waiting is not None:
            return RetryLater(waiting)
        return self._load_one(checked)

    def deliver_batch(self, payloads: Sequence[Payload]) -> list[Outcome]:
        """Load ``payloads`` in one transaction, each document in a savepoint of its own; one outcome
        per payload, in order (:mod:`.batch` states the rules)."""
        outcomes: list[Outcome | None] = [None] * len(payloads)
        work: list[Work] = []
        for index, payload in enumerate(payloads):
            if _is_alert(payload):  # few and small: each in a transaction of its own
                outcomes[index] = self._load_alert(payload)
                continue
            checked = self._check(payload)
            if isinstance(checked, Rejected):
                outcomes[index] = checked
            else:
                work.append(Work(index, *checked))
        if work:
            waiting = self._prepare()
            if waiting is not None:
                for item in work:
                    outcomes[item.index] = RetryLater(waiting)
            else:
                for index, outcome in load_batch(self.engine, self.tables, work, self._load_one).items():
                    outcomes[index] = outcome
        missing = [n for n, o in enumerate(outcomes) if o is None]
        if missing:
            raise RuntimeError(f"the staging batch left payloads {missing} without an outcome")
        return [o for o in outcomes if o is not None]

    def _check(self, payload: Payload) -> Rejected | tuple[Rows, Stamp]:
        """The rows and stamp of ``payload``, or why no staging table can hold it (before any I/O)."""
        if payload.kind != "document":
            return Rejected(f"the sql loader takes canonical documents, not {payload.kind} {payload.doc_type} bytes")
        if not payload.partner_id:
            return Rejected("a document without a partner: the staging key is per partner")
        try:
            rows = plan(payload.doc_type, payload.document)
        except NotLoadable as exc:
            return Rejected(str(exc))
        stamp = Stamp(
            partner_id=payload.partner_id,
            idempotency_key=payload.idempotency_key,
            correlation_id=payload.correlation_id,
            document_text=payload.document_bytes().decode("utf-8"),
            now=self._clock().astimezone(UTC).replace(tzinfo=None),
            ledger_document_id=payload.document_id,
            ledger_delivery_id=payload.delivery_id,
            ledger_file_id=payload.file_id,
        )
        why = problems(self.tables, rows, header_values(rows, stamp))
        if why is not None:
            return Rejected(why)
        return rows, stamp

    def _load_one(self, checked: tuple[Rows, Stamp]) -> Outcome:
        """One document in one transaction (one commit)."""
        rows, stamp = checked
        try:
            with self.engine.begin() as conn:
                loaded = load(conn, self.tables, rows, stamp)
        except RowRefused as exc:
            return refused(rows, exc)
        except SQLAlchemyError as exc:
            verdict = classify(exc)
            if verdict.action == "bug":
                raise
            if verdict.action == "reject":
                return Rejected(f"the staging database refused the document: {verdict.reason}")
            return RetryLater(verdict.reason)
        return delivered(rows.key, loaded)

    def _load_alert(self, payload: Payload) -> Outcome:
        """An exception alert or billing event into its table (:mod:`.alerts`), in a transaction of its own."""
        try:
            row = plan_alert(payload.doc_type, payload.data or b"", self.tables)
        except NotAnAlert as exc:
            return Rejected(str(exc))
        waiting = self._prepare()
        if waiting is not None:
            return RetryLater(waiting)
        now = self._clock().astimezone(UTC).replace(tzinfo=None)
        try:
            with self.engine.begin() as conn:
                done = load_alert(conn, self.tables, row, payload.idempotency_key, payload.delivery_id, now)
        except SQLAlchemyError as exc:
            verdict = classify(exc)
            if verdict.action == "bug":
                raise
            if verdict.action == "reject":
                return Rejected(f"the staging database refused the {payload.doc_type}: {verdict.reason}")
            return RetryLater(verdict.reason)
        return Delivered(done)

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()
