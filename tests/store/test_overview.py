"""The overview's counts (``gateway status``, the dashboard): each destination's backlog, with "delivered"
counted ever or since a time (what keeps the dashboard quick on a big ledger; docs/performance.md); a
page's reads in one snapshot."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert
from storekit import START, clock_fixture, db_url_fixture, pg_admin_fixture, record, store_fixture  # noqa: F401

from gateway.store import Store
from gateway.store.errors import NotFoundError
from gateway.store.schema import deliveries

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
