"""The runtime in batches: workers killed by a file, stale temporaries, a missing blob in a batch, chunked big
files, and one invoice in several files of one batch; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    BACKENDS,
    PARTNERS,
    Home,
    golden,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    schema_url,
    store_url_fixture,
    workspace_fixture,
    x12,
)
from sqlalchemy import Engine, text

from gateway.runtime.process import CHUNK_SETS
from gateway.runtime.service import Service, ensure_folders
from gateway.settings import load_settings
from gateway.store import Archive, Store
from gateway.store.results import FilePlan
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace
from gateway.x12.validate.report import InterchangeReport

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"  # invoice INV-0042377
HOUR = 3600


def taken(home: Home, service: Service, *drops: tuple[str, bytes]) -> dict[str, int]:
    """Drop files in inbox/medsupply/ and take them into the ledger (received); returns name → file id."""
    for name, data in drops:
        home.drop(name, data, "medsupply")
        time.sleep(0.01)  # distinct mtimes: taken, and claimed, in drop order
    service.inbox.scan()
    assert service.take_ready() == len(drops)
    return {f.name: f.id for f in service.store.list_files(limit=100)}


def spy_record_batch(service: Service, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Every record_batch call's file ids, in order."""
    calls: list[list[int]] = []
    real = service.store.record_batch

    def spy(
        worker: str, plans: list[FilePlan], before_commit: Callable[[], object] | None = None, **kw: Any
    ) -> list[FilePlan]:
        calls.append([p.file_id for p in plans])
        return real(worker, plans, before_commit, **kw)

    monkeypatch.setattr(service.store, "record_batch", spy)
    return calls


class KillsItsWorker:
    """A translator that dies (as a killed process would: no exception handler runs) on the marked bytes."""

    def __init__(self, inner: Translator, marker: bytes) -> None:
        self.inner = inner
        self.partners = inner.partners
        self.marker = marker
        self.kills = 0

    def translate(self, data: bytes, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        if self.marker in data:
            self.kills += 1
            raise KeyboardInterrupt("the worker died on this file")
        yield from self.inner.translate(data, info)


@pytest.fixture(name="home")
def home_fixture(store_url: str, tmp_path: Path) -> Home:
    return make_home(tmp_path, store_url, stable_seconds=0)


@pytest.fixture(name="dying_home")
def dying_home_fixture(store_url: str, tmp_path: Path) -> Home:
    """Short leases, so a killed worker's files are taken over quickly; two attempts at most."""
    return make_home(
        tmp_path, store_url, stable_seconds=0, lease_seconds=0.3, extra={"processing": {"max_attempts": 2}}
    )


# --- a file that kills its worker -------------------------------------------------------------


def test_a_file_that_keeps_killing_its_worker_is_quarantined_after_max_attempts(
    dying_home: Home, workspace: Workspace
) -> None:
    home = dying_home
    service = home.service(workspace)
    poison = x12(TEMPLATE, 701, tag="poison")
    ids = taken(home, service, ("poison.edi", poison))
    killer = KillsItsWorker(service.processor.translator, b"poison")
    healthy, service.processor.translator = service.processor.translator, killer  # type: ignore[assignment]
    for attempt in (1, 2):
        with pytest.raises(KeyboardInterrupt):
            service.process_claimed()
        row = service.store.get_file(ids["poison.edi"])
        assert (row.status, row.attempts) == ("processing", attempt)
        time.sleep(0.35)  # the dead worker's lease expires

    assert service.process_claimed() == 0, "a third attempt is not made (processing.max_attempts: 2)"
    assert killer.kills == 2
    row = service.store.get_file(ids["poison.edi"])
    assert (row.status, row.attempts, row.lease_owner) == ("quarantined", 2, None)
    assert "after 2 attempts" in (row.reason or "") and "crash its worker" in (row.reason or "")
    last = service.store.events_for("file", row.id)[-1]
    assert (last.action, last.from_status, last.to_status, last.reason) == (
        "status",
        "processing",
        "quarantined",
        row.reason,
    )

    service.processor.translator = healthy
    home.drop("after.edi", x12(TEMPLATE, 702, tag="after"), "medsupply")
    service.run_once()
    rows = {f.name: f for f in service.store.list_files(limit=100)}
    assert {name: f.status for name, f in rows.items()} == {"poison.edi": "quarantined", "after.edi": "processed"}
    assert list(home.canonical()) == [f"medsupply/invoice-{rows['after.edi'].id}-1.json"]
    service.store.close()


def test_an_innocent_file_batched_with_a_poison_one_is_not_quarantined(dying_home: Home, workspace: Workspace) -> None:
    home = dying_home
    service = home.service(workspace)
    ids = taken(home, service, ("poison.edi", x12(TEMPLATE, 711, tag="poison")), ("ok.edi", x12(TEMPLATE, 712)))
    healthy = service.processor.translator
    service.processor.translator = KillsItsWorker(healthy, b"poison")  # type: ignore[assignment]
    for _ in range(2):  # processing.max_attempts: 2
        with pytest.raises(KeyboardInterrupt):
            service.process_claimed()  # the batch: poison.edi and ok.edi
        time.sleep(0.35)
    service.processor.translator = healthy
    service.run_once()
    assert service.store.get_file(ids["poison.edi"]).status == "quarantined"
    assert service.store.get_file(ids["ok.edi"]).status == "processed", service.store.get_file(ids["ok.edi"]).reason
    service.store.close()


# --- temporaries ------------------------------------------------------------------------------


def test_service_start_sweeps_stale_temporaries_but_not_fresh_ones(home: Home, workspace: Workspace) -> None:
    service = home.service(workspace)
    now = time.time()
    folders = {"outbox": home.outbox / ".tmp", "archive": home.archive / "tmp"}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
        for name, age in ((".stale.tmp", 2 * HOUR), (".fresh.tmp", 60)):
            path = folder / name
            path.write_bytes(b"left by a batch")
            os.utime(path, (now - age, now - age))
    home.drop("810.edi", x12(TEMPLATE, 721), "medsupply")
    service.run_once()
    for folder in folders.values():
        assert sorted(p.name for p in folder.iterdir()) == [".fresh.tmp"], folder
    assert [f.status for f in service.store.list_files(limit=10)] == ["processed"]
    assert len(home.canonical()) == 1 and len(home.acks()) == 1
    service.store.close()


# --- a missing blob ---------------------------------------------------------------------------


def test_a_file_whose_blob_is_missing_is_failed_while_the_rest_of_its_batch_is_processed(
    home: Home, workspace: Workspace
) -> None:
    service = home.service(workspace)
    drops = [(f"{n}.edi", x12(TEMPLATE, 730 + n, tag=f"b{n}")) for n in (1, 2, 3)]
    ids = taken(home, service, *drops)
    missing = service.store.get_file(ids["2.edi"])
    Archive(home.archive).path(missing.sha256).unlink()

    assert service.process_claimed() == 2
    row = service.store.get_file(missing.id)
    # Retrying cannot bring the bytes back: failed with the reason, for an operator (not retried at every poll).
    assert (row.status, row.lease_owner, row.results_at) == ("failed", None, None)
    assert "STORE-012" in (row.reason or "") and missing.sha256 in (row.reason or ""), row.reason
    last = service.store.events_for("file", missing.id)[-1]
    assert (last.action, last.to_status, last.reason) == ("status", "failed", row.reason)
    assert service.store.file_tree(missing.id).interchanges == ()
    assert {n: service.store.get_file(i).status for n, i in ids.items()} == {
        "1.edi": "processed",
        "2.edi": "failed",
        "3.edi": "processed",
    }
    written = sorted(name.split("-")[1] for name in home.canonical())
    assert written == sorted([str(ids["1.edi"]), str(ids["3.edi"])])
    assert len(home.acks()) == 2 and service.store.list_outbound(file_id=missing.id) == []
    service.store.close()


# --- a big file in chunks ---------------------------------------------------------------------


@pytest.fixture(name="two_store_urls", params=BACKENDS)
def two_store_urls_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty stores: SQLite files, or fresh PostgreSQL schemas."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'chunked.sqlite'}", f"sqlite:///{tmp_path / 'whole.sqlite'}")
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    schemas = [f"gw_rt_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (schema_url(schemas[0]), schema_url(schemas[1]))
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def process_big_file(
    root: Path, store_url: str, workspace: Workspace, data: bytes, chunk_sets: int, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    home = make_home(root, store_url, stable_seconds=0)
    service = home.service(workspace)
    service.processor.chunk_sets = chunk_sets
    calls = spy_record_batch(service, monkeypatch)
    home.drop("big.edi", data, "medsupply")
    service.run_once()
    (row,) = service.store.list_files(limit=10)
    tree = service.store.file_tree(row.id)
    outbound = service.store.list_outbound(file_id=row.id)
    service.store.close()
    assert not any(any(t.iterdir()) for t in home.outbox.rglob(".tmp")), "temporaries left behind"
    return {
        "file": (row.id, row.status, row.reason),
        "sets": [(s.row.control_number, s.row.status) for ic in tree.interchanges for g in ic.groups for s in g.sets],
        "documents": [(d.position, d.business_key, d.status) for d in tree.all_documents()],
        "canonical": {name: golden(doc) for name, doc in home.canonical().items()},
        "acks": home.acks(),
        "outbound": sorted((o.kind, o.control_number, o.reason) for o in outbound),
        "record_calls": len(calls),
    }


def test_a_big_file_in_small_chunks_gives_what_it_gives_whole(
    two_store_urls: tuple[str, str], tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    interchanges = 4
    data = b"".join(
        x12(TEMPLATE, 740 + n, sets=3, tag=f"big{n}", bad=frozenset({2}) if n == 1 else frozenset())
        for n in range(interchanges)
    )
    chunked = process_big_file(tmp_path / "chunked", two_store_urls[0], workspace, data, 2, monkeypatch)
    whole = process_big_file(tmp_path / "whole", two_store_urls[1], workspace, data, CHUNK_SETS, monkeypatch)

    assert whole["record_calls"] == 1
    assert chunked["record_calls"] == interchanges + 1, "recorded after every interchange, then concluded"
    assert chunked["file"][1:] == ("partial", "1 of 12 sets/documents failed")
    assert len(chunked["canonical"]) == 11 and len(chunked["acks"]) == interchanges
    for key in ("file", "sets", "documents", "canonical", "acks", "outbound"):
        assert chunked[key] == whole[key], key


# --- one invoice in several files of a batch --------------------------------------------------


def test_one_invoice_in_several_files_of_one_batch_is_translated_once(
    home: Home, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = home.service(workspace)
    ids = taken(home, service, *[(f"{n}.edi", x12(TEMPLATE, 750 + n)) for n in range(4)])  # one invoice, 4 ISA13s
    calls = spy_record_batch(service, monkeypatch)
    assert service.process_claimed() == 4
    assert calls == [sorted(ids.values())], "the four files were recorded in one batch"

    rows = {service.store.get_file(i).id: service.store.get_file(i) for i in ids.values()}
    processed = [r for r in rows.values() if r.status == "processed"]
    duplicates = [r for r in rows.values() if r.status == "duplicate"]
    assert (len(processed), len(duplicates)) == (1, 3), {r.name: (r.status, r.reason) for r in rows.values()}
    docs = {i: list(service.store.file_tree(i).all_documents()) for i in rows}
    (original,) = docs[processed[0].id]
    assert (original.status, original.business_key) == ("translated", "810:INV-0042377")
    for row in duplicates:
        (doc,) = docs[row.id]
        assert doc.status == "duplicate" and f"document {original.id}" in (doc.reason or ""), doc.reason
        assert "all 1 sets/documents are duplicates" in (row.reason or "")
    written = home.canonical()
    assert list(written) == [f"medsupply/invoice-{processed[0].id}-1.json"]
    assert written[f"medsupply/invoice-{processed[0].id}-1.json"]["invoice_number"] == "INV-0042377"
    assert len(home.acks()) == 4, "every new interchange is acknowledged, duplicate invoice or not"
    service.store.close()


def delegating(tmp_path: Path, store_url: str, workspace: Workspace) -> tuple[Home, Service]:
    """A service with delivery processes (none started: it only records their deliveries), batches of 2."""
    home = make_home(tmp_path, store_url, stable_seconds=0, batch=2)
    deployment, _ = load_settings(home.path)
    ensure_folders(deployment)
    store = Store(deployment.store_url)
    store.upgrade()
    return home, Service(deployment, workspace, store, worker="w1", delegated=True)


def test_a_delegating_service_tells_its_delivery_processes_after_its_next_claim(
    store_url: str, tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With delivery processes the service tells them of a batch's deliveries once it has claimed the next
    batch: told at once, their claim of the deliveries took SQLite's write lock just as the service asked
    for it to claim files, and the service waited. The next batch is claimed in the results transaction of
    the one before (no claim of its own), so they are told as the next batch starts."""
    home, svc = delegating(tmp_path, store_url, workspace)
    store = svc.store
    seen: list[str] = []
    claim_files = store.claim_files

    def claim(*args: Any, **kwargs: Any) -> Any:
        seen.append("claim")
        return claim_files(*args, **kwargs)

    monkeypatch.setattr(store, "claim_files", claim)
    svc.processor.on_delegated = lambda: seen.append("told")
    for i in range(4):
        home.drop(f"inv{i}.edi", x12(TEMPLATE, 540 + i, tag=f"t{i}"), "medsupply")
    assert svc.take_ready() == 4 and seen == []
    writes = store.database.write_totals()
    assert [svc.process_claimed() for _ in range(3)] == [2, 2, 0]
    # The first batch claimed alone; the second in the first's results; the third found nothing in the
    # second's results, and then nothing in a claim of its own.
    assert seen == ["claim", "told", "claim", "told"], seen
    after = store.database.write_totals()
    assert after["claim files"][0] - writes.get("claim files", (0, 0.0, 0.0))[0] == 2
    assert all(store.get_file(f.id).status == "processed" for f in store.list_files(limit=10))
    store.close()


def test_a_delegating_service_gives_back_the_batch_it_claimed_but_did_not_start_when_it_stops(
    store_url: str, tmp_path: Path, workspace: Workspace
) -> None:
    """The batch claimed with the last one's results is released when the loop ends (its files go back to
    received at once: no waiting for the lease to run out, and no death counted when they are claimed)."""
    home, svc = delegating(tmp_path, store_url, workspace)
    store, deployment = svc.store, svc.deployment
    for i in range(4):
        home.drop(f"inv{i}.edi", x12(TEMPLATE, 560 + i, tag=f"t{i}"), "medsupply")
    assert svc.take_ready() == 4
    assert svc.process_claimed() == 2
    held = [r.id for r in svc.claimed.rows]
    assert len(held) == 2 and all(store.get_file(i).lease_owner == "w1" for i in held)

    svc.stopping.set()  # SIGTERM between two batches
    svc.run_once()
    for file_id in held:
        row = store.get_file(file_id)
        assert (row.status, row.lease_owner, row.lease_expires_at) == ("received", None, None)
        assert store.events_for("file", file_id)[-1].reason == "worker stopping before the batch started"
    assert svc.claimed.rows == []

    again = Service(deployment, workspace, store, worker="w2", delegated=True)
    assert again.process_claimed() == 2, "claimed again at once, as files never started"
    assert {store.get_file(i).status for i in held} == {"processed"}
    assert not [e for i in held for e in store.events_for("file", i) if e.action == "reclaim"], "no death counted"
    store.close()


def test_a_batch_claimed_with_the_last_results_has_its_leases_renewed_counted_from_that_claim(
    store_url: str, tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's leases are renewed every third of their length from when they were taken: for a batch
    claimed with the last one's results, that is the claim, not the start of its processing (here the
    service renews them as it takes that batch up; the processor then counts from that renewal)."""
    home, svc = delegating(tmp_path, store_url, workspace)
    store, deployment = svc.store, svc.deployment
    for i in range(4):
        home.drop(f"inv{i}.edi", x12(TEMPLATE, 580 + i, tag=f"t{i}"), "medsupply")
    assert svc.take_ready() == 4
    renewed: list[list[int]] = []
    renew = store.renew_leases

    def spy(file_ids: list[int], worker: str, lease_seconds: float) -> list[int]:
        renewed.append(sorted(file_ids))
        return renew(file_ids, worker, lease_seconds)

    monkeypatch.setattr(store, "renew_leases", spy)
    assert svc.process_claimed() == 2 and renewed == [], "a batch claimed now is not renewed"
    held = sorted(r.id for r in svc.claimed.rows)
    assert svc.claimed.leased_at is not None
    svc.claimed.leased_at -= deployment.settings.processing.lease_seconds / 2  # waited half its lease
    assert svc.process_claimed() == 2
    assert renewed == [held]
    assert {store.get_file(i).status for i in held} == {"processed"}
    store.close()


def test_a_daemon_stopped_between_two_batches_gives_back_the_one_it_claimed(
    store_url: str, tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_forever`` (``gateway run``) stopped right after a batch whose results claimed the next: that
    batch is given back when the loop ends, as ``run_once`` does."""
    home, svc = delegating(tmp_path, store_url, workspace)
    for i in range(4):
        home.drop(f"inv{i}.edi", x12(TEMPLATE, 600 + i, tag=f"t{i}"), "medsupply")
    real = svc.processor.process_batch
    held: list[int] = []

    def then_stop(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        held.extend(r.id for r in kwargs["claim"].rows)
        svc.stopping.set()  # SIGTERM as this batch ends
        return out

    monkeypatch.setattr(svc.processor, "process_batch", then_stop)
    daemon = threading.Thread(target=svc.run_forever, name="gateway run", daemon=True)
    daemon.start()
    daemon.join(timeout=30)
    assert not daemon.is_alive(), "run_forever did not stop"
    statuses = sorted(svc.store.get_file(f.id).status for f in svc.store.list_files(limit=10))
    assert statuses == ["processed", "processed", "received", "received"]
    assert len(held) == 2 and svc.claimed.rows == []
    for file_id in held:
        row = svc.store.get_file(file_id)
        assert (row.status, row.lease_owner) == ("received", None)
        assert svc.store.events_for("file", file_id)[-1].reason == "worker stopping before the batch started"
    svc.store.close()
