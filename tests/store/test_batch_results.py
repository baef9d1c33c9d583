"""Batched writes: the group sync, staged archive blobs, batch intake, lease renewal, batch results, finishing.

SyncGroup and Archive.stage need no database; the store tests run on SQLite
and on PostgreSQL (see ``storekit``).
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from storekit import (  # noqa: F401 (pytest fixtures)
    FakeClock,
    archive_fixture,
    clock_fixture,
    db_url_fixture,
    pg_admin_fixture,
    record,
    sha,
    store_fixture,
)

from gateway.store import (
    Archive,
    InvalidDigestError,
    Store,
    StoreError,
    StoreValueError,
    TransitionError,
)
from gateway.store import durable as durable_module
from gateway.store.durable import SyncGroup, sweep, syncfs_available
from gateway.store.files import Intake, NextBatch
from gateway.store.results import (
    DocPlan,
    FileFinal,
    FilePlan,
    GroupPlan,
    InterchangePlan,
    OutboundPlan,
    SetPlan,
)

MODES = ["group", "each"]


def _files(folder: Path) -> list[str]:
    """Names of the files directly in ``folder`` (hidden ones included), or [] when it does not exist."""
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


@pytest.fixture(name="mode", params=MODES)
def mode_fixture(request: pytest.FixtureRequest) -> str:
    if request.param == "group" and not syncfs_available():
        pytest.skip("syncfs(2) is not available here: group mode falls back to each")
    return str(request.param)


# --- SyncGroup -------------------------------------------------------------------------------


def test_sync_group_publishes_every_staged_file_with_its_bytes_at_flush_only(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[Path]] = {"syncfs": [], "fsync": []}
    real_syncfs, real_fsync = durable_module._syncfs, durable_module.fsync_path

    def spy_syncfs(folder: Path) -> None:
        calls["syncfs"].append(folder)
        real_syncfs(folder)

    def spy_fsync(path: Path) -> None:
        calls["fsync"].append(path)
        real_fsync(path)

    monkeypatch.setattr(durable_module, "_syncfs", spy_syncfs)
    monkeypatch.setattr(durable_module, "fsync_path", spy_fsync)
    tmp = tmp_path / "tmp"
    staged = {
        tmp_path / "out" / "a.x12": b"ISA*first~",
        tmp_path / "out" / "b.json": b'{"n": 2}',
        tmp_path / "new" / "deeper" / "c.bin": bytes(range(256)) * 40,  # folder created at flush
        tmp_path / "out" / "empty": b"",
    }
    group = SyncGroup(mode)
    assert group.mode == mode
    for target, data in staged.items():
        group.write(target, data, tmp)

    assert len(group) == len(staged)
    assert [t for t in staged if t.exists()] == [], "nothing is visible at a target before the flush"
    temporaries = _files(tmp)
    assert len(temporaries) == len(staged)
    assert all(n.startswith(".") and n.endswith(".tmp") for n in temporaries)
    assert calls == {"syncfs": [], "fsync": []}, "writing stages only; the sync is the flush's"

    assert group.flush() == list(staged)
    assert {t: t.read_bytes() for t in staged} == staged
    assert _files(tmp) == [] and len(group) == 0
    if mode == "group":
        assert calls["syncfs"] and not calls["fsync"], calls
    else:
        assert not calls["syncfs"], calls
        fsynced = set(calls["fsync"])
        assert {t.parent for t in staged} <= fsynced, "every target folder is fsynced after the renames"
        assert len([p for p in fsynced if p.parent == tmp]) == len(staged), "every temporary file is fsynced"
    assert group.flush() == [], "a flushed group holds nothing more"


def test_sync_group_writes_every_byte_when_the_os_takes_fewer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``os.write`` may take fewer bytes than given (a signal, a full pipe, some filesystems): the rest is
    written, not lost."""
    real_write = os.write
    monkeypatch.setattr(durable_module.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    data = bytes(range(256)) * 3
    group = SyncGroup("each")
    group.write(tmp_path / "out" / "a.bin", data, tmp_path / "tmp")
    monkeypatch.undo()
    assert group.flush() == [tmp_path / "out" / "a.bin"]
    assert (tmp_path / "out" / "a.bin").read_bytes() == data


def test_sync_group_refuses_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="group, each"):
        SyncGroup("fast")


def test_discard_removes_the_temporaries_and_publishes_nothing(mode: str, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    group = SyncGroup(mode)
    group.write(tmp_path / "out" / "a", b"a", tmp)
    group.write(tmp_path / "out" / "b", b"b", tmp, read_only=True)
    assert len(_files(tmp)) == 2
    group.discard()
    assert _files(tmp) == [] and len(group) == 0
    assert group.flush() == []
    assert not (tmp_path / "out" / "a").exists() and not (tmp_path / "out" / "b").exists()


def test_reserved_temporaries_are_filled_by_later_writes_and_the_unused_removed_by_discard(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ack blobs of a batch are written inside the ledger transaction: their files are made before it."""
    tmp = tmp_path / "tmp"
    group = SyncGroup(mode)
    group.reserve(tmp, 3, read_only=True)
    made = _files(tmp)
    assert len(made) == 3 and all(stat.S_IMODE((tmp / n).stat().st_mode) == 0o400 for n in made)
    assert len(group) == 0, "nothing is staged by reserving"

    def no_new_file(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a reserved write created a file")

    monkeypatch.setattr(durable_module.tempfile, "mkstemp", no_new_file)
    targets = {tmp_path / "out" / "a": b"first", tmp_path / "out" / "b": b"second"}
    for target, data in targets.items():
        group.write(target, data, tmp, read_only=True)
    monkeypatch.undo()
    assert group.flush() == list(targets)
    assert {t: t.read_bytes() for t in targets} == targets
    assert all(stat.S_IMODE(t.stat().st_mode) == 0o400 for t in targets)
    assert len(_files(tmp)) == 1, "the unused reservation waits for discard"
    group.write(tmp_path / "out" / "c", b"writable", tmp)  # another mode: not from the read-only reservation
    assert len(_files(tmp)) == 2
    group.discard()
    assert _files(tmp) == [] and len(group) == 0


def test_a_reservation_for_more_blobs_than_open_files_allowed_still_stages_them(tmp_path: Path) -> None:
    """A results transaction reserves one file an interchange of its batch (``processing.batch`` is up to
    1,000 files): the files held open are capped, not one descriptor each, or the batch fails (EMFILE)."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    tmp = tmp_path / "tmp"
    group = SyncGroup()
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 200, hard))
    try:
        group.reserve(tmp, 1000, read_only=True)
        targets = {tmp_path / "out" / f"{n}": f"blob {n}".encode() for n in range(300)}
        for target, data in targets.items():
            group.write(target, data, tmp, read_only=True)
        group.flush()
    finally:
        group.discard()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert {t: t.read_bytes() for t in targets} == targets
    assert _files(tmp) == []


def test_a_flush_into_a_folder_that_cannot_be_created_raises_and_leaves_no_temporaries(
    mode: str, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"a file where a folder would have to be")
    group = SyncGroup(mode)
    good = tmp_path / "out" / "good.x12"
    group.write(good, b"good", tmp)
    group.write(blocker / "sub" / "bad.x12", b"bad", tmp)
    with pytest.raises(OSError):
        group.flush()
    assert _files(tmp) == [], "the temporaries of a failed flush are removed"
    assert not good.exists(), "no target is published when the flush fails before the renames"
    assert len(group) == 0
    assert blocker.read_bytes() == b"a file where a folder would have to be"


def test_read_only_staged_files_are_published_with_mode_0400(mode: str, tmp_path: Path) -> None:
    group = SyncGroup(mode)
    locked, open_ = tmp_path / "out" / "locked", tmp_path / "out" / "open"
    group.write(locked, b"blob", tmp_path / "tmp", read_only=True)
    group.write(open_, b"json", tmp_path / "tmp")
    group.flush()
    assert stat.S_IMODE(locked.stat().st_mode) == 0o400
    assert stat.S_IMODE(open_.stat().st_mode) & stat.S_IWUSR, "only read_only files are made read-only"


def test_sweep_removes_only_old_hidden_temporaries(tmp_path: Path) -> None:
    now = time.time()
    names = {
        ".old.tmp": now - 7200,
        ".just-old-enough.tmp": now - 3600,
        ".fresh.tmp": now - 60,
        "old-not-hidden.tmp": now - 7200,
        ".old-not-tmp.json": now - 7200,
    }
    for name, mtime in names.items():
        path = tmp_path / name
        path.write_bytes(b"x")
        os.utime(path, (mtime, mtime))
    assert sweep(tmp_path, 3600, now) == 2
    assert _files(tmp_path) == [".fresh.tmp", ".old-not-tmp.json", "old-not-hidden.tmp"]
    assert sweep(tmp_path / "missing", 3600, now) == 0


# --- Archive.stage ---------------------------------------------------------------------------


def test_a_staged_blob_is_in_the_archive_only_after_the_flush(archive: Archive) -> None:
    data = b"ISA*00*staged interchange~"
    group = SyncGroup()
    sha_ = archive.stage(data, group)
    assert not archive.exists(sha_) and not archive.path(sha_).exists()
    assert len(group) == 1
    group.flush()
    assert archive.exists(sha_) and archive.verify(sha_)
    assert archive.read(sha_, check=True) == data
    assert stat.S_IMODE(archive.path(sha_).stat().st_mode) == 0o400
    assert _files(archive.root / "tmp") == []


def test_staging_content_already_archived_writes_nothing(archive: Archive) -> None:
    data = b"already here"
    sha_ = archive.put(data)
    before = archive.path(sha_).stat()
    group = SyncGroup()
    assert archive.stage(data, group) == sha_
    assert len(group) == 1, "the blob already there is still made durable with the batch (another worker's)"
    assert _files(archive.root / "tmp") == []
    assert group.flush() == []
    after = archive.path(sha_).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_each_mode_makes_new_folders_durable_in_their_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob in a new ``archive/<xx>/`` folder must not vanish with its folder after a power loss."""
    synced: list[Path] = []
    monkeypatch.setattr(durable_module, "fsync_path", lambda path: synced.append(Path(path)))
    group = SyncGroup("each")
    target = tmp_path / "archive" / "ab" / "cd" / "blob"
    group.write(target, b"x", tmp_path / "tmp")
    group.flush()
    assert target.read_bytes() == b"x"
    for parent in (tmp_path, tmp_path / "archive", tmp_path / "archive" / "ab", tmp_path / "archive" / "ab" / "cd"):
        assert parent in synced, f"{parent} not fsynced"
    assert synced.index(tmp_path) < synced.index(tmp_path / "archive" / "ab" / "cd")


def test_a_file_required_by_the_batch_is_synced_even_when_nothing_is_staged(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(durable_module, "fsync_path", lambda path: calls.append(f"fsync {Path(path).name}"))
    monkeypatch.setattr(durable_module, "_syncfs", lambda folder: calls.append("syncfs"))
    existing = tmp_path / "blob"
    existing.write_bytes(b"published by another worker")
    group = SyncGroup(mode)
    group.require(existing)
    assert group.flush() == []
    assert calls == (["syncfs"] if group.mode == "group" else ["fsync blob", f"fsync {tmp_path.name}"])


def test_a_discarded_stage_leaves_the_archive_as_it_was(archive: Archive) -> None:
    group = SyncGroup()
    sha_ = archive.stage(b"never committed", group)
    group.discard()
    assert not archive.exists(sha_) and _files(archive.root / "tmp") == []


# --- Store.record_files ----------------------------------------------------------------------


def intake(n: int, *, origin: str | None = None, status: str = "received", reason: str | None = None) -> Intake:
    return Intake(
        sha(n), 100 + n, f"file{n}.edi", origin or f"inbox:acme/file{n}.edi#{n}", "acme", "x12", status, reason
    )


def test_record_files_records_a_batch_with_one_create_event_each(store: Store) -> None:
    rows = store.record_files([intake(1), intake(2, status="quarantined", reason="empty file"), intake(3)])
    assert [(r.sha256, r.name, r.status, r.reason) for r in rows] == [
        (sha(1), "file1.edi", "received", None),
        (sha(2), "file2.edi", "quarantined", "empty file"),
        (sha(3), "file3.edi", "received", None),
    ]
    assert len({r.id for r in rows}) == 3 and len({r.correlation_id for r in rows}) == 3
    for row in rows:
        (event,) = store.events_for("file", row.id)
        assert (event.action, event.to_status, event.reason) == ("create", row.status, row.reason)
        assert event.details == {"origin": row.origin, "sha256": row.sha256, "size": row.size, "parent_id": None}


def test_record_files_returns_the_existing_row_for_a_drop_recorded_before(store: Store) -> None:
    (first,) = store.record_files([intake(1)])
    again, other_drop, new = store.record_files([intake(1), intake(1, origin="inbox:acme/file1.edi#later"), intake(2)])
    assert again == first, "the same bytes from the same origin is the same drop: not recorded twice"
    assert other_drop.id != first.id and other_drop.sha256 == first.sha256, "a resend is a new drop"
    assert new.id not in (first.id, other_drop.id)
    assert len(store.list_files(limit=100)) == 3
    assert len(store.events_for("file", first.id)) == 1


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (intake(9, status="processing"), TransitionError),
        (intake(9, status="processed"), TransitionError),
        (Intake("not-a-digest", 1, "x", "inbox:x", None, "x12"), InvalidDigestError),
        (Intake(sha(9), 1, "x", "inbox:x", None, "pdf"), StoreValueError),
        (Intake(sha(9), -1, "x", "inbox:x", None, "x12"), StoreValueError),
    ],
)
def test_record_files_refuses_a_bad_intake_before_writing_any(
    store: Store, bad: Intake, error: type[Exception]
) -> None:
    with pytest.raises(error):
        store.record_files([intake(1), intake(2), bad])
    assert store.list_files(limit=100) == []


def test_record_files_is_one_transaction(store: Store) -> None:
    """A row the database refuses after others were inserted: none of the batch stays."""
    broken = Intake(sha(3), 3, None, "inbox:x#3", None, "x12")  # type: ignore[arg-type] - NOT NULL name
    with pytest.raises(StoreError):
        store.record_files([intake(1), intake(2), broken])
    assert store.list_files(limit=100) == []
    assert store.find_intake(sha(1), "inbox:acme/file1.edi#1") is None


# --- Store.renew_leases ----------------------------------------------------------------------


def one_taken_over(store: Store, clock: FakeClock) -> tuple[int, int, int]:
    """Three files: w1's lease on the first ran out and w2 took it; w1 then leased the other two."""
    a, b, c = record(store, 1), record(store, 2), record(store, 3)
    assert [r.id for r in store.claim_files("w1", 1, lease_seconds=10)] == [a]
    clock.advance(11)
    assert [r.id for r in store.claim_files("w2", 1, lease_seconds=30)] == [a]  # taken over
    assert [r.id for r in store.claim_files("w1", 2, lease_seconds=30)] == [b, c]
    return a, b, c


def test_renew_leases_extends_and_returns_only_the_files_still_leased_to_the_worker(
    store: Store, clock: FakeClock
) -> None:
    a, b, c = one_taken_over(store, clock)
    store.set_file_status(b, "processed", worker="w1")  # finished: no lease any more
    clock.advance(5)

    assert store.renew_leases([a, b, c, 999], "w1", 60) == [c]
    assert store.get_file(c).lease_expires_at == clock.now + timedelta(seconds=60)
    row_a = store.get_file(a)
    assert (row_a.lease_owner, row_a.lease_expires_at) == ("w2", clock.now + timedelta(seconds=25)), (
        "w2's lease untouched"
    )
    assert store.get_file(b).lease_owner is None
    assert store.renew_leases([], "w1", 60) == []
    with pytest.raises(StoreValueError):
        store.renew_leases([c], "w1", 0)
    with pytest.raises(StoreValueError):
        store.renew_leases([c], "", 60)


# --- Store.record_batch ----------------------------------------------------------------------


class AckRecorder:
    """Acknowledgment builders that record how they were called (the number drawn, duplicate or not)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    def builder(self, marker: str) -> Callable[[Callable[[], int], bool], OutboundPlan | None]:
        def build(draw: Callable[[], int], duplicate: bool) -> OutboundPlan:
            number = draw()
            self.calls.append((marker, number, duplicate))
            kind = "TA1" if duplicate else "997"
            return OutboundPlan("acme", kind, sha(10_000 + number), f"{number:09d}", marker, data=b"ack")

        return build


def invoice_plan(
    file_id: int,
    invoice: str,
    *,
    isa13: str | None = None,
    acks: AckRecorder | None = None,
    marker: str | None = None,
    bytes_key: str | None = None,
    rerun: bool = False,
) -> FilePlan:
    """A file with one interchange, one group, one 810 translated into one invoice (business key 810:invoice)."""
    doc = DocPlan(
        "invoice",
        json.dumps({"invoice_number": invoice}),
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"{file_id}/{invoice}")),
        position=1,
        partner_id="acme",
        business_key=f"810:{invoice}",
    )
    group = GroupPlan("IN", "77", "004010", "accepted", sets=[SetPlan("810", "0001", "translated", document=doc)])
    control = isa13 or "000000077"
    marker = marker or f"ack for ISA13 {control} (interchange 1)"
    ic = InterchangePlan(
        "ZZ",
        "SENDER",
        "ZZ",
        "RECEIVER",
        control,
        "00401",
        "accepted",
        isa13_key=None if isa13 is None else f"ZZ:SENDER:{isa13}",
        groups=[group],
        ack=None if acks is None else acks.builder(marker),
        ack_marker=marker,
    )
    return FilePlan(file_id, "acme", interchanges=[ic], bytes_key=bytes_key, rerun=rerun)


def final_for(plan: FilePlan) -> FileFinal:
    """A conclude callback's answer: duplicates when the transaction found them, else processed."""
    ic = plan.interchanges[0] if plan.interchanges else None
    doc = ic.groups[0].sets[0].document if ic is not None else None
    if plan.bytes_duplicate_of is not None:
        return FileFinal(plan.file_id, "duplicate", f"same bytes as file {plan.bytes_duplicate_of}")
    if doc is not None and doc.duplicate_of is not None:
        return FileFinal(plan.file_id, "duplicate", "invoice already received", {"documents": 0})
    return FileFinal(plan.file_id, "processed", None, {"documents": 1})


def leased(store: Store, count: int, worker: str = "w1") -> list[int]:
    ids = [record(store, n) for n in range(1, count + 1)]
    assert [r.id for r in store.claim_files(worker, count, lease_seconds=30)] == ids
    return ids


def _documents(store: Store, file_id: int) -> list[tuple[str, str]]:
    return [(d.business_key or "", d.status) for d in store.file_tree(file_id).all_documents()]


def test_a_plan_whose_lease_was_lost_records_nothing_while_the_rest_of_the_batch_is_recorded(
    store: Store, clock: FakeClock
) -> None:
    a, b, c = one_taken_over(store, clock)
    acks = AckRecorder()
    plans = [
        invoice_plan(f, f"INV-{f}", isa13=f"00000000{f}", acks=acks, bytes_key=sha(f), marker=f"m{f}")
        for f in (a, b, c)
    ]
    for plan in plans:
        plan.conclude = final_for

    assert store.record_batch("w1", plans) is plans
    lost, *kept = plans
    assert lost.lost is not None and "'w2'" in lost.lost
    assert lost.interchanges[0].id is None and lost.interchanges[0].outbound is None
    assert store.file_tree(a).interchanges == () and store.get_file(a).results_at is None
    assert store.list_outbound(file_id=a) == []
    assert [m for m, _, _ in acks.calls] == [f"m{b}", f"m{c}"], "no acknowledgment is built for a lost file"
    assert store.existing_keys("business", "acme", [f"810:INV-{f}" for f in (a, b, c)]) == {
        f"810:INV-{b}",
        f"810:INV-{c}",
    }, "a lost plan claims no dedupe key"
    assert store.existing_keys("bytes", "acme", [sha(a), sha(b), sha(c)]) == {sha(b), sha(c)}
    for plan in kept:
        assert plan.lost is None and plan.interchanges[0].id is not None
        assert _documents(store, plan.file_id) == [(f"810:INV-{plan.file_id}", "translated")]
        assert store.get_file(plan.file_id).results_at == clock.now
        (out,) = store.list_outbound(file_id=plan.file_id)
        assert out.id == plan.interchanges[0].outbound.id  # type: ignore[union-attr]


def test_a_bytes_duplicate_in_the_same_batch_records_no_children(store: Store) -> None:
    a, b = leased(store, 2)
    acks = AckRecorder()
    first = invoice_plan(a, "INV-1", isa13="000000001", acks=acks, bytes_key=sha(500))
    again = invoice_plan(b, "INV-1", isa13="000000001", acks=acks, bytes_key=sha(500))
    again.conclude = final_for
    store.record_batch("w1", [first, again])
    assert (first.bytes_duplicate_of, again.bytes_duplicate_of) == (None, a)
    assert (again.interchanges, again.documents) == ([], [])
    tree = store.file_tree(b)
    assert (tree.interchanges, tree.documents) == ((), ())
    assert store.list_outbound(file_id=b) == [] and len(acks.calls) == 1, "a bytes duplicate is not acknowledged"
    final = store.pending_final(store.get_file(b))
    assert final == FileFinal(b, "duplicate", f"same bytes as file {a}")


def test_a_complete_plan_keeps_its_final_status_until_finished(store: Store, clock: FakeClock) -> None:
    a, b = leased(store, 2)
    concluded: list[int] = []

    def conclude(plan: FilePlan) -> FileFinal:
        concluded.append(plan.file_id)
        assert plan.interchanges[0].id is not None, "conclude runs once the plan's rows are recorded"
        return FileFinal(plan.file_id, "partial", "1 of 2 sets failed", {"sets": 2, "acks": ["acme 997 1"]})

    done = invoice_plan(a, "INV-A")
    done.conclude = conclude
    chunk = invoice_plan(b, "INV-B")
    chunk.complete = False
    chunk.conclude = conclude
    clock.advance(3)
    store.record_batch("w1", [done, chunk])

    assert concluded == [a], "an incomplete plan (a chunk of a big file) is not concluded"
    row = store.get_file(a)
    assert row.results_at == clock.now and row.status == "processing"
    assert row.results is not None and json.loads(row.results)["status"] == "partial"
    assert store.pending_final(row) == FileFinal(
        a, "partial", "1 of 2 sets failed", {"sets": 2, "acks": ["acme 997 1"]}
    )
    chunk_row = store.get_file(b)
    assert (chunk_row.results_at, chunk_row.results, store.pending_final(chunk_row)) == (None, None, None)
    assert _documents(store, b) == [("810:INV-B", "translated")], "a chunk's rows are recorded all the same"


def test_loose_documents_are_recorded_and_claim_their_business_keys(store: Store) -> None:
    """CSV/XML documents (no set row) are recorded with the batch; a translated one claims its key."""
    a, b = leased(store, 2)
    x12_plan = invoice_plan(a, "INV-1")

    def doc(position: int, key: str, status: str = "translated") -> DocPlan:
        return DocPlan(
            "invoice",
            json.dumps({"n": position}),
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{b}/{position}")),
            position=position,
            partner_id="acme",
            business_key=key,
            status=status,
            reason="bad amount" if status == "failed" else None,
        )

    loose = [doc(1, "810:CSV-1"), doc(2, "810:INV-1"), doc(3, "810:CSV-BAD", "failed")]
    csv_plan = FilePlan(b, "acme", documents=loose)
    store.record_batch("w1", [x12_plan, csv_plan])

    (x12_doc,) = store.file_tree(a).all_documents()
    recorded = store.file_tree(b).documents
    assert [(d.id, d.position, d.status, d.transaction_set_id) for d in recorded] == [
        (loose[0].id, 1, "translated", None),
        (loose[1].id, 2, "duplicate", None),
        (loose[2].id, 3, "failed", None),
    ]
    assert (loose[0].duplicate_of, loose[1].duplicate_of) == (None, x12_doc.id)
    assert f"document {x12_doc.id}" in (recorded[1].reason or "")
    assert store.existing_keys("business", "acme", ["810:CSV-1", "810:INV-1", "810:CSV-BAD"]) == {
        "810:CSV-1",
        "810:INV-1",
    }, "a failed document claims no business key"


def test_the_ack_builder_learns_of_a_repeated_isa13_and_draws_from_the_partners_ack_sequence(store: Store) -> None:
    a, b, c = leased(store, 3)
    store.set_sequence("acme", "ack", 41)
    store.set_sequence("other", "ack", 7)
    acks = AckRecorder()
    plans = [
        invoice_plan(a, "INV-1", isa13="000000300", acks=acks, marker="first"),
        invoice_plan(b, "INV-2", isa13="000000300", acks=acks, marker="repeat"),
        invoice_plan(c, "INV-3", isa13="000000301", acks=acks, marker="new"),
    ]
    store.record_batch("w1", plans)
    assert acks.calls == [("first", 42, False), ("repeat", 43, True), ("new", 44, False)]
    assert plans[1].interchanges[0].duplicate_of == plans[0].interchanges[0].id
    assert _documents(store, b) == [], "a repeated interchange's sets pass nothing on"
    assert [s.row.status for s in store.file_tree(b).interchanges[0].groups[0].sets] == ["duplicate"]
    outbound = {f: store.list_outbound(file_id=f) for f in (a, b, c)}
    assert {f: [(o.kind, o.control_number, o.reason) for o in rows] for f, rows in outbound.items()} == {
        a: [("997", "000000042", "first")],
        b: [("TA1", "000000043", "repeat")],
        c: [("997", "000000044", "new")],
    }
    assert store.next_value("acme", "ack") == 45, "one number drawn per acknowledgment recorded"
    assert store.next_value("other", "ack") == 8, "another partner's sequence is untouched"


def test_an_ack_builder_that_sends_nothing_records_no_outbound_row(store: Store) -> None:
    (a,) = leased(store, 1)
    plan = invoice_plan(a, "INV-1", isa13="000000300")
    plan.interchanges[0].ack = lambda draw, duplicate: None
    store.record_batch("w1", [plan])
    assert plan.interchanges[0].outbound is None and store.list_outbound(file_id=a) == []
    assert store.next_value("acme", "ack") == 1, "no number drawn for an acknowledgment not recorded"


def test_a_rerun_sends_the_acknowledgment_recorded_earlier_instead_of_building_a_new_one(
    store: Store, clock: FakeClock
) -> None:
    (a,) = leased(store, 1)
    acks = AckRecorder()
    first = invoice_plan(a, "INV-1", isa13="000000300", acks=acks, marker="ack for ISA13 000000300 (interchange 1)")
    first.complete = False  # a big file's first chunk: recorded, then the worker died
    store.record_batch("w1", [first])
    (earlier,) = store.list_outbound(file_id=a)
    clock.advance(31)
    (again,) = store.claim_files("w2", 1, lease_seconds=30)
    assert again.attempts == 2
    store.reset_file_children(a, "w2", "rerun")

    def must_not_build(draw: Callable[[], int], duplicate: bool) -> OutboundPlan:
        raise AssertionError("the recorded acknowledgment must be sent again, not rebuilt")

    rerun = invoice_plan(a, "INV-1", isa13="000000300", marker=earlier.reason, rerun=True)
    rerun.interchanges[0].ack = must_not_build
    other = InterchangePlan("ZZ", "SENDER", "ZZ", "RECEIVER", "000000301", "00401", "accepted", position=2)
    other.ack, other.ack_marker = (
        acks.builder("ack for ISA13 000000301 (interchange 2)"),
        "ack for ISA13 000000301 (interchange 2)",
    )
    rerun.interchanges.append(other)
    store.record_batch("w2", [rerun])

    reused = rerun.interchanges[0].outbound
    assert reused is not None and reused.data is None, "nothing to rebuild: the bytes are in the archive"
    assert (reused.id, reused.control_number, reused.sha256, reused.kind) == (
        earlier.id,
        earlier.control_number,
        earlier.sha256,
        earlier.kind,
    )
    assert [c[0] for c in acks.calls] == [earlier.reason, "ack for ISA13 000000301 (interchange 2)"]
    assert sorted(o.control_number for o in store.list_outbound(file_id=a)) == [earlier.control_number, "000000002"]
    assert _documents(store, a) == [("810:INV-1", "translated")], "the rerun claimed the invoice again"


def test_record_batch_with_finish_gives_complete_files_their_final_status_in_the_same_transaction(
    store: Store, clock: FakeClock
) -> None:
    c, a, b = one_taken_over(store, clock)  # c is now w2's
    done = invoice_plan(a, "INV-A")
    done.conclude = lambda plan: FileFinal(plan.file_id, "partial", "1 of 2 sets failed", {"sets": 2})
    chunk = invoice_plan(b, "INV-B")
    chunk.complete = False  # a chunk of a big file: its file is not finished
    chunk.conclude = done.conclude
    gone = invoice_plan(c, "INV-C")
    gone.conclude = done.conclude
    before = {f: len(store.events_for("file", f)) for f in (a, b, c)}
    clock.advance(3)
    writes = store.database.write_totals()
    store.record_batch("w1", [done, chunk, gone], finish=True)

    row = store.get_file(a)
    assert (row.status, row.reason, row.lease_owner, row.lease_expires_at) == (
        "partial", "1 of 2 sets failed", None, None
    )  # fmt: skip
    assert row.results_at == clock.now and store.pending_final(row) is not None, "the results are kept all the same"
    events = store.events_for("file", a)
    assert len(events) == before[a] + 1 and (events[-1].from_status, events[-1].to_status, events[-1].actor) == (
        "processing", "partial", "w1"
    )  # fmt: skip
    assert store.get_file(b).status == "processing", "an incomplete plan leaves its file processing"
    assert gone.lost is not None and store.get_file(c).lease_owner == "w2", "a lost file is left to its owner"
    assert len(store.events_for("file", c)) == before[c]
    after = store.database.write_totals()
    assert sum(n for n, _, _ in after.values()) - sum(n for n, _, _ in writes.values()) == 1, "one transaction"


def test_record_batch_claims_the_next_batch_in_its_transaction_as_claim_files_would(store: Store) -> None:
    """With ``claim``, the next files are leased in the results transaction (one transaction for both), each
    with its claim event; they are set in the claim only once it has committed."""
    a, b = leased(store, 2)
    later = [record(store, n) for n in (3, 4, 5)]
    plans = [invoice_plan(a, "INV-A"), invoice_plan(b, "INV-B")]
    for plan in plans:
        plan.conclude = final_for
    claim = NextBatch(2, lease_seconds=30, max_attempts=5)
    writes = store.database.write_totals()
    seen: list[list[int]] = []
    store.record_batch("w1", plans, lambda: seen.append([r.id for r in claim.rows]), finish=True, claim=claim)

    assert seen == [[]], "inside the transaction the claim is not handed out yet"
    assert [r.id for r in claim.rows] == later[:2] and claim.leased_at is not None
    for row in claim.rows:
        stored = store.get_file(row.id)
        assert (stored.status, stored.lease_owner, stored.attempts) == ("processing", "w1", 1)
        assert row.lease_expires_at == stored.lease_expires_at
        assert [e.action for e in store.events_for("file", row.id)][-1] == "claim"
    assert store.get_file(later[2]).status == "received", "no more than the batch"
    assert [store.get_file(f).status for f in (a, b)] == ["processed", "processed"]
    after = store.database.write_totals()
    assert sum(n for n, _, _ in after.values()) - sum(n for n, _, _ in writes.values()) == 1, "one transaction"
    with pytest.raises(StoreValueError, match="finished in the same transaction"):
        store.record_batch("w1", [invoice_plan(later[0], "INV-C")], claim=NextBatch(2, 30))


def test_a_results_transaction_that_fails_claims_nothing(store: Store) -> None:
    (a,) = leased(store, 1)
    nxt = record(store, 2)
    plan = invoice_plan(a, "INV-A")
    plan.conclude = final_for
    claim = NextBatch(2, lease_seconds=30)

    def fail() -> None:
        raise OSError("the archive's disk is full")

    with pytest.raises(OSError, match="disk is full"):
        store.record_batch("w1", [plan], fail, finish=True, claim=claim)
    assert (claim.rows, claim.leased_at) == ([], None)
    row = store.get_file(nxt)
    assert (row.status, row.lease_owner, row.attempts) == ("received", None, 0), "the claim was rolled back"
    first = store.get_file(a)
    assert (first.status, first.lease_owner, first.results_at) == ("processing", "w1", None), "nothing recorded"


def test_a_next_batch_claim_that_fails_is_rolled_back_alone_and_the_results_are_recorded(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim runs in a savepoint: a failed statement there (PostgreSQL aborts the transaction without
    one) costs only the claim, named in ``claim.error``."""
    (a,) = leased(store, 1)
    nxt = record(store, 2)
    plan = invoice_plan(a, "INV-A")
    plan.conclude = final_for

    def broken(conn: Any, *args: Any, **kwargs: Any) -> Any:
        return conn.execute(text("SELECT no_such_column FROM files")).all()

    monkeypatch.setattr(store, "claim_files_on", broken)
    claim = NextBatch(2, lease_seconds=30)
    store.record_batch("w1", [plan], finish=True, claim=claim)
    assert claim.rows == [] and claim.error is not None and "no_such_column" in claim.error
    assert store.get_file(a).status == "processed", "the results were committed"
    assert store.get_file(nxt).status == "received"
    assert _documents(store, a) == [("810:INV-A", "translated")]


def test_unclaim_gives_back_only_the_workers_files_in_one_transaction_keeping_their_reason(store: Store) -> None:
    a, b = leased(store, 2)
    c = record(store, 3)
    (c_row,) = store.claim_files("w2", 1, lease_seconds=30)
    with store.database.write("an operator's note") as conn:
        conn.execute(text("UPDATE files SET reason = 'released by an operator: resend' WHERE id = :i"), {"i": a})
    writes = store.database.write_totals()
    assert store.unclaim([a, b, c_row.id], "w1", "worker stopping before the batch started") == [a, b]
    after = store.database.write_totals()
    assert sum(n for n, _, _ in after.values()) - sum(n for n, _, _ in writes.values()) == 1
    first, second, other = store.get_file(a), store.get_file(b), store.get_file(c)
    assert (first.status, first.lease_owner, first.reason) == ("received", None, "released by an operator: resend")
    assert (second.status, second.lease_owner, second.lease_expires_at) == ("received", None, None)
    assert (other.status, other.lease_owner) == ("processing", "w2"), "another worker's file is left alone"
    event = store.events_for("file", b)[-1]
    assert (event.action, event.actor, event.reason) == ("release", "w1", "worker stopping before the batch started")
    assert [r.id for r in store.claim_files("w3", 5, lease_seconds=30)] == [a, b]


# --- Store.finish_files ----------------------------------------------------------------------


def test_finish_files_finishes_the_files_still_leased_and_returns_the_lost_ones(store: Store, clock: FakeClock) -> None:
    a, b, c = one_taken_over(store, clock)
    before = {f: len(store.events_for("file", f)) for f in (a, b, c)}
    clock.advance(1)
    lost = store.finish_files(
        "w1",
        [
            FileFinal(a, "processed"),
            FileFinal(b, "processed", None, {"documents": 3}),
            FileFinal(c, "partial", "1 of 4 sets failed"),
        ],
    )
    assert lost == [a]
    row_a = store.get_file(a)
    assert (row_a.status, row_a.lease_owner) == ("processing", "w2"), "a lost file is left to its new owner"
    assert len(store.events_for("file", a)) == before[a]
    for file_id, status, reason, details in (
        (b, "processed", None, {"documents": 3}),
        (c, "partial", "1 of 4 sets failed", None),
    ):
        row = store.get_file(file_id)
        assert (row.status, row.reason, row.lease_owner, row.lease_expires_at) == (status, reason, None, None)
        events = store.events_for("file", file_id)
        assert len(events) == before[file_id] + 1, "one status event per finished file"
        assert (events[-1].action, events[-1].from_status, events[-1].to_status) == ("status", "processing", status)
        assert (events[-1].reason, events[-1].details, events[-1].actor, events[-1].at) == (
            reason,
            details,
            "w1",
            clock.now,
        )
    assert store.finish_files("w1", []) == []


def test_finish_files_refuses_a_status_the_file_cannot_take_and_finishes_none(store: Store) -> None:
    a, b = leased(store, 2)
    with pytest.raises(TransitionError, match=f"file {b}"):
        store.finish_files("w1", [FileFinal(a, "processed"), FileFinal(b, "processing")])
    assert [store.get_file(f).status for f in (a, b)] == ["processing", "processing"]
