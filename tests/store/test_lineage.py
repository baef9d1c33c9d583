"""A file's tree (interchanges, groups, sets, documents), events on every transition, resets, outbound."""

from __future__ import annotations

from datetime import datetime, timedelta

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
    LeaseError,
    NotFoundError,
    Store,
    StoreValueError,
    TransitionError,
)

ERROR = {"code": "X12-V201", "segment_id": "BAK", "segment_index": 2, "element": 3, "message": "mandatory"}


def _x12_tree(store: Store, file_id: int) -> dict[str, int]:
    """ISA → GS → two 855s (one rejected) → one document; returns the ids."""
    ic = store.add_interchange(
        file_id,
        sender_qualifier="ZZ",
        sender_id="MEDSUPPLY",
        receiver_qualifier="ZZ",
        receiver_id="MERCYHOSP",
        control_number="000000201",
        version="00401",
        status="accepted",
    )
    group = store.add_group(ic.id, functional_id="PR", control_number="201", version="004010", status="received")
    good = store.add_set(group.id, set_id="855", control_number="0001", status="accepted")
    bad = store.add_set(group.id, set_id="855", control_number="0002", status="rejected", errors=[ERROR])
    doc = store.add_document(
        file_id, doc_type="po_acknowledgment", canonical='{"po_number": "4500012345"}', transaction_set_id=good.id
    )
    return {"interchange": ic.id, "group": group.id, "good": good.id, "bad": bad.id, "document": doc.id}


def test_file_tree(store: Store) -> None:
    file_id = record(store)
    ids = _x12_tree(store, file_id)
    csv_doc = store.add_document(file_id, doc_type="invoice", canonical="{}", business_key="INV-1")
    tree = store.file_tree(file_id)
    assert tree.file.id == file_id and tree.ancestors == () and tree.children == ()
    [ic] = tree.interchanges
    assert (ic.row.id, ic.row.position, ic.row.control_number, ic.row.test) == (
        ids["interchange"],
        1,
        "000000201",
        False,
    )
    [group] = ic.groups
    assert [s.row.control_number for s in group.sets] == ["0001", "0002"]
    assert [s.row.position for s in group.sets] == [1, 2]
    good, bad = group.sets
    assert [d.id for d in good.documents] == [ids["document"]] and bad.documents == ()
    assert bad.row.errors == [ERROR]
    assert [d.id for d in tree.documents] == [csv_doc.id]
    assert [d.id for d in tree.all_documents()] == [ids["document"], csv_doc.id]
    assert csv_doc.partner_id == "acme"  # inherited from the file
    assert csv_doc.position == 2


def test_reprocess_lineage(store: Store) -> None:
    original = record(store, 1)
    store.claim_files("w1", 1, lease_seconds=10)
    store.set_file_status(original, "processed", worker="w1")
    first = record(store, 1, parent_id=original)
    second = record(store, 1, parent_id=first)
    tree = store.file_tree(second)
    assert [f.id for f in tree.ancestors] == [first, original]
    assert [f.id for f in store.file_tree(original).children] == [first]
    doc = store.add_document(original, doc_type="invoice", canonical="{}")
    again = store.add_document(second, doc_type="invoice", canonical="{}", parent_id=doc.id)
    assert again.parent_id == doc.id
    with pytest.raises(NotFoundError):
        store.add_document(second, doc_type="invoice", canonical="{}", parent_id=999)


def test_every_transition_appends_one_event(store: Store, clock: FakeClock) -> None:
    file_id = record(store)
    ids = _x12_tree(store, file_id)
    clock.advance(5)
    store.set_status("group", ids["group"], "partially_accepted", "1 of 2 sets rejected")
    store.set_status("group", ids["group"], "partially_accepted", "again")  # no change: no event
    store.set_status("transaction_set", ids["good"], "translated", details={"map": "acme-855"}, actor="w1")
    store.set_status("document", ids["document"], "routed")
    group_events = store.events_for("group", ids["group"])
    assert [(e.action, e.from_status, e.to_status) for e in group_events] == [
        ("create", None, "received"),
        ("status", "received", "partially_accepted"),
    ]
    assert group_events[1].reason == "1 of 2 sets rejected" and group_events[1].at == clock.now
    [_, translated] = store.events_for("transaction_set", ids["good"])
    assert (translated.details, translated.actor) == ({"map": "acme-855"}, "w1")
    file_row = store.get_file(file_id)
    assert translated.correlation_id == file_row.correlation_id  # envelope events carry the file's id
    document = store.file_tree(file_id).interchanges[0].groups[0].sets[0].documents[0]
    assert document.status == "routed"
    assert store.events_for("document", ids["document"])[-1].correlation_id == document.correlation_id
    everything = store.events_for_file(file_id)
    assert [(e.entity_kind, e.action) for e in everything] == [
        ("file", "create"),
        ("interchange", "create"),
        ("group", "create"),
        ("transaction_set", "create"),
        ("transaction_set", "create"),
        ("document", "create"),
        ("group", "status"),
        ("transaction_set", "status"),
        ("document", "status"),
    ]
    assert [e.id for e in everything] == sorted(e.id for e in everything)


def test_set_status_on_a_file_goes_through_the_state_machine(store: Store) -> None:
    file_id = record(store)
    store.set_status("file", file_id, "held", "partner paused")
    assert store.get_file(file_id).status == "held"
    with pytest.raises(TransitionError):
        store.set_status("file", file_id, "processed")


def test_bad_values(store: Store) -> None:
    file_id = record(store)
    ids = _x12_tree(store, file_id)
    with pytest.raises(StoreValueError, match="group status 'translated' is not one of"):
        store.set_status("group", ids["group"], "translated")
    with pytest.raises(StoreValueError, match="entity kind"):
        store.set_status("widget", 1, "sent")
    with pytest.raises(NotFoundError):
        store.set_status("document", 999, "routed")
    with pytest.raises(NotFoundError):
        store.add_group(999, functional_id="PO", control_number="1", version="004010")
    other = record(store, 2)
    with pytest.raises(StoreValueError, match="belongs to file"):
        store.add_document(other, doc_type="x", canonical="{}", transaction_set_id=ids["good"])


def _half_process(store: Store, file_id: int) -> None:
    ids = _x12_tree(store, file_id)
    assert store.claim_key("isa13", "acme", "ZZ:MEDSUPPLY:000000201", "interchange", ids["interchange"]) is None
    assert store.claim_key("business", "acme", "855:4500012345", "document", ids["document"]) is None


def test_reset_lets_a_crashed_file_be_redone_without_duplicates(store: Store, clock: FakeClock) -> None:
    file_id = record(store)
    store.claim_files("w1", 1, lease_seconds=30)
    assert store.claim_key("bytes", None, sha(1), "file", file_id) is None
    _half_process(store, file_id)
    # w1 dies mid-way; w2 takes the file over after the lease expires and starts again.
    clock.advance(31)
    [row] = store.claim_files("w2", 1, lease_seconds=30)
    assert row.attempts == 2
    with pytest.raises(LeaseError):
        store.reset_file_children(file_id, worker="w1")
    deleted = store.reset_file_children(file_id, worker="w2")
    assert deleted == {
        "dedupe_keys": 2,
        "deliveries": 0,
        "documents": 1,
        "transaction_sets": 2,
        "groups": 1,
        "interchanges": 1,
    }
    tree = store.file_tree(file_id)
    assert tree.interchanges == () and tree.documents == ()
    # Redo: the file's own byte key is still its own; the keys of deleted rows are free again.
    assert store.claim_key("bytes", None, sha(1), "file", file_id) is None
    _half_process(store, file_id)
    store.set_file_status(file_id, "processed", worker="w2")
    assert len(list(store.file_tree(file_id).all_documents())) == 1
    assert store.counts_by_status()["documents"] == {"translated": 1}
    events = store.events_for_file(file_id)
    reset = [e for e in events if e.action == "reset"]
    assert len(reset) == 1 and reset[0].details == {"deleted": deleted} and reset[0].actor == "w2"
    assert sum(1 for e in events if e.entity_kind == "document") == 2  # the deleted one's events stay
    with pytest.raises(TransitionError, match="final"):
        store.reset_file_children(file_id)


def test_ids_are_not_reused_after_a_reset(store: Store) -> None:
    file_id = record(store)
    first = _x12_tree(store, file_id)
    store.reset_file_children(file_id)
    second = _x12_tree(store, file_id)
    assert all(second[k] > first[k] for k in first)


def test_outbound(store: Store, clock: FakeClock) -> None:
    file_id = record(store)
    due = clock.now + timedelta(hours=2)
    ack = store.add_outbound(
        "acme",
        "997",
        sha(7),
        control_number="000000001",
        group_control_number="1",
        file_id=file_id,
        expected_ack=None,
    )
    assert ack.correlation_id == store.get_file(file_id).correlation_id
    po = store.add_outbound("acme", "850", sha(8), control_number="000000002", expected_ack="pending", ack_due_at=due)
    assert po.ack_due_at == due and po.status == "created" and po.file_id is None
    assert [o.id for o in store.list_outbound(file_id=file_id)] == [ack.id]
    assert [o.id for o in store.list_outbound(expected_ack="pending")] == [po.id]
    assert [o.id for o in store.list_outbound(partner_id="acme")] == [po.id, ack.id]
    store.set_status("outbound", po.id, "sent")
    assert [e.to_status for e in store.events_for("outbound", po.id)] == ["created", "sent"]
    assert [e.entity_kind for e in store.events_for_file(file_id)] == ["file", "outbound"]
    with pytest.raises(StoreValueError, match="naive"):
        store.add_outbound("acme", "850", sha(9), ack_due_at=datetime(2026, 1, 1))
    with pytest.raises(StoreValueError, match="expected ack"):
        store.add_outbound("acme", "850", sha(9), expected_ack="maybe")
