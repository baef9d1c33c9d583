"""Regressions for the review of the batched runtime (each reproduced by a scratch script, fixed since).

One bad file must not sink its batch (a value the database refuses, a name too long to claim); an
acknowledgment recorded under the old marker is sent again, not renumbered; ``max_attempts`` counts
deaths, not claims; two PostgreSQL batches acknowledging two partners in opposite orders both commit;
an I/O error around the results commit gives the files back for a retry instead of failing them.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Home,
    case,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    sha256,
    store_url_fixture,
    workspace_fixture,
    x12,
)

from gateway.runtime.process import Processor
from gateway.runtime.service import Service
from gateway.store import Archive, FileRow, Store
from gateway.store.results import FilePlan, InterchangePlan, OutboundPlan
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace
from gateway.x12.validate.report import InterchangeReport

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"  # ISA13 000000413, invoice INV-0042377


def taken(home: Home, service: Service, *drops: tuple[str, bytes, str | None]) -> dict[str, int]:
    """Drop files (name, bytes, inbox subfolder) and take them into the ledger; returns name → file id."""
    for name, data, folder in drops:
        home.drop(name, data, folder)
        time.sleep(0.01)  # distinct mtimes: taken, and claimed, in drop order
    service.inbox.scan()
    assert service.take_ready() == len(drops)
    return {f.name: f.id for f in service.store.list_files(limit=100)}


def statuses(service: Service) -> dict[str, str]:
    return {f.name: f.status for f in service.store.list_files(limit=100)}


@pytest.fixture(name="service")
def service_fixture(store_url: str, tmp_path: Path, workspace: Workspace) -> Iterator[tuple[Home, Service]]:
    """A deployment whose batches hold every file dropped in a test (32)."""
    home = make_home(tmp_path / "home", store_url, stable_seconds=0, batch=32)
    service = home.service(workspace, worker="w1")
    yield home, service
    service.store.close()


# --- one file the database refuses --------------------------------------------------------------


def coastal_invoice(number: str) -> bytes:
    """coastal's CSV invoice CMS-26-10071 under another invoice number."""
    header, *lines = case("coastal", "inv_20260315.csv").decode("utf-8").splitlines()
    rows = [line.replace("CMS-26-10071", number) for line in lines if line.startswith("CMS-26-10071;")]
    return "\n".join([header, *rows, ""]).encode()


def test_an_invoice_whose_dedupe_key_is_too_long_fails_alone(service: tuple[Home, Service]) -> None:
    """Its business key (over 256 characters) is refused by the store: that file fails with the reason, its
    batch-mates are processed (they used to be released with it, at every poll, forever)."""
    home, svc = service
    ids = taken(
        home,
        svc,
        ("inv_good0.csv", coastal_invoice("GOOD-0"), "coastal"),
        ("inv_poison.csv", coastal_invoice("X" * 600), "coastal"),
        ("inv_good1.csv", coastal_invoice("GOOD-1"), "coastal"),
    )
    assert svc.process_claimed() == 2
    poison = svc.store.get_file(ids["inv_poison.csv"])
    assert (poison.status, poison.lease_owner) == ("failed", None)
    # The same reason on both databases (SQLite alone would store it; PostgreSQL would refuse it unnamed).
    assert "documents.business_key holds at most 256 characters" in (poison.reason or ""), poison.reason
    assert statuses(svc) == {"inv_good0.csv": "processed", "inv_poison.csv": "failed", "inv_good1.csv": "processed"}
    assert sorted(doc["invoice_number"] for doc in home.canonical().values()) == ["GOOD-0", "GOOD-1"]
    assert svc.process_claimed() == 0, "the failed file is not handed out again"
    assert svc.store.get_file(poison.id).status == "failed"


def test_postgresql_an_interchange_whose_sender_does_not_fit_its_column_fails_alone(
    pg_url: str, tmp_path: Path, workspace: Workspace
) -> None:
    """An unknown sender's over-long ISA06 (read leniently) exceeds interchanges.sender_id: the DataError
    used to abort the batch's transaction, releasing every file of it at every poll. (The store now checks
    lengths itself, the same on both databases; this keeps the PostgreSQL case that found it.)"""
    home = make_home(tmp_path, pg_url, stable_seconds=0, batch=32)
    svc = home.service(workspace, worker="w1")
    long_sender = b"*ZZ*" + b"UNKNOWNSENDER" * 4 + b"*"
    bad = case("medsupply", "810-invoice.edi").replace(b"*ZZ*MEDSUPPLY      *", long_sender, 1)
    assert bad != case("medsupply", "810-invoice.edi")
    ids = taken(
        home,
        svc,
        ("ok0.edi", x12(TEMPLATE, 7300, tag="v0"), "medsupply"),
        ("bad.edi", bad, None),
        ("ok1.edi", x12(TEMPLATE, 7301, tag="v1"), "medsupply"),
    )
    assert svc.process_claimed() == 2
    row = svc.store.get_file(ids["bad.edi"])
    assert (row.status, row.lease_owner) == ("failed", None)
    assert "interchanges.sender_id holds at most 35 characters" in (row.reason or ""), row.reason
    assert statuses(svc) == {"ok0.edi": "processed", "bad.edi": "failed", "ok1.edi": "processed"}
    assert len(home.canonical()) == 2 and len(home.acks()) == 2
    assert svc.process_claimed() == 0
    svc.store.close()


# --- one file intake cannot claim ---------------------------------------------------------------


def test_a_file_whose_name_is_too_long_to_claim_is_quarantined_once_and_its_batch_is_taken(
    service: tuple[Home, Service], caplog: pytest.LogCaptureFixture
) -> None:
    """A 250-character name: the claim name (``.taking.<worker>.<name>``) would be too long to rename to
    (ENAMETOOLONG). That file is quarantined under a shorter name, once (it used to wait in the inbox,
    retried and logged at every scan); the others are recorded and processed."""
    home, svc = service
    long_name = "a" * 246 + ".edi"
    upload = home.path / "upload.tmp"  # an uploader's temp name beside it would be too long too
    upload.write_bytes(case("medsupply", "810-invoice.edi"))
    upload.replace(home.inbox / "medsupply" / long_name)
    for n in range(3):
        home.drop(f"ok{n}.edi", x12(TEMPLATE, 7000 + n, tag=f"t{n}"), "medsupply")
    svc.inbox.scan()
    assert svc.take_ready() == 4
    recorded = statuses(svc)
    (short,) = [n for n in recorded if n.startswith("a")]
    assert recorded[short] == "quarantined" and len(short.encode()) < len(long_name)
    assert home.inbox_leftovers() == [], "no claim left behind, nothing left to retry"
    svc.inbox.scan()
    assert svc.take_ready() == 0
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    assert svc.process_claimed() == 3
    assert {n: s for n, s in statuses(svc).items() if n != short} == dict.fromkeys(
        ["ok0.edi", "ok1.edi", "ok2.edi"], "processed"
    )


# --- an acknowledgment recorded under the old marker --------------------------------------------


def test_an_ack_recorded_under_the_old_marker_is_sent_again_not_renumbered(
    service: tuple[Home, Service], tmp_path: Path, workspace: Workspace
) -> None:
    """A file interrupted before the marker gained ``(interchange N)``: its 997 was recorded as
    ``ack for ISA13 000000413``. The rerun after the upgrade sends that one again (same number, same
    bytes) instead of drawing a second 997 for the same interchange."""
    home, svc = service
    # The 997 the old worker built: the same file processed on a fresh deployment (ack number 1).
    before = make_home(tmp_path / "before", f"sqlite:///{tmp_path / 'before.sqlite'}", stable_seconds=0)
    scratch = before.service(workspace)
    before.drop("810-invoice.edi", case("medsupply", "810-invoice.edi"), "medsupply")
    scratch.run_once()
    scratch.store.close()
    ((name, old_ack),) = [(p.name, p.read_bytes()) for p in (before.outbox / "medsupply").glob("*.x12")]
    assert name == "997-000000001.x12"

    ids = taken(home, svc, ("810-invoice.edi", case("medsupply", "810-invoice.edi"), "medsupply"))
    (row,) = svc.store.claim_files("old-worker", 1, 0.2)  # attempt 1, then the old worker died
    assert svc.store.next_value("medsupply", "ack") == 1
    sha = Archive(home.archive).put(old_ack)
    recorded = svc.store.add_outbound(
        "medsupply", "997", sha, control_number="000000001", file_id=row.id, reason="ack for ISA13 000000413"
    )
    time.sleep(0.3)  # its lease expires

    assert svc.process_claimed() == 1
    file = svc.store.get_file(ids["810-invoice.edi"])
    assert (file.status, file.attempts) == ("processed", 2)
    assert svc.store.list_outbound(file_id=file.id) == [recorded], "a second 997 was drawn for the interchange"
    written = sorted(p.name for p in (home.outbox / "medsupply").glob("*.x12"))
    assert written == ["997-000000001.x12"]
    assert (home.outbox / "medsupply" / "997-000000001.x12").read_bytes() == old_ack
    assert list(home.canonical()) == [f"medsupply/invoice-{file.id}-1.json"]


# --- max_attempts counts deaths -----------------------------------------------------------------


def killed(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt("the worker is killed here")


class DiesInTranslation:
    """A translator whose worker is killed (no handler runs) while translating."""

    def __init__(self, inner: Translator) -> None:
        self.partners = inner.partners

    def translate(self, data: bytes, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        raise KeyboardInterrupt("killed while translating")


@pytest.mark.parametrize("dies", ["before the results commit", "after the results commit"])
def test_releases_and_a_death_do_not_quarantine_a_file(
    dies: str, store_url: str, tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Released four times (a worker stopping, the store down), then its worker is killed once: five claims
    but one death, under ``max_attempts: 3``. It is retried (it used to be quarantined), and when the death
    came after the results commit, finished from the ledger: its recorded 997 written, no new one drawn."""
    home = make_home(tmp_path, store_url, stable_seconds=0, extra={"processing": {"max_attempts": 3}})
    svc = home.service(workspace, worker="w1")
    (file_id,) = taken(home, svc, ("810-invoice.edi", x12(TEMPLATE, 7500), "medsupply")).values()
    for n in range(4):
        (row,) = svc.store.claim_files(f"w{n}", 1, 30, max_attempts=3)
        svc.store.release(row.id, f"w{n}", "worker stopping")
    (row,) = svc.store.claim_files("dying", 1, 0.2, max_attempts=3)
    assert row.attempts == 5
    dying = Processor(
        svc.store,
        svc.archive,
        svc.processor.translator,
        outbox=home.outbox,
        worker="dying",
        clock=svc.clock,
        deliverer=svc.deliverer.for_worker("dying"),
    )
    if dies == "before the results commit":
        dying.translator = DiesInTranslation(dying.translator)  # type: ignore[assignment]
    else:
        monkeypatch.setattr(dying, "_publish", killed)
    with pytest.raises(KeyboardInterrupt):
        dying.process(row)
    recorded = svc.store.list_outbound(file_id=file_id)
    assert len(recorded) == (1 if dies == "after the results commit" else 0)
    assert home.acks() == {} and home.canonical() == {}
    time.sleep(0.3)  # the dead worker's lease expires

    done = svc.process_claimed()
    file = svc.store.get_file(file_id)
    assert (done, file.status, file.attempts) == (1, "processed", 6), file.reason
    (ack,) = svc.store.list_outbound(file_id=file_id)
    if recorded:
        assert [ack] == recorded, "the rerun drew a new 997 instead of writing the recorded one"
    assert list(home.acks()) == [f"medsupply/997-{ack.control_number}.x12"]
    assert list(home.canonical()) == [f"medsupply/invoice-{file_id}-1.json"]
    actions = [e.action for e in svc.store.events_for("file", file_id)]
    assert actions.count("reclaim") == 1 and actions[-1] == "status", actions
    svc.store.close()


# --- PostgreSQL: two batches, two partners, opposite orders --------------------------------------


def test_postgresql_batches_acking_two_partners_in_opposite_orders_both_commit(pg_url: str) -> None:
    """Worker A acknowledges P1 then P2, worker B P2 then P1, each pausing after its first draw until the
    other has drawn too: on the partners' sequence rows that was a deadlock (40P01, one batch aborted)."""
    store_a, store_b = Store(pg_url), Store(pg_url)
    try:
        store_a.upgrade()
        partners = ["P1", "P2", "P1", "P2"]
        for n, partner in enumerate(partners, 1):
            store_a.record_file(sha256(f"file {n}".encode()), 1, f"f{n}.edi", f"test:{n}", partner, "x12")
        for partner in ("P1", "P2"):
            assert store_a.next_value(partner, "ack") == 1  # the sequence rows exist, as after a first ack
        a_rows = store_a.claim_files("wA", 2, 60)
        b_rows = store_b.claim_files("wB", 2, 60)
        assert sorted(r.partner_id or "" for r in a_rows) == sorted(r.partner_id or "" for r in b_rows) == ["P1", "P2"]
        # Long enough for both to draw their first number when they can (old code: they then deadlock);
        # short, since with the fix the second batch waits for the first, which waits here in vain.
        barrier = threading.Barrier(2, timeout=1.5)

        def plans(rows: list[FileRow], order: list[str]) -> list[FilePlan]:
            drawn_first = threading.Event()
            out = []
            for row in sorted(rows, key=lambda r: order.index(r.partner_id or "")):

                def ack(draw: Callable[[], int], duplicate: bool, row: FileRow = row) -> OutboundPlan:
                    assert row.partner_id is not None
                    number = draw()
                    if not drawn_first.is_set():
                        drawn_first.set()
                        # Broken: the other batch is waiting for this one's locks (the fix), so go on.
                        with contextlib.suppress(threading.BrokenBarrierError):
                            barrier.wait()
                    return OutboundPlan(row.partner_id, "997", "a" * 64, f"{number:09d}", "ack for the test")

                ic = InterchangePlan("ZZ", "S", "ZZ", "R", f"{row.id:09d}", "00401", "accepted", ack=ack)
                out.append(FilePlan(row.id, row.partner_id, interchanges=[ic]))
            return out

        errors: dict[str, BaseException] = {}

        def run(name: str, store: Store, worker: str, batch: list[FilePlan]) -> None:
            try:
                store.record_batch(worker, batch)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors[name] = exc

        threads = [
            threading.Thread(target=run, args=("A", store_a, "wA", plans(a_rows, ["P1", "P2"]))),
            threading.Thread(target=run, args=("B", store_b, "wB", plans(b_rows, ["P2", "P1"]))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(t.is_alive() for t in threads), "a batch is still waiting"
        assert errors == {}, {name: f"{type(e).__name__}: {e}" for name, e in errors.items()}
        numbers = sorted((o.partner_id, o.control_number) for o in store_a.list_outbound())
        assert numbers == [("P1", "000000002"), ("P1", "000000003"), ("P2", "000000002"), ("P2", "000000003")]
    finally:
        store_a.close()
        store_b.close()


# --- I/O errors around the results commit -------------------------------------------------------


def fail_flush(error: int, message: str) -> Callable[[], list[Path]]:
    """A SyncGroup flush that fails as the disk would (EIO, ENOSPC)."""

    def flush() -> list[Path]:
        raise OSError(error, message)

    return flush


def test_an_io_error_making_the_ack_blobs_durable_releases_the_batch(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO from the sync that makes the batch's ack blobs durable, just before the results commit: nothing
    is committed and the files are released for a retry (they used to be failed as an internal error)."""
    home, svc = service
    ids = taken(home, svc, *[(f"ok{n}.edi", x12(TEMPLATE, 7100 + n, tag=f"t{n}"), "medsupply") for n in range(3)])
    with monkeypatch.context() as patch:
        patch.setattr(svc.processor._blobs, "flush", fail_flush(errno.EIO, "syncfs: Input/output error"))
        assert svc.process_claimed() == 0
    for file_id in ids.values():
        row = svc.store.get_file(file_id)
        assert (row.status, row.lease_owner, row.results_at) == ("received", None, None)
        assert "OSError" in (row.reason or "") and "Input/output error" in (row.reason or ""), row.reason
    assert svc.store.list_outbound() == [] and home.acks() == {} and home.canonical() == {}

    assert svc.process_claimed() == 3
    assert set(statuses(svc).values()) == {"processed"}
    assert sorted(home.acks()) == [f"medsupply/997-00000000{n}.x12" for n in (1, 2, 3)], "numbers rolled back"
    assert len(home.canonical()) == 3


def test_an_io_error_delivering_the_outputs_leaves_them_pending_and_the_files_processed(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC writing the outputs, after the results commit: the files are finished all the same (their
    results are recorded), the deliveries wait for a retry with the error kept, and once the disk has
    room they are delivered with the acks recorded first, drawing no new number."""
    import gateway.delivery.files
    from gateway.store.durable import SyncGroup

    class FullDisk(SyncGroup):
        def flush(self) -> list[Path]:
            raise OSError(errno.ENOSPC, "No space left on device")

    home, svc = service
    ids = taken(home, svc, *[(f"ok{n}.edi", x12(TEMPLATE, 7200 + n, tag=f"u{n}"), "medsupply") for n in range(3)])
    with monkeypatch.context() as patch:
        patch.setattr(gateway.delivery.files, "SyncGroup", FullDisk)
        assert svc.process_claimed() == 3
    assert set(statuses(svc).values()) == {"processed"}
    pending = svc.store.list_deliveries(status="pending")
    assert len(pending) == 6 and all("No space left on device" in (d.last_error or "") for d in pending)
    recorded = svc.store.list_outbound()
    assert len(recorded) == 3 and home.acks() == {} and home.canonical() == {}
    assert svc.store.make_due("test") == 6
    assert svc.deliver_due().delivered == 6
    assert svc.store.list_outbound() == recorded, "new acks were drawn"
    assert sorted(home.acks()) == sorted(f"medsupply/997-{o.control_number}.x12" for o in recorded)
    assert sorted(home.canonical()) == sorted(f"medsupply/invoice-{i}-1.json" for i in ids.values())
