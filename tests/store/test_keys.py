"""Control-number sequences and dedupe keys with time windows."""

from __future__ import annotations

import pytest
from storekit import (  # noqa: F401 (pytest fixtures)
    FakeClock,
    clock_fixture,
    db_url_fixture,
    pg_admin_fixture,
    store_fixture,
)

from gateway.store import CONTROL_NUMBER_MAX, Store, StoreValueError


def test_sequences_count_from_one_per_partner_and_kind(store: Store) -> None:
    assert [store.next_value("acme", "isa13") for _ in range(3)] == [1, 2, 3]
    assert store.next_value("acme", "gs06") == 1
    assert store.next_value("medline", "isa13") == 1
    assert store.next_value("", "isa13") == 1
    assert store.next_value("acme", "isa13") == 4


def test_sequences_wrap_after_the_maximum(store: Store) -> None:
    store.set_sequence("acme", "isa13", CONTROL_NUMBER_MAX - 1)
    assert store.next_value("acme", "isa13") == CONTROL_NUMBER_MAX
    assert store.next_value("acme", "isa13") == 1
    assert [store.next_value("acme", "st02", maximum=3) for _ in range(5)] == [1, 2, 3, 1, 2]
    with pytest.raises(StoreValueError):
        store.next_value("acme", "", maximum=3)
    with pytest.raises(StoreValueError):
        store.next_value("acme", "isa13", maximum=0)


def test_claim_key_reports_the_first_user(store: Store) -> None:
    assert store.claim_key("business", "acme", "INV-1", "document", 1) is None
    dup = store.claim_key("business", "acme", "INV-1", "document", 2)
    assert dup is not None
    assert (dup.kind, dup.partner_id, dup.key, dup.first_entity_kind, dup.first_entity_id, dup.hits) == (
        "business",
        "acme",
        "INV-1",
        "document",
        1,
        1,
    )
    again = store.claim_key("business", "acme", "INV-1", "document", 3)
    assert again is not None and again.hits == 2
    # The first user claiming its own key again (a rerun) is not a duplicate.
    assert store.claim_key("business", "acme", "INV-1", "document", 1) is None
    # Keys are scoped by kind and partner.
    assert store.claim_key("business", "medline", "INV-1", "document", 4) is None
    assert store.claim_key("isa13", "acme", "INV-1", "interchange", 4) is None


def test_keys_without_a_partner(store: Store) -> None:
    assert store.claim_key("bytes", None, "ab" * 32, "file", 1) is None
    dup = store.claim_key("bytes", None, "ab" * 32, "file", 2)
    assert dup is not None and dup.partner_id is None and dup.first_entity_id == 1


def test_window(store: Store, clock: FakeClock) -> None:
    day = 86_400
    assert store.claim_key("isa13", "acme", "ZZ:MEDSUPPLY:000000905", "interchange", 1, window_seconds=day) is None
    clock.advance(day - 1)
    dup = store.claim_key("isa13", "acme", "ZZ:MEDSUPPLY:000000905", "interchange", 2, window_seconds=day)
    assert dup is not None and dup.first_entity_id == 1
    clock.advance(2)
    # Older than the window: a new interchange that reuses the number, not a duplicate.
    assert store.claim_key("isa13", "acme", "ZZ:MEDSUPPLY:000000905", "interchange", 3, window_seconds=day) is None
    dup = store.claim_key("isa13", "acme", "ZZ:MEDSUPPLY:000000905", "interchange", 4, window_seconds=day)
    assert dup is not None and (dup.first_entity_id, dup.seen_at, dup.hits) == (3, clock.now, 1)
    # Without a window a key is remembered for ever.
    clock.advance(10 * day)
    assert store.claim_key("isa13", "acme", "ZZ:MEDSUPPLY:000000905", "interchange", 5) is not None


def test_claim_key_arguments(store: Store) -> None:
    with pytest.raises(StoreValueError, match="dedupe key kind"):
        store.claim_key("po", "acme", "x", "document", 1)
    with pytest.raises(StoreValueError, match="entity kind"):
        store.claim_key("business", "acme", "x", "line", 1)
    with pytest.raises(StoreValueError, match="1 to 512"):
        store.claim_key("business", "acme", "x" * 513, "document", 1)
    with pytest.raises(StoreValueError, match="negative"):
        store.claim_key("business", "acme", "x", "document", 1, window_seconds=-1)


def test_draws_in_one_transaction_hand_out_what_next_value_would(store: Store) -> None:
    store.set_sequence("acme", "isa13", CONTROL_NUMBER_MAX - 2)
    with store.database.write("draw") as conn:
        draws = store.draws_on(conn)
        got = [draws.draw("acme", "isa13") for _ in range(4)] + [draws.draw("medline", "isa13")]
        draws.finish()
    assert got == [CONTROL_NUMBER_MAX - 1, CONTROL_NUMBER_MAX, 1, 2, 1]
    assert store.next_value("acme", "isa13") == 3  # the last drawn value was written back
    assert store.next_value("medline", "isa13") == 2


def test_draws_rolled_back_hand_out_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.database.write("draw") as conn:
        draws = store.draws_on(conn)
        draws.draw("acme", "isa13")
        draws.draw("acme", "isa13")
        draws.finish()
        raise RuntimeError("the batch failed")
    assert store.next_value("acme", "isa13") == 1
