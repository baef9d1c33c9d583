"""The reconciliation index and the exceptions' life in the store, on SQLite and PostgreSQL: documents
indexed past a cursor (and one committed late, below it), sent orders, a document that resolves an
exception, one that brings it back, an operator's decision that stays, an event for every change."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, insert
from storekit import FakeClock, clock_fixture, db_url_fixture, pg_admin_fixture, store_fixture  # noqa: F401

from gateway.runtime.recon import Reconciler
from gateway.store import Store
from gateway.store.schema import documents, files

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
LINE = {"line_number": "1", "quantity": {"value": "40", "uom": "BX"}, "item": {"vendor_part": "GLV-M"}}
ORDER = {"document_type": "purchase_order", "po_number": "PO1", "order_date": "2026-11-02",
         "lines": [{**LINE, "unit_price": {"amount": "11.95"}}]}  # fmt: skip


def _invoice(number: str, price: str, credit: bool = False) -> dict[str, Any]:
    line = {**LINE, "unit_price": {"amount": price}}
    return {"document_type": "invoice", "invoice_number": number, "invoice_date": "2026-11-06",
            "po_number": "PO1", "credit_memo": credit, "lines": [line]}  # fmt: skip


def _add(db_url: str, clock: FakeClock, *docs: dict[str, Any], doc_id: int | None = None) -> None:
    clock.advance(3600)
    at = clock()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        file_id = conn.execute(
            insert(files).returning(files.c.id),
            {"sha256": "0" * 64, "size": 0, "name": "x", "origin": "x", "partner_id": "medsupply", "format": "x12",
             "status": "processed", "correlation_id": str(uuid.uuid4()), "received_at": T0, "updated_at": T0,
             "attempts": 1},
        ).scalar_one()  # fmt: skip
        for i, doc in enumerate(docs):
            row = {"file_id": file_id, "position": i, "partner_id": "medsupply", "doc_type": doc["document_type"],
                   "status": "translated", "canonical": json.dumps(doc), "correlation_id": str(uuid.uuid4()),
                   "created_at": at, "updated_at": at}  # fmt: skip
            if doc_id is not None:
                row["id"] = doc_id
            conn.execute(insert(documents), row)
    engine.dispose()


def test_life_of_an_exception(store: Store, db_url: str, clock: FakeClock) -> None:
    reconciler = Reconciler(store, None, lambda p: None, actor="test", clock=clock)
    store.index_sent_order("medsupply", "PO1", json.dumps(ORDER), 7)
    store.index_sent_order("medsupply", "PO1", json.dumps(ORDER), 7)  # after a restart: harmless
    _add(db_url, clock, _invoice("INV1", "12.40"))
    assert reconciler.catch_up() == 1
    (price,) = [e for e in store.list_exceptions() if e.kind == "invoice_price"]
    assert price.reason == "invoiced 12.40 a box, ordered at 11.95: 0.45 over on 40 boxes = 18.00"
    assert price.documents == ["document:1", "outbound:7"] and price.amount == "18.00"

    _add(db_url, clock, _invoice("CM1", "0.45", credit=True))  # a credit memo puts it right
    reconciler.catch_up()
    price = store.get_exception(price.id)
    assert (price.status, price.resolved_by) == ("resolved", "document")
    assert price.resolution == "no longer found once document:2 (invoice CM1) was recorded"

    _add(db_url, clock, _invoice("CM1", "0.45", credit=True) | {"purpose": "cancel"})  # the credit is withdrawn
    reconciler.catch_up()
    assert store.get_exception(price.id).status == "open"
    assert [e.action for e in store.exception_events(price.id)] == ["open", "resolve", "reopen"]

    store.settle_exception(price.id, "waived", "price increase agreed", "buyer")
    reconciler.rerun()
    assert store.get_exception(price.id).status == "waived"  # an operator's decision stays
    assert [(e.action, e.actor) for e in store.exception_events(price.id)][-1] == ("waive", "buyer")


def test_a_document_committed_below_the_cursor_is_indexed(store: Store, db_url: str, clock: FakeClock) -> None:
    reconciler = Reconciler(store, None, lambda p: None, actor="test", clock=clock)
    _add(db_url, clock, ORDER, doc_id=10)
    reconciler.catch_up()
    _add(db_url, clock, _invoice("INV1", "12.40"), doc_id=5)  # its id was handed out first, it committed last
    assert reconciler.catch_up() == 1
    assert [e.kind for e in store.list_exceptions()] == ["invoice_price"]


def test_duplicate_invoice_number_across_two_pos(store: Store, db_url: str, clock: FakeClock) -> None:
    reconciler = Reconciler(store, None, lambda p: None, actor="test", clock=clock)
    other = {**ORDER, "po_number": "PO2"}
    _add(db_url, clock, ORDER, other, _invoice("INV1", "11.95"), {**_invoice("INV1", "11.95"), "po_number": "PO2"})
    reconciler.catch_up()
    (dup,) = store.list_exceptions()
    assert (dup.kind, dup.po_number) == ("invoice_duplicate", "PO2")
    assert dup.reason.startswith("invoice number INV1 was already received from this supplier (on PO PO1)")
