"""The dashboard's document search (gateway/store/docsearch.py) on both backends: keyset pages newest
first that cover every match once, the page before, and each filter (partner, type, status, business
key, control number)."""

from __future__ import annotations

import json

from storekit import clock_fixture, db_url_fixture, pg_admin_fixture, record, store_fixture  # noqa: F401 (pytest fixtures)

from gateway.store import Store
from gateway.store.search import MessageFilter, insert_keys, search_rows


def _fill(store: Store) -> dict[str, list[int]]:
    """Two partners' files: acme's X12 file with three invoices in set 0007 and a failed one; zeta's
    CSV with five ship notices; the invoices quote PO-9 (two of them) in their canonical JSON."""
    acme, zeta = record(store, 1, partner_id="acme"), record(store, 2, partner_id="zeta")
    ic = store.add_interchange(acme, sender_qualifier="ZZ", sender_id="ACME", receiver_qualifier="ZZ",
                               receiver_id="US", control_number="000000321", version="00401", status="accepted")  # fmt: skip
    group = store.add_group(ic.id, functional_id="IN", control_number="321", version="004010", status="accepted")
    st = store.add_set(group.id, set_id="810", control_number="0007", status="accepted")
    ids: dict[str, list[int]] = {"invoice": [], "ship_notice": [], "po9": [], "failed": []}
    for n in range(4):
        canonical = json.dumps({"invoice_number": f"INV-{n}", "po_number": "PO-9" if n < 2 else f"PO-{n}"})
        doc = store.add_document(acme, doc_type="invoice", canonical=canonical, transaction_set_id=st.id,
                                 status="failed" if n == 3 else "translated")  # fmt: skip
        with store._db.write("keys") as conn:
            insert_keys(conn, search_rows(canonical, file_id=acme, document_id=doc.id, partner_id="acme"))
        ids["invoice"].append(doc.id)
        if n < 2:
            ids["po9"].append(doc.id)
        if n == 3:
            ids["failed"].append(doc.id)
    for _ in range(5):
        ids["ship_notice"].append(store.add_document(zeta, doc_type="ship_notice", canonical="{}").id)
    return ids


def test_keyset_pages_cover_every_document_once_newest_first(store: Store) -> None:
    ids = _fill(store)
    every = sorted(ids["invoice"] + ids["ship_notice"], reverse=True)
    seen: list[int] = []
    after = None
    pages = []
    while True:
        page = store.search_documents(MessageFilter(limit=4), after=after)
        pages.append(page)
        seen += [h.id for h in page.hits]
        if not page.older:
            break
        after = page.last_id
    assert seen == every and len(pages) == 3
    assert not pages[0].newer and pages[1].newer and pages[2].newer and not pages[2].older
    back = store.search_documents(MessageFilter(limit=4), before=pages[2].first_id)
    assert [h.id for h in back.hits] == [h.id for h in pages[1].hits] and back.older and back.newer
    first = store.search_documents(MessageFilter(limit=4), before=pages[1].first_id)
    assert [h.id for h in first.hits] == [h.id for h in pages[0].hits] and not first.newer


def test_each_filter_narrows_the_documents(store: Store) -> None:
    ids = _fill(store)

    def found(**kw: object) -> list[int]:
        return [h.id for h in store.search_documents(MessageFilter(limit=50, **kw)).hits]  # type: ignore[arg-type]

    assert found(partner="zeta") == sorted(ids["ship_notice"], reverse=True)
    assert found(types=("invoice",)) == sorted(ids["invoice"], reverse=True)
    assert found(key="po-9") == sorted(ids["po9"], reverse=True)  # keys match whatever the case
    assert found(key="po-9", key_kind="invoice") == []
    assert found(status="failed") == ids["failed"]
    assert found(control="7") == sorted(ids["invoice"], reverse=True)  # ST02 0007, leading zeros optional
    assert found(control="321", partner="zeta") == []
    assert found(status="dead_letter") == []  # a delivery status: no delivery is a dead letter
