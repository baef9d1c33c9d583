"""Leases and reruns in-process, with the interleavings forced: what a slow or stale worker must not do.

The crash and multi-worker tests find these by chance; here each is made
to happen, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Home,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    workspace_fixture,
    x12,
)

from gateway.runtime.process import Processor
from gateway.runtime.service import Service
from gateway.store import FileRow, Store
from gateway.store.deliveries import AttemptResult
from gateway.store.statuses import DeliveryOutcome
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace
from gateway.x12.validate.report import InterchangeReport

TEMPLATE = PARTNERS / "medsupply/cases/810-invoice.edi"


def received(home: Home, service: Service, *drops: tuple[str, bytes]) -> list[int]:
    """Drop files and take them into the ledger (status received), without processing them."""
    for name, data in drops:
        home.drop(name, data, "medsupply")
        time.sleep(0.01)  # distinct mtimes: taken in drop order
    service.inbox.scan()
    assert service.take_ready() == len(drops)
    return [f.id for f in sorted(service.store.list_files(status="received", limit=100), key=lambda f: f.id)]


def processor(service: Service, worker: str, lease_seconds: float | None = None) -> Processor:
    """Another worker's processor on the same store, archive and outbox."""
    return Processor(
        service.store,
        service.archive,
        service.processor.translator,
        outbox=service.deployment.path("outbox"),
        worker=worker,
        clock=lambda: datetime.now(UTC),
        lease_seconds=lease_seconds,
        deliverer=service.deliverer.for_worker(worker),
    )


@pytest.fixture(name="service")
def service_fixture(store_url: str, tmp_path: Path, workspace: Workspace) -> Iterator[tuple[Home, Service]]:
    home = make_home(tmp_path, store_url, stable_seconds=0)
    service = home.service(workspace, worker="w1")
    yield home, service
    service.store.close()


def test_a_worker_whose_lease_expired_does_not_process_the_files_taken_over(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """w1 claimed a batch, stalled past its lease, other took the files: w1 must not process them too."""
    home, svc = service
    ids = received(home, svc, ("a.edi", x12(TEMPLATE, 501, tag="a")), ("b.edi", x12(TEMPLATE, 502, tag="b")))
    stale = svc.store.claim_files("w1", 5, 0.2)
    time.sleep(0.3)
    with Store(home.store_url) as other:
        taken_over = other.claim_files("other", 5, 30) + other.claim_files("other", 5, 30)  # expired: one at a time
        assert sorted(r.id for r in taken_over) == ids
    monkeypatch.setattr(svc.store, "claim_files", lambda *args, **kwargs: stale)
    assert svc.process_claimed() == 0
    for file_id in ids:
        tree = svc.store.file_tree(file_id)
        assert (tree.file.status, tree.file.lease_owner, tree.interchanges) == ("processing", "other", ())
    assert home.canonical() == {} and home.acks() == {}


def test_a_worker_killed_after_recording_results_is_finished_from_the_ledger(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """w1 recorded A's results (document, 997 with its control number) and died before writing anything:
    w2 writes the same outputs from the ledger and finishes A, drawing no new number and redoing nothing."""
    home, svc = service
    (a_id,) = received(home, svc, ("a.edi", x12(TEMPLATE, 531)))
    (first,) = svc.store.claim_files("w1", 1, 0.2)

    def die(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed after the results commit")

    with monkeypatch.context() as patch:
        patch.setattr(Processor, "_publish", die)
        with pytest.raises(KeyboardInterrupt):
            processor(svc, "w1").process(first)
    row = svc.store.get_file(a_id)
    assert row.status == "processing" and row.results_at is not None
    assert home.canonical() == {} and home.acks() == {}, "nothing is written before its commit... and the kill"
    (recorded,) = svc.store.list_outbound(file_id=a_id)
    time.sleep(0.3)
    (rerun,) = svc.store.claim_files("w2", 1, 30)
    outcome = processor(svc, "w2").process(rerun)
    assert (outcome.status, outcome.documents, outcome.acks) == (
        "processed",
        1,
        [f"medsupply 997 {recorded.control_number}"],
    )
    assert svc.store.list_outbound(file_id=a_id) == [recorded], "the rerun drew a new ack"
    assert list(home.acks()) == [f"medsupply/997-{recorded.control_number}.x12"]
    assert list(home.canonical()) == [f"medsupply/invoice-{a_id}-1.json"]
    actions = [e.action for e in svc.store.events_for("file", a_id)]
    assert actions == ["create", "claim", "reclaim", "status"], "redone instead of finished from the ledger"


def recorded_by_a_dead_worker(home: Home, svc: Service, monkeypatch: pytest.MonkeyPatch, isa13: int) -> int:
    """A file whose results (and deliveries, leased to w1 for 0.2 s) w1 recorded before it was killed."""
    (a_id,) = received(home, svc, ("a.edi", x12(TEMPLATE, isa13)))
    (first,) = svc.store.claim_files("w1", 1, 0.2)

    def die(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed after the results commit")

    with monkeypatch.context() as patch:
        patch.setattr(Processor, "_publish", die)
        with pytest.raises(KeyboardInterrupt):
            processor(svc, "w1", lease_seconds=0.2).process(first)
    return a_id


def test_a_rerun_leaves_a_delivery_another_live_worker_holds(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """w1 recorded A's results and died; w3 then leased one of A's deliveries (their leases had run out)
    and is sending it: w2, finishing A from the ledger, takes the dead w1's deliveries, not w3's."""
    home, svc = service
    a_id = recorded_by_a_dead_worker(home, svc, monkeypatch, 532)
    owed = sorted(svc.store.list_deliveries(file_id=a_id), key=lambda d: d.id)
    assert len(owed) >= 2 and {d.lease_owner for d in owed} == {"w1"}
    time.sleep(0.3)
    (held,) = svc.store.claim_deliveries("w3", 1, 30, ids=[owed[0].id])
    (rerun,) = svc.store.claim_files("w2", 1, 30)
    assert rerun.previous_owner == "w1"
    processor(svc, "w2").process(rerun)
    after = {d.id: d for d in svc.store.list_deliveries(file_id=a_id)}
    assert (after[held.id].status, after[held.id].lease_owner) == ("pending", "w3"), "w3's delivery was taken"
    assert {after[d.id].status for d in owed[1:]} == {"delivered"}, "the dead worker's deliveries were left"


def test_an_attempt_is_recorded_only_while_the_delivery_is_as_its_worker_leased_it(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt's rows are made from the delivery as its worker leased it, before the transaction: a
    worker whose lease ran out (another leased and tried it meanwhile) records nothing, even once it holds
    the delivery again, since the row it started from is stale."""
    home, svc = service
    a_id = recorded_by_a_dead_worker(home, svc, monkeypatch, 533)
    delivery = min(svc.store.list_deliveries(file_id=a_id), key=lambda d: d.id)
    time.sleep(0.3)
    (stale,) = svc.store.claim_deliveries("w3", 1, 0.2, ids=[delivery.id])
    time.sleep(0.3)
    (taken,) = svc.store.claim_deliveries("w4", 1, 30, ids=[delivery.id])
    now = datetime.now(UTC)
    delivered = AttemptResult(delivery.id, DeliveryOutcome.DELIVERED, now, now)
    assert svc.store.record_attempts("w3", [delivered], {delivery.id: stale}) == [delivery.id], "w4 holds it"
    retry = AttemptResult(delivery.id, DeliveryOutcome.RETRY, now, now, "503", retry_at=now)
    assert svc.store.record_attempts("w4", [retry], {delivery.id: taken}) == []
    (again,) = svc.store.claim_deliveries("w3", 1, 30, ids=[delivery.id])
    assert (again.attempts, again.lease_owner) == (1, "w3")
    assert svc.store.record_attempts("w3", [delivered], {delivery.id: stale}) == [delivery.id], "a stale row"
    row = svc.store.get_delivery(delivery.id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "503")
    assert [a["worker"] for a in svc.store.delivery_attempts(delivery.id)] == ["w4"]
    assert svc.store.record_attempts("w3", [delivered], {delivery.id: again}) == []
    assert svc.store.get_delivery(delivery.id).status == "delivered"


def test_a_delivery_claimed_while_its_attempt_is_recorded_is_either_lost_or_not_taken(
    service: tuple[Home, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL writes run side by side: w3's lease ran out while it tried a delivery, and w4 claims it
    just as w3 records its attempt (after w3 read which leases hold, before its rows are written). Either
    w3's attempt is reported lost or w4 cannot take the delivery; never both go on (w4 sends it again and
    w3's update wipes w4's lease)."""
    home, svc = service
    if svc.store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    a_id = recorded_by_a_dead_worker(home, svc, monkeypatch, 534)
    delivery = min(svc.store.list_deliveries(file_id=a_id), key=lambda d: d.id)
    time.sleep(0.3)
    (stale,) = svc.store.claim_deliveries("w3", 1, 0.2, ids=[delivery.id])
    time.sleep(0.3)  # w3's lease ran out; nobody took it yet
    taken: list[int] = []

    def claim() -> None:
        taken.extend(r.id for r in svc.store.claim_deliveries("w4", 1, 30, ids=[delivery.id]))

    claimer = threading.Thread(target=claim)

    def meanwhile(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DELIVERY_ATTEMPTS") and claimer.ident is None:
            claimer.start()
            claimer.join(timeout=10)  # SKIP LOCKED: never waits for w3's transaction

    engine = svc.store.database.engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        now = datetime.now(UTC)
        delivered = AttemptResult(delivery.id, DeliveryOutcome.DELIVERED, now, now)
        lost = svc.store.record_attempts("w3", [delivered], {delivery.id: stale})
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", meanwhile)
    claimer.join(timeout=10)
    assert claimer.ident is not None, "w3 recorded no attempt row"
    assert not (taken and lost == []), "w4 took a delivery w3 recorded as delivered: it is sent again"


class DieOnSecondInterchange:
    """A translator whose worker is killed when it reaches the file's second interchange."""

    def __init__(self, inner: Translator) -> None:
        self.inner = inner
        self.partners = inner.partners

    def translate(self, data: bytes, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        seen = 0
        for item in self.inner.translate(data, info):
            if isinstance(item, InterchangeReport):
                seen += 1
                if seen == 2:
                    raise KeyboardInterrupt("killed in the second interchange")
            yield item


def test_a_rerun_whose_invoice_was_taken_meanwhile_owes_it_no_new_delivery(service: tuple[Home, Service]) -> None:
    """A big file is recorded in chunks: A's first chunk (invoice X) was recorded and delivered, then the
    worker died. The rerun's reset freed X and B, same invoice, took it: A's invoice is now the duplicate
    and owes no new delivery. What was delivered stays delivered (a delivery is never withdrawn: the
    receiver has it), and it keeps its one delivery row and key."""
    home, svc = service
    a_data = x12(TEMPLATE, 541) + x12(TEMPLATE, 542, tag="y")  # two interchanges: invoice X, then Y
    a_id, b_id = received(home, svc, ("a.edi", a_data), ("b.edi", x12(TEMPLATE, 543)))
    (first,) = svc.store.claim_files("w1", 1, 0.2)
    assert first.id == a_id
    dying = processor(svc, "w1")
    dying.chunk_sets = 1
    dying.translator = DieOnSecondInterchange(svc.processor.translator)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        dying.process(first)
    assert list(home.canonical()) == [f"medsupply/invoice-{a_id}-1.json"], "the first chunk's JSON was written"
    time.sleep(0.3)
    (rerun,) = svc.store.claim_files("w2", 1, 30)
    assert (rerun.id, rerun.attempts) == (a_id, 2)
    svc.store.reset_file_children(a_id, "w2", "rerun")  # w2 resets A ...
    (b_row,) = svc.store.claim_files("w3", 1, 30)  # ... and before it redoes A, w3 processes B
    assert processor(svc, "w3").process(b_row).status == "processed"
    outcome = processor(svc, "w2").process(rerun)
    assert (outcome.status, outcome.documents, outcome.duplicates) == ("processed", 1, 1)
    written = home.canonical()
    assert sorted(written) == [
        f"medsupply/invoice-{a_id}-1.json",
        f"medsupply/invoice-{a_id}-2.json",
        f"medsupply/invoice-{b_id}-1.json",
    ], written.keys()
    assert written[f"medsupply/invoice-{b_id}-1.json"]["invoice_number"] == "INV-0042377"
    to_json = svc.store.list_deliveries(file_id=a_id, destination="canonical-json")
    assert len(to_json) == 2 and {d.status for d in to_json} == {"delivered"}, to_json


class SlowTranslator:
    """A translator that takes ``delay`` seconds per set: a long file."""

    def __init__(self, inner: Translator, delay: float) -> None:
        self.inner = inner
        self.partners = inner.partners
        self.delay = delay

    def translate(self, data: bytes, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        for item in self.inner.translate(data, info):
            time.sleep(self.delay)
            yield item


def test_a_long_file_keeps_its_lease(service: tuple[Home, Service]) -> None:
    """A file that takes longer than the lease is not taken over while its worker is alive and working."""
    home, svc = service
    (file_id,) = received(home, svc, ("long.edi", x12(TEMPLATE, 521, sets=12, tag="long")))
    # 12 sets of 0.25 s: 3 s, two leases of 1.5 s, renewed every 0.5 s. (Leases of 0.6 s renewed every 0.2 s
    # left 0.4 s between the last renewal and the results' lease check: CI's loaded PostgreSQL took longer.)
    (row,) = svc.store.claim_files("w1", 1, 1.5)
    slow = processor(svc, "w1", lease_seconds=1.5)
    slow.translator = SlowTranslator(svc.processor.translator, 0.25)  # type: ignore[assignment]
    stolen: list[FileRow] = []
    done = threading.Event()

    def steal() -> None:
        with Store(home.store_url) as other:
            while not done.is_set():
                stolen.extend(other.claim_files("thief", 5, 30))
                time.sleep(0.05)

    thief = threading.Thread(target=steal)
    thief.start()
    started = time.monotonic()
    try:
        outcome = slow.process(row)
    finally:
        done.set()
        thief.join()
    assert time.monotonic() - started > 3.0, "the file took longer than two leases"
    assert stolen == [] and outcome.status == "processed" and outcome.documents == 12
    assert [e.action for e in svc.store.events_for("file", file_id)] == ["create", "claim", "status"]
