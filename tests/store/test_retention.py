"""Retention in the store, on SQLite and PostgreSQL: the holds the CLI tests cannot reach with real
files today (an unacknowledged interchange), and a purge racing a reprocess of the same bytes: the
purge waits for the reprocess's transaction (SQLite's write lock; PostgreSQL's per-blob advisory
lock), then sees its new file and keeps the blob it will read."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from storekit import FakeClock, archive_fixture, clock_fixture, db_url_fixture, pg_admin_fixture, store_fixture  # noqa: F401

from gateway.store import Archive, Store
from gateway.store.bulk import blob_lock
from gateway.store.retention import PurgeReport
from gateway.store.schema import files


def _purge(store: Store, archive: Archive, *, dry_run: bool = False) -> PurgeReport:
    return store.purge(
        archive, older_than=timedelta(0), label="0d", keep=lambda _p: timedelta(0), actor="test",
        reason="retention", dry_run=dry_run,
    )  # fmt: skip


def test_an_interchange_waiting_for_its_ack_holds_its_file(store: Store, archive: Archive, clock: FakeClock) -> None:
    sha = archive.put(b"ISA*received~")
    held = store.record_file(sha, 13, "in.edi", "inbox:acme/in.edi", "acme", "x12", status="duplicate")
    free = store.record_file(archive.put(b"ISA*other~"), 10, "b.edi", "inbox:acme/b.edi", "acme", "x12",
                             status="duplicate")  # fmt: skip
    sent = store.add_outbound("acme", "850", archive.put(b"ISA*sent~"), file_id=held.id, expected_ack="pending")
    clock.advance(60)
    report = _purge(store, archive)
    assert report.refused == {"unacknowledged": [held.id]}
    assert [p.file_id for p in report.purged] == [free.id]
    assert archive.exists(sha) and store.list_outbound()[0].id == sent.id
    assert _purge(store, archive, dry_run=True).purged == [], "a purged file is purged once"


def test_a_purge_waits_for_a_reprocess_of_its_bytes_and_keeps_them(
    store: Store, archive: Archive, clock: FakeClock, db_url: str
) -> None:
    sha = archive.put(b"ISA*old bytes~")
    old = store.record_file(sha, 14, "old.edi", "inbox:acme/old.edi", "acme", "x12", status="duplicate")
    clock.advance(60)
    reports: list[PurgeReport] = []

    def purge() -> None:
        reports.append(
            store.purge(
                archive,
                older_than=timedelta(0),
                label="0d",
                keep=lambda _p: timedelta(0),
                actor="test",
                reason="retention",
            )
        )

    with Store(db_url, clock=clock) as other, other.database.write("a reprocess, mid-way") as conn:
        blob_lock(conn, sha)
        worker = threading.Thread(target=purge)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), "the purge did not wait for the reprocess's transaction"
        conn.execute(
            files.insert().values(
                sha256=sha,
                size=14,
                name="old.edi",
                origin="reprocess of file 1",
                partner_id="acme",
                format="x12",
                status="received",
                correlation_id="c0ffee00-0000-4000-8000-000000000001",
                parent_id=old.id,
                received_at=clock(),
                updated_at=clock(),
                attempts=0,
            )
        )
    worker.join(timeout=30)
    (report,) = reports
    assert [p.file_id for p in report.purged] == [old.id]
    assert not report.purged[0].blob_removed and archive.exists(sha), "the purge deleted bytes a reprocess reads"
