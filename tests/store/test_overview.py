"""The overview's counts (``gateway status``, the dashboard): each destination's backlog, with "delivered"
counted ever or since a time (what keeps the dashboard quick on a big ledger; docs/performance.md); a
page's reads in one snapshot."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert
from storekit import START, clock_fixture, db_url_fixture, pg_admin_fixture, record, store_fixture  # noqa: F401

from gateway.store import Store
from gateway.store.errors import NotFoundError
from gateway.store.schema import deliveries, recon_exceptions
from gateway.store.search import MessageFilter

DAY = timedelta(days=1)


def _delivery(store: Store, destination: str, status: str, at: datetime, delivered: datetime | None = None) -> None:
    row = {"destination": destination, "doc_type": "invoice", "partner_id": "acme", "idempotency_key": str(uuid.uuid4()),
           "status": status, "attempts": 1, "next_attempt_at": at, "delivered_at": delivered,
           "correlation_id": str(uuid.uuid4()), "created_at": at, "updated_at": at}  # fmt: skip
    with store._db.write("add a delivery") as conn:
        conn.execute(insert(deliveries), [row])


def test_destinations_count_delivered_ever_or_since(store: Store) -> None:
    today = START.replace(hour=0)
    _delivery(store, "erp", "delivered", START - DAY, START - DAY)
    _delivery(store, "erp", "delivered", START - timedelta(hours=2), START - timedelta(hours=2))
    _delivery(store, "erp", "delivered", START - timedelta(hours=1), START - timedelta(hours=1))
    _delivery(store, "erp", "dead_letter", START - 3 * DAY)
    _delivery(store, "erp", "pending", START - timedelta(minutes=5))
    _delivery(store, "erp", "discarded", START - 9 * DAY)
    _delivery(store, "archive", "delivered", START - 30 * DAY, START - 30 * DAY)

    ever = {d["destination"]: d for d in store.destinations(START)}
    assert ever["erp"]["delivered"] == 3 and ever["archive"]["delivered"] == 1
    assert (ever["erp"]["dead_letter"], ever["erp"]["pending"], ever["erp"]["discarded"]) == (1, 1, 1)
    assert ever["erp"]["due"] == 1 and ever["erp"]["oldest_pending_seconds"] == 300.0

    since = {d["destination"]: d for d in store.destinations(START, today)}
    assert set(since) == {"erp"}  # nothing delivered or open at the archive since midnight
    assert since["erp"]["delivered"] == 2
    assert (since["erp"]["dead_letter"], since["erp"]["pending"], since["erp"]["discarded"]) == (1, 1, 1)


def test_a_snapshot_shares_one_read_transaction(store: Store, db_url: str) -> None:
    """Reads inside ``snapshot`` see the ledger as it was at the first of them (one transaction, one
    connection), whatever commits meanwhile; after the block, reads see the new rows again."""
    record(store, 1)
    with Store(db_url) as other:
        with store.snapshot("render a page"):
            before = len(store.list_files())
            record(other, 2)
            assert len(store.list_files()) == before == 1
            with store.snapshot("nested"):
                assert store.get_file(1).id == 1 and len(store.list_files()) == 1
        assert len(store.list_files()) == 2
    with pytest.raises(NotFoundError), store.snapshot("a missing row"):
        store.get_file(99)
    assert len(store.list_files()) == 2  # the snapshot's connection went back to the pool in good order


def test_search_by_control_number_finds_each_level(store: Store) -> None:
    """The dashboard's search by control number (one UNION of the documents each envelope level names):
    an ISA13 or GS06 names every document of its file, an ST02 its own set's document only; digits mean
    any level (17 is GS06 17 and ISA13 000000017)."""
    expected: dict[str, set[int]] = {"000000017": set(), "17": set(), "0002": set()}
    for n, (isa13, gs06) in enumerate((("000000017", "5"), ("000000018", "17"), ("000000019", "6")), 1):
        fid = record(store, n)
        ic = store.add_interchange(fid, sender_qualifier="ZZ", sender_id="ACME", receiver_qualifier="ZZ",
                                   receiver_id="US", control_number=isa13, version="00401")  # fmt: skip
        group = store.add_group(ic.id, functional_id="IN", control_number=gs06, version="004010")
        for st02 in ("0001", "0002"):
            st = store.add_set(group.id, set_id="810", control_number=st02)
            doc = store.add_document(fid, doc_type="invoice", canonical="{}", transaction_set_id=st.id)
            if isa13 == "000000017" or gs06 == "17":
                expected["000000017"].add(doc.id)
                expected["17"].add(doc.id)
            if st02 == "0002":
                expected["0002"].add(doc.id)
    for text, ids in expected.items():
        found = store.search_documents(MessageFilter(control=text, limit=10)).hits
        assert [h.id for h in found] == sorted(ids, reverse=True), text


def test_open_exceptions_by_partner_add_amounts_exactly(store: Store) -> None:
    """The amount at stake is the exact decimal sum of the open exceptions' text amounts (PostgreSQL adds
    them as numeric, SQLite's floats would not: Python adds there); settled ones and missing amounts add
    nothing."""
    rows = [("acme", "open", "0.10"), ("acme", "open", "0.20"), ("acme", "open", None), ("acme", "resolved", "5"),
            ("acme", "open", "1234567890123.45"), ("zeta", "open", "2.5"), ("zeta", "waived", "7")]  # fmt: skip
    with store._db.write("add exceptions") as conn:
        conn.execute(insert(recon_exceptions), [
            {"partner_id": p, "po_number": f"PO{i}", "key": f"k{i}", "kind": "price", "severity": "error",
             "status": s, "documents": "[]", "expected": "1", "actual": "2", "amount": a, "reason": "test",
             "created_at": START, "updated_at": START} for i, (p, s, a) in enumerate(rows)
        ])  # fmt: skip
    got = store.open_exceptions_by_partner()
    assert got == [{"partner": "acme", "open": 4, "at_stake": Decimal("1234567890123.75")},
                   {"partner": "zeta", "open": 1, "at_stake": Decimal("2.5")}]  # fmt: skip
    assert str(got[0]["at_stake"]) == "1234567890123.75"
