"""The ledger side of acknowledgment tracking, on SQLite and PostgreSQL: tracking is idempotent, the clock
starts at recording when nothing delivers, an acknowledgment is applied once, a TA1 after the 997 keeps
the 997's answer, overdue sets are flagged once."""

from __future__ import annotations

import json
from datetime import timedelta

from storekit import (  # noqa: F401 - pytest fixtures
    FakeClock,
    archive_fixture,
    clock_fixture,
    db_url_fixture,
    pg_admin_fixture,
    store_fixture,
)

from gateway.partners.profile import PartnerDirectory
from gateway.runtime.acks import AckCheck, AckTracker
from gateway.store import Archive, Store
from gateway.store.acks import AckToMatch
from gateway.x12.ack.match import reconcile
from gateway.x12.ack.read import FunctionalAck, TA1Ack, ack_dict
from gateway.x12.ack.sent import SentSet
from gateway.x12.schema.catalog import Catalog


def inbound(store: Store, document_id: int, ack: FunctionalAck | TA1Ack) -> AckToMatch:
    return AckToMatch({
        "id": document_id, "file_id": None, "partner_id": "medsupply", "canonical": json.dumps(ack_dict(ack)),
        "received_at": store._now(), "correlation_id": "c",
    })  # fmt: skip


def test_tracking_matching_and_deadlines(store: Store, archive: Archive, clock: FakeClock) -> None:
    sha = archive.put(b"ISA...")
    row = store.add_outbound("medsupply", "850", sha, control_number="000000041", group_control_number="41",
                             expected_ack="pending")  # fmt: skip
    assert [r.id for r in store.outbound_to_track()] == [row.id]
    sets = [(SentSet("000000041", "PO", "41", "004010", "850", f"000{n}"), 3600) for n in (1, 2)]
    assert store.track_sets(row, sets) == 2
    assert store.track_sets(row, sets) == 0 and store.outbound_to_track() == []
    assert store.start_ack_clocks() == 2
    assert store.get_outbound(row.id).ack_due_at == clock.now + timedelta(hours=1)

    accept = FunctionalAck("997", "000000900", "0001", "PO", "41", "004010", "A", sets=[])
    first = inbound(store, 9001, accept)
    rec = store.match_ack(first, lambda owed: reconcile(accept, owed, clock.now))
    assert rec is not None and rec.outcome == "matched"
    assert store.match_ack(first, lambda owed: reconcile(accept, owed, clock.now)) is None  # applied once
    ta1 = TA1Ack("000000901", "000000041", "261124", "0800", "A", "000")
    store.match_ack(inbound(store, 9002, ta1), lambda owed: reconcile(ta1, owed, clock.now))
    rows = store.list_owed_acks(outbound_id=row.id)
    assert {(r["status"], r["ack_document_id"], r["ta1_code"]) for r in rows} == {("accepted", 9001, "A")}
    assert store.get_outbound(row.id).expected_ack == "accepted"

    other = store.add_outbound("medsupply", "850", sha, control_number="000000042", group_control_number="42",
                               expected_ack="pending")  # fmt: skip
    store.track_sets(other, [(SentSet("000000042", "PO", "42", "004010", "850", "0001"), 60)])
    store.start_ack_clocks()
    clock.advance(61)
    overdue = store.mark_overdue()
    assert [r["outbound_id"] for r in overdue] == [other.id] and store.mark_overdue() == []
    assert store.get_outbound(other.id).expected_ack == "overdue"
    assert store.owed_ack_counts() == {"accepted": 2, "overdue": 1}
    assert any(e.to_status == "ack_overdue" for e in store.events_for("outbound", other.id))


def test_an_acknowledgment_that_cannot_be_read_back_is_reported_once(
    store: Store, archive: Archive, catalog: Catalog
) -> None:
    tracker = AckTracker(store, archive, PartnerDirectory([]), catalog)
    broken = AckToMatch({"id": 77, "file_id": None, "partner_id": "medsupply", "canonical": json.dumps({"kind": "TA1"}),
                         "received_at": store._now(), "correlation_id": "c"})  # fmt: skip
    out = AckCheck()
    (rec,) = tracker.match([broken], out)
    assert rec is not None and rec.outcome == "unmatched" and "cannot be read back" in rec.summary
    assert out.problems and out.unmatched == 1
    assert tracker.match([broken], AckCheck()) == [None]  # recorded: not read again
    assert store.list_ack_receipts(outcome=["unmatched"])[0]["document_id"] == 77
