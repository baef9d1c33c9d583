"""The staging loader's batches (``deliver_batch``): one transaction, a savepoint per document, and
what happens when one document is refused, a lock is contested or the commit fails; on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.exc import OperationalError
from stagingkit import (  # noqa: F401 - pytest fixtures
    Target,
    golden,
    golden_documents,
    loader_fixture,
    mysql_admin_fixture,
    payload,
    pg_admin_fixture,
    target_fixture,
)

from gateway.components import BuildContext, build_destinations, default_registry
from gateway.delivery.base import Delivered, RetryLater
from gateway.delivery.staging import StagingConfig, StagingDestination, destination
from gateway.delivery.staging.engine import classify
from gateway.delivery.staging.load import Stamp, Tables, load
from gateway.delivery.staging.schema import CHILD_TABLES

# One MariaDB database is shared: its tests run on one xdist worker, never two at once.
pytestmark = pytest.mark.xdist_group("mariadb")

ACK = "medsupply/cases/855-split-backorder.json"
INVOICE = "medsupply/cases/810-invoice.json"


@pytest.fixture(name="conn")
def conn_fixture(target: Target) -> Iterator[Connection]:
    engine = target.engine()
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def counts(conn: Connection, tables: Tables) -> dict[str, int]:
    conn.rollback()  # a fresh snapshot: the loader committed on its own connection
    out = {}
    for table in tables.metadata.sorted_tables:
        if not table.name.endswith("schema_version"):
            out[table.name] = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    return out


def purchase_acks(n: int, tag: str = "po") -> list[dict[str, Any]]:
    """``n`` 855s for distinct POs."""
    out = []
    for i in range(n):
        doc = copy.deepcopy(golden(ACK))
        doc["po_number"] = f"{tag}-{i:04d}"
        out.append(doc)
    return out


def by_key(doc: Any, document: dict[str, Any]) -> Any:
    """The header row of ``document`` by its unique key (MariaDB then locks that row alone, not a range)."""
    partner = document["provenance"]["partner"]
    key = (doc.c.partner_id == partner) & (doc.c.doc_type == document["document_type"])
    return key & (doc.c.doc_key == document["po_number"])


def actions(outcomes: list[Any]) -> list[str]:
    return [o.response["action"] if isinstance(o, Delivered) else type(o).__name__ for o in outcomes]


def held_one_retried(target: Target, outcomes: list[Any]) -> None:
    """The outcomes of a batch of three whose second document another session holds: on SQLite (one
    write lock) all retried; elsewhere the held one retried on a lock and the other two inserted."""
    if target.backend == "sqlite":
        assert all(isinstance(o, RetryLater) for o in outcomes), outcomes
    else:
        assert actions(outcomes) == ["inserted", "RetryLater", "inserted"], outcomes
        assert re.search(r"(?i)lock (wait )?timeout", outcomes[1].reason), outcomes[1].reason  # the driver's words


def test_a_batch_loads_every_document_in_order(loader: StagingDestination, conn: Connection) -> None:
    docs = purchase_acks(5)
    docs.reverse()  # the batch locks in key order; outcomes still come back in the caller's order
    corrected = copy.deepcopy(docs[1])
    corrected["lines"][0]["quantity"]["value"] = "11"
    payloads = [payload(d) for d in docs] + [payload(corrected)]
    outcomes = loader.deliver_batch(payloads)
    assert actions(outcomes) == ["inserted"] * 5 + ["updated"]
    assert [o.response["doc_key"] for o in outcomes] == [d["po_number"] for d in docs] + [docs[1]["po_number"]]
    assert (
        outcomes[5].response["version"] == 2 and outcomes[5].response["header_id"] == outcomes[1].response["header_id"]
    )
    found = counts(conn, loader.tables)
    assert found[loader.tables.document.name] == 5 and found[loader.tables.history.name] == 1


def test_a_refused_document_rolls_back_alone(
    loader: StagingDestination, conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the third document's fourth child table (a NOT NULL column left empty,
    past the loader's own check): its header and earlier children roll back with it, the others commit."""
    docs = purchase_acks(5)
    bad_key = docs[2]["po_number"]
    real_plan = destination.plan

    def plan(doc_type: str, document: dict[str, Any] | None) -> Any:
        rows = real_plan(doc_type, document)
        if rows.key == bad_key:
            rows.children["line_status"][0]["raw_code"] = None
        return rows

    monkeypatch.setattr(destination, "plan", plan)
    monkeypatch.setattr(destination, "problems", lambda *_: None)
    outcomes = loader.deliver_batch([payload(d) for d in docs])
    assert actions(outcomes) == ["inserted", "inserted", "Rejected", "inserted", "inserted"], outcomes
    assert "line_status" in outcomes[2].reason
    conn.rollback()
    keys = conn.execute(select(loader.tables.document.c.doc_key)).scalars().all()
    assert sorted(keys) == sorted(d["po_number"] for i, d in enumerate(docs) if i != 2)
    status = loader.tables.children["line_status"]
    assert conn.execute(select(func.count()).select_from(status)).scalar_one() == 4 * 4
    # Once fixed, the refused document loads alone; the others are unchanged.
    monkeypatch.setattr(destination, "plan", real_plan)
    again = loader.deliver_batch([payload(d) for d in docs])
    assert actions(again) == ["unchanged", "unchanged", "inserted", "unchanged", "unchanged"]


def test_checked_refusals_do_not_touch_the_batch(loader: StagingDestination, conn: Connection) -> None:
    docs = purchase_acks(2)
    outbound = payload(golden(INVOICE), kind="outbound", doc_type="997", document=None, data=b"ISA")
    too_long = copy.deepcopy(golden(INVOICE))
    too_long["invoice_number"] = "N" * 101
    outcomes = loader.deliver_batch([payload(docs[0]), outbound, payload(too_long), payload(docs[1])])
    assert actions(outcomes) == ["inserted", "Rejected", "Rejected", "inserted"]
    assert counts(conn, loader.tables)[loader.tables.document.name] == 2


def test_a_batch_redelivered_changes_nothing(loader: StagingDestination, conn: Connection) -> None:
    docs = [*purchase_acks(3), golden(INVOICE)]
    payloads = [payload(d) for d in docs]
    assert actions(loader.deliver_batch(payloads)) == ["inserted"] * 4
    before = counts(conn, loader.tables)
    again = loader.deliver_batch(payloads)  # the same deliveries again (their answer was lost)
    assert actions(again) == ["unchanged"] * 4
    assert {o.response["note"] for o in again} == {"this delivery was loaded before"}
    resent = []  # the same documents in new envelopes, as new deliveries
    for doc in docs:
        copied = copy.deepcopy(doc)
        copied["provenance"]["interchange_control"] = "000000999"
        resent.append(payload(copied))
    assert actions(loader.deliver_batch(resent)) == ["unchanged"] * 4
    assert counts(conn, loader.tables) == before
    conn.rollback()
    assert set(conn.execute(select(loader.tables.document.c.version)).scalars()) == {1}


def test_a_failed_commit_retries_the_whole_batch(loader: StagingDestination, conn: Connection) -> None:
    def fail(_conn: Any) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(loader.engine, "commit", fail)
    try:
        outcomes = loader.deliver_batch([payload(d) for d in purchase_acks(3)])
    finally:
        event.remove(loader.engine, "commit", fail)
    assert all(isinstance(o, RetryLater) and "disk I/O error" in o.reason for o in outcomes), outcomes
    assert counts(conn, loader.tables)[loader.tables.document.name] == 0


def test_a_locked_document_falls_back_to_one_transaction_each(target: Target, loader: StagingDestination) -> None:
    """Another session holds one header row: on PostgreSQL and MariaDB the batch gives way (that
    document retried, the others loaded one by one); SQLite has one write lock, so everything waits.

    Keys: b, k, p are loaded; k is held; a and n are new. On MariaDB a new key's locking read also
    waits for a held row right after it in the index (InnoDB reads the next record to know the key
    is absent), hence the unheld b and p beside the new keys."""
    acks = {tag: purchase_acks(1, tag=tag)[0] for tag in "abknp"}
    assert actions(loader.deliver_batch([payload(acks[t]) for t in "bkp"])) == ["inserted"] * 3
    changed = copy.deepcopy(acks["k"])
    changed["lines"][0]["quantity"]["value"] = "11"
    quick = StagingDestination("erp", target.config(lock_timeout_seconds=1))
    engine = target.engine()
    try:
        with engine.connect() as holder:
            holder.begin()
            doc = loader.tables.document
            if target.backend == "sqlite":
                holder.exec_driver_sql(f"UPDATE {doc.name} SET version = version")  # takes the write lock
            else:
                holder.execute(select(doc).where(by_key(doc, acks["k"])).with_for_update())
            outcomes = quick.deliver_batch([payload(acks["n"]), payload(changed), payload(acks["a"])])
            holder.rollback()
        held_one_retried(target, outcomes)
        assert actions(quick.deliver_batch([payload(changed)])) == ["updated"]
    finally:
        quick.close()
        engine.dispose()


def test_a_deadlock_abandons_the_batch_not_the_other_documents(target: Target, loader: StagingDestination) -> None:
    """A real deadlock on PostgreSQL: the batch holds A and waits for B, which another session holds
    while it asks for A. The batch (the first to wait, so the one PostgreSQL picks) rolls back: B is
    retried later, A loads in a transaction of its own once the other session is done."""
    if target.backend != "postgresql":
        pytest.skip("PostgreSQL picks the session that waited first as the victim; InnoDB picks the lighter one")
    docs = purchase_acks(2, tag="dl")  # sorted: dl-0000 (A) locks before dl-0001 (B)
    assert actions(loader.deliver_batch([payload(d) for d in docs])) == ["inserted", "inserted"]
    changed = [copy.deepcopy(d) for d in docs]
    for d in changed:
        d["lines"][0]["quantity"]["value"] = "11"
    slow = StagingDestination("erp", target.config(lock_timeout_seconds=20))
    engine = target.engine()
    doc = loader.tables.document
    outcomes: list[Any] = []
    try:
        with engine.connect() as other:
            other.begin()
            other.execute(select(doc).where(by_key(doc, docs[1])).with_for_update())
            worker = threading.Thread(target=lambda: outcomes.extend(slow.deliver_batch([payload(d) for d in changed])))
            worker.start()
            time.sleep(0.5)  # the batch now holds A and waits for B
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))  # so the batch is the one to detect it
            other.execute(select(doc).where(by_key(doc, docs[0])).with_for_update())
            other.rollback()
            worker.join(30)
        assert actions(outcomes) == ["updated", "RetryLater"], outcomes
        assert "deadlock" in outcomes[1].reason
    finally:
        slow.close()
        engine.dispose()


def test_a_conflict_is_told_from_other_transient_errors() -> None:
    class Orig(Exception):
        def __init__(self, *args: Any, sqlstate: str | None = None) -> None:
            super().__init__(*args)
            self.sqlstate = sqlstate

    def verdict(orig: Exception) -> Any:
        return classify(OperationalError("SELECT", {}, orig))

    assert verdict(Orig(1213, "Deadlock found when trying to get lock")).conflict
    assert verdict(Orig(1205, "Lock wait timeout exceeded")).conflict
    assert verdict(Orig("deadlock detected", sqlstate="40P01")).conflict
    assert verdict(Orig("canceling statement due to lock timeout", sqlstate="55P03")).conflict
    gone = verdict(Orig(2006, "MySQL server has gone away"))
    assert gone.action == "retry" and not gone.conflict
    assert not verdict(Orig("database is locked")).conflict  # SQLite: the batch's BEGIN IMMEDIATE waits


def test_a_relative_sqlite_path_is_under_the_deployment_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, elsewhere = tmp_path / "deploy", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    configured = {"erp": {"type": "sql", "url": "sqlite:///var/staging.db", "upgrade": True}}
    built, _ = build_destinations(configured, default_registry(), BuildContext(home=home))
    loader = built["erp"]
    try:
        assert isinstance(loader, StagingDestination)
        assert actions(loader.deliver_batch([payload(golden(INVOICE))])) == ["inserted"]
        assert str(loader.engine.url.database) == str(home / "var" / "staging.db")
    finally:
        for d in built.values():
            d.close()
    assert (home / "var" / "staging.db").is_file()
    assert not (elsewhere / "var").exists()
    absolute = StagingConfig(url=f"sqlite:///{tmp_path / 'abs.db'}").engine_url(home)
    assert absolute.database == str(tmp_path / "abs.db")
    memory = StagingConfig(url="sqlite://").engine_url(home)
    assert not memory.database
    assert StagingConfig(url="postgresql://u@h/db").engine_url(home).database == "db"


def test_a_batch_of_new_documents_is_written_at_once_as_one_by_one_would(target: Target) -> None:
    """The usual batch (every document new, each once) is written in one INSERT per table, not five or
    six statements per document, and the rows are those of loading each document alone, ids included."""
    seen: set[tuple[str, str, str]] = set()
    payloads = []
    for partner, doc in golden_documents():
        key = (partner, doc["document_type"], destination.plan(doc["document_type"], doc).key)
        if key not in seen:
            seen.add(key)
            payloads.append(payload(doc, partner=partner))
    payloads.sort(key=lambda p: (p.partner_id, p.doc_type, destination.plan(p.doc_type, p.document).key))
    assert len(payloads) >= 8
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    batched = StagingDestination("erp", target.config(), clock=lambda: at)
    alone = StagingDestination("erp", target.config(table_prefix=target.prefix + "b_"), clock=lambda: at)
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    try:
        batched.deliver_batch(payloads[:1])  # the tables made and checked before counting
        event.listen(batched.engine, "before_cursor_execute", count)
        outcomes = batched.deliver_batch(payloads[1:])
        event.remove(batched.engine, "before_cursor_execute", count)
        assert actions(outcomes) == ["inserted"] * (len(payloads) - 1), outcomes
        assert len(inserts) <= 1 + len(CHILD_TABLES), [i[:40] for i in inserts]  # a header INSERT, one per child table
        one_by_one = [alone.deliver(p) for p in payloads]
        assert [o.response["header_id"] for o in one_by_one[1:]] == [o.response["header_id"] for o in outcomes]
        assert [o.response["rows"] for o in one_by_one[1:]] == [
            {k.replace(target.prefix, target.prefix + "b_", 1): v for k, v in o.response["rows"].items()}
            for o in outcomes
        ]
        engine = target.engine()
        try:
            with engine.connect() as conn:
                for table in batched.tables.metadata.sorted_tables:
                    if table.name.endswith("schema_version"):  # when each migration ran
                        continue
                    twin = alone.tables.metadata.tables[table.name.replace(target.prefix, target.prefix + "b_", 1)]
                    rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                    assert rows == conn.execute(select(twin).order_by(*twin.primary_key.columns)).all(), table.name
        finally:
            engine.dispose()
    finally:
        batched.close()
        alone.close()


def test_a_new_key_held_by_another_session_falls_back_to_one_transaction_each(
    target: Target, loader: StagingDestination, caplog: pytest.LogCaptureFixture
) -> None:
    """Another session has inserted one of the batch's new keys and not committed: on PostgreSQL and
    MariaDB the batch's one INSERT waits for it until the lock timeout, then every document is loaded
    on its own (the held one retried later); SQLite has one write lock, so everything waits.

    Keys: c, j, p are loaded; a, h, n are new, h the one held. On MariaDB a new key's locking read waits
    for a held row right after it in the index, hence the loaded c, j, p after each new key."""
    acks = {tag: purchase_acks(1, tag=tag)[0] for tag in "acjhnp"}
    quick = StagingDestination("erp", target.config(lock_timeout_seconds=1))
    engine = target.engine()
    try:
        assert actions(loader.deliver_batch([payload(acks[t]) for t in "cjp"])) == ["inserted"] * 3
        held = payload(acks["h"])
        with engine.connect() as holder:
            holder.begin()
            rows = destination.plan(held.doc_type, held.document)
            stamp = Stamp(held.partner_id or "", "idem-holder", "corr-holder", "{}", datetime(2026, 12, 7))
            load(holder, loader.tables, rows, stamp)  # inserted, not committed: its key's index entry is held
            outcomes = quick.deliver_batch([payload(acks["n"]), held, payload(acks["a"])])
            holder.rollback()
        held_one_retried(target, outcomes)
        if target.backend != "sqlite":  # the lock was met by the batch's one INSERT, not a savepoint's read
            assert "rolled back in its one INSERT" in caplog.text, caplog.text
        assert actions(quick.deliver_batch([held])) == ["inserted"]
    finally:
        quick.close()
        engine.dispose()


def test_a_batch_looks_its_keys_up_on_sqlite_not_scans_for_them(tmp_path: Path) -> None:
    """The reads of a batch of new documents search the header table's unique index key by key: a
    row-value IN over its three columns made SQLite scan the whole index (tens of ms a read once
    the table holds 200,000 headers), inside the ledger-wide write lock."""
    config = StagingConfig(url=f"sqlite:///{tmp_path / 'erp.sqlite'}", table_prefix="stg_", upgrade=True)
    loader = StagingDestination("erp", config)
    reads: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "doc_key IN" in statement:
            reads.append((statement, parameters))

    try:
        event.listen(loader.engine, "before_cursor_execute", keep)
        assert actions(loader.deliver_batch([payload(d) for d in purchase_acks(3)])) == ["inserted"] * 3
        event.remove(loader.engine, "before_cursor_execute", keep)
        assert len(reads) == 2, reads  # none loaded yet; then the new ids
        with loader.engine.connect() as conn:
            for statement, parameters in reads:
                plan = " ".join(
                    str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                )
                assert "SEARCH stg_document USING" in plan and "SCAN" not in plan, plan
    finally:
        loader.close()
