"""Recording files, leasing them to workers, lease expiry, release and finishing."""

from __future__ import annotations

import pytest
from storekit import (  # noqa: F401 (pytest fixtures)
    FakeClock,
    clock_fixture,
    db_url_fixture,
    pg_admin_fixture,
    record,
    sha,
    store_fixture,
)

from gateway.store import (
    InvalidDigestError,
    LeaseError,
    NotFoundError,
    Store,
    StoreValueError,
    TransitionError,
)
from gateway.store.results import FilePlan


def test_record_file(store: Store, clock: FakeClock) -> None:
    row = store.record_file(sha(1), 42, "po.edi", "inbox:acme/po.edi", "acme", "x12")
    assert (row.status, row.attempts, row.lease_owner, row.parent_id) == ("received", 0, None, None)
    assert row.received_at == clock.now and row.received_at.tzinfo is not None
    assert len(row.correlation_id) == 36
    assert store.get_file(row.id) == row
    [event] = store.events_for("file", row.id)
    assert (event.action, event.from_status, event.to_status) == ("create", None, "received")
    assert event.details == {"origin": "inbox:acme/po.edi", "parent_id": None, "sha256": sha(1), "size": 42}
    assert event.correlation_id == row.correlation_id


def test_record_file_refuses_bad_values(store: Store) -> None:
    with pytest.raises(StoreValueError, match="file format 'edifact' is not one of"):
        store.record_file(sha(1), 1, "a", "b", None, "edifact")
    with pytest.raises(StoreValueError, match="file status"):
        store.record_file(sha(1), 1, "a", "b", None, "x12", status="lost")
    with pytest.raises(TransitionError, match="claim it"):
        store.record_file(sha(1), 1, "a", "b", None, "x12", status="processing")
    with pytest.raises(InvalidDigestError):
        store.record_file("../etc/passwd", 1, "a", "b", None, "x12")
    with pytest.raises(NotFoundError):
        store.record_file(sha(1), 1, "a", "b", None, "x12", parent_id=999)
    assert store.list_files() == []


def test_claim_leases_oldest_first(store: Store, clock: FakeClock) -> None:
    ids = []
    for n in range(5):
        ids.append(record(store, n))
        clock.advance(1)
    first = store.claim_files("w1", 2, lease_seconds=60)
    assert [f.id for f in first] == ids[:2]
    for row in first:
        assert (row.status, row.lease_owner, row.attempts) == ("processing", "w1", 1)
        assert row.lease_expires_at is not None and (row.lease_expires_at - clock.now).total_seconds() == 60
    second = store.claim_files("w2", 10, lease_seconds=60)
    assert [f.id for f in second] == ids[2:]
    assert store.claim_files("w3", 10, lease_seconds=60) == []
    [_, claim] = store.events_for("file", ids[0])
    assert (claim.action, claim.from_status, claim.to_status, claim.actor) == ("claim", "received", "processing", "w1")


def test_expired_lease_is_taken_over(store: Store, clock: FakeClock) -> None:
    file_id = record(store)
    store.claim_files("dead", 1, lease_seconds=30)
    clock.advance(29)
    assert store.claim_files("w2", 1, lease_seconds=30) == []
    clock.advance(2)
    [row] = store.claim_files("w2", 1, lease_seconds=30)
    assert (row.id, row.lease_owner, row.attempts) == (file_id, "w2", 2)
    reclaim = store.events_for("file", file_id)[-1]
    assert (reclaim.action, reclaim.from_status, reclaim.reason) == ("reclaim", "processing", "lease of dead expired")
    # The slow worker comes back: it can neither renew nor finish the file.
    with pytest.raises(LeaseError, match="leased by 'w2'"):
        store.renew_lease(file_id, "dead", 30)
    with pytest.raises(LeaseError):
        store.set_file_status(file_id, "processed", worker="dead")
    assert store.set_file_status(file_id, "processed", worker="w2").status == "processed"


def test_renew_lease(store: Store, clock: FakeClock) -> None:
    file_id = record(store)
    store.claim_files("w1", 1, lease_seconds=30)
    clock.advance(25)
    renewed = store.renew_lease(file_id, "w1", 30)
    assert renewed.lease_expires_at is not None and (renewed.lease_expires_at - clock.now).total_seconds() == 30
    clock.advance(25)
    assert store.claim_files("w2", 1, lease_seconds=30) == []


def test_release_puts_the_file_back(store: Store) -> None:
    file_id = record(store)
    store.claim_files("w1", 1, lease_seconds=30)
    with pytest.raises(LeaseError):
        store.release(file_id, "w2")
    row = store.release(file_id, "w1", reason="shutting down")
    assert (row.status, row.lease_owner, row.lease_expires_at) == ("received", None, None)
    [again] = store.claim_files("w2", 1, lease_seconds=30)
    assert (again.id, again.attempts) == (file_id, 2)
    actions = [e.action for e in store.events_for("file", file_id)]
    assert actions == ["create", "claim", "release", "claim"]


def test_only_the_lease_owner_finishes_a_leased_file(store: Store) -> None:
    file_id = record(store)
    store.claim_files("w1", 1, lease_seconds=30)
    with pytest.raises(LeaseError, match="not no worker"):
        store.set_file_status(file_id, "failed", "operator")
    with pytest.raises(LeaseError, match="not worker 'w2'"):
        store.set_file_status(file_id, "failed", "boom", worker="w2")
    row = store.set_file_status(file_id, "partial", "1 of 2 sets rejected", worker="w1", details={"rejected": 1})
    assert (row.status, row.reason, row.lease_owner, row.lease_expires_at) == (
        "partial",
        "1 of 2 sets rejected",
        None,
        None,
    )
    event = store.events_for("file", file_id)[-1]
    assert (event.from_status, event.to_status, event.actor, event.details) == (
        "processing",
        "partial",
        "w1",
        {"rejected": 1},
    )


def test_file_state_machine(store: Store) -> None:
    file_id = record(store)
    with pytest.raises(TransitionError, match="claim_files"):
        store.set_file_status(file_id, "processing")
    with pytest.raises(TransitionError, match="received -> processed is not allowed"):
        store.set_file_status(file_id, "processed")
    with pytest.raises(LeaseError, match="holds no lease"):
        store.set_file_status(file_id, "held", worker="w1")
    assert store.set_file_status(file_id, "held", "unknown partner").status == "held"
    assert store.claim_files("w1", 1, lease_seconds=30) == []  # held files are not claimed
    assert store.set_file_status(file_id, "received", "partner added").status == "received"
    store.claim_files("w1", 1, lease_seconds=30)
    store.set_file_status(file_id, "processed", worker="w1")
    with pytest.raises(TransitionError, match="nothing \\(final\\)"):
        store.set_file_status(file_id, "received")
    with pytest.raises(NotFoundError):
        store.set_file_status(999, "held")


def test_max_attempts_quarantines_a_file_that_keeps_killing_workers(store: Store, clock: FakeClock) -> None:
    file_id = record(store)
    for n in range(3):
        assert [f.id for f in store.claim_files(f"w{n}", 1, lease_seconds=10, max_attempts=3)] == [file_id]
        clock.advance(11)
    assert store.claim_files("w9", 1, lease_seconds=10, max_attempts=3) == []
    row = store.get_file(file_id)
    assert (row.status, row.attempts, row.lease_owner) == ("quarantined", 3, None)
    assert "after 3 attempts" in (row.reason or "")


def test_max_attempts_counts_deaths_not_releases(store: Store, clock: FakeClock) -> None:
    """A file released four times (worker stopping, store down) and then orphaned once has died once."""
    file_id = record(store)
    for n in range(4):
        (row,) = store.claim_files(f"w{n}", 1, lease_seconds=10, max_attempts=2)
        store.release(row.id, f"w{n}", "worker stopping")
    assert [f.id for f in store.claim_files("dies", 1, lease_seconds=10, max_attempts=2)] == [file_id]
    clock.advance(11)
    (again,) = store.claim_files("next", 1, lease_seconds=10, max_attempts=2)
    assert (again.id, again.attempts, again.status) == (file_id, 6, "processing"), "one death is not two"
    clock.advance(11)
    assert store.claim_files("last", 1, lease_seconds=10, max_attempts=2) == []
    row = store.get_file(file_id)
    assert row.status == "quarantined" and "died 2 times" in (row.reason or ""), row.reason


def test_a_file_whose_results_are_committed_is_never_quarantined(store: Store, clock: FakeClock) -> None:
    """Its workers died after the results commit: the next owner only writes its outputs, so it is handed out."""
    file_id = record(store)
    for n in range(3):
        assert [f.id for f in store.claim_files(f"w{n}", 1, lease_seconds=10, max_attempts=2)] == [file_id]
        if n == 0:
            store.record_batch(f"w{n}", [FilePlan(file_id=file_id, partner_id="acme")])
        clock.advance(11)
    assert store.get_file(file_id).results_at is not None
    assert [f.id for f in store.claim_files("w9", 1, lease_seconds=10, max_attempts=2)] == [file_id]


def test_claim_arguments(store: Store) -> None:
    record(store)
    assert store.claim_files("w1", 0, lease_seconds=10) == []
    with pytest.raises(StoreValueError):
        store.claim_files("", 1, lease_seconds=10)
    with pytest.raises(StoreValueError):
        store.claim_files("w1", 1, lease_seconds=0)


def test_listings_and_counts(store: Store, clock: FakeClock) -> None:
    a = record(store, 1)
    clock.advance(1)
    b = record(store, 2, partner_id="medline")
    clock.advance(1)
    c = record(store, 3, status="duplicate")
    assert [f.id for f in store.list_files()] == [c, b, a]
    assert [f.id for f in store.list_files(status="received")] == [b, a]
    assert [f.id for f in store.list_files(partner="medline")] == [b]
    assert [f.id for f in store.list_files(limit=1, before_id=c)] == [b]
    oldest = store.oldest_pending()
    assert oldest is not None and oldest.id == a
    store.claim_files("w1", 1, lease_seconds=10)
    oldest = store.oldest_pending()
    assert oldest is not None and (oldest.id, oldest.status) == (a, "processing")
    assert store.counts_by_status()["files"] == {"duplicate": 1, "processing": 1, "received": 1}
    assert store.counts_by_status()["documents"] == {}
    found = store.find_file_by_sha(sha(2))
    assert found is not None and found.id == b
    assert store.find_file_by_sha(sha(99)) is None


def test_find_intake_finds_the_same_drop_only(store: Store) -> None:
    first = store.record_file(sha(1), 1, "po.edi", "inbox:acme/po.edi#1", "acme", "x12")
    resend = store.record_file(sha(1), 1, "po.edi", "inbox:acme/po.edi#2", "acme", "x12")
    assert store.find_intake(sha(1), "inbox:acme/po.edi#1") == first
    assert store.find_intake(sha(1), "inbox:acme/po.edi#2") == resend
    assert store.find_intake(sha(1), "inbox:acme/po.edi#3") is None
    found = store.find_file_by_sha(sha(1))
    assert found is not None and found.id == first.id
