"""Reconciliation's outputs through the `sql` destination: an exception alert lands in
``stg_recon_exception`` (a reopening updates the row, a redelivery changes nothing), a billing event in
``stg_billing_event`` (once), a body that does not fit is rejected naming the column; a batch mixing
documents and alerts loads both. On real databases (SQLite, PostgreSQL; MariaDB with the others)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from stagingkit import (  # noqa: F401 - pytest fixtures
    Target,
    golden_documents,
    loader_fixture,
    mysql_admin_fixture,
    payload,
    pg_admin_fixture,
    target_fixture,
)

from gateway.delivery.base import Delivered, Payload, Rejected
from gateway.delivery.staging import StagingDestination

ALERT = {
    "alert": "recon_exception", "exception_id": 3, "kind": "ack_price", "severity": "high", "status": "open",
    "partner_id": "medsupply", "po_number": "4500012345", "line": "3", "expected": "1450.00 each",
    "actual": "1495.00 each", "amount": "90.00",
    "reason": "acknowledged 1495.00 each, ordered at 1450.00: 45.00 over on 2 each = 90.00",
    "documents": ["document:1", "outbound:1"], "opened_at": "2026-12-06T21:28:03+00:00",
}  # fmt: skip
EVENT = {
    "event": "billing_event", "partner_id": "medsupply", "po_number": "4500012345", "po_line": "3",
    "ship_notice": "SHP-0098812", "ship_notice_document": "document:2", "item": {"vendor_part": "IMP-HIP-52"},
    "lot": "HX2611", "serial": "SN-0045512", "udi": None, "quantity": "2", "uom": "EA",
    "contract_price": "1450.00", "currency": None, "amount": "2900.00", "key": "SHP-0098812:4500012345:2",
}  # fmt: skip


def outbound(kind: str, body: dict[str, Any], key: str | None = None) -> Payload:
    return Payload(
        kind="outbound",
        doc_type=kind,
        partner_id=body["partner_id"],
        correlation_id="corr",
        idempotency_key=key or f"idem-{uuid.uuid4().hex}",
        delivery_id=7,
        data=json.dumps(body).encode(),
    )


def rows(loader: StagingDestination, name: str) -> list[dict[str, Any]]:
    table = loader.tables.metadata.tables[f"{loader.tables.prefix}{name}"]
    with loader.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def test_an_exception_alert_is_a_row_a_reopening_updates(loader: StagingDestination) -> None:
    first = loader.deliver(outbound("recon_exception", ALERT, key="k1"))
    assert isinstance(first, Delivered) and first.response["action"] == "inserted", first
    again = loader.deliver(outbound("recon_exception", ALERT, key="k1"))  # the same delivery retried
    assert isinstance(again, Delivered) and again.response["action"] == "unchanged"
    (row,) = rows(loader, "recon_exception")
    assert (row["exception_id"], row["kind"], row["po_line"], Decimal(str(row["amount"]))) == (
        3, "ack_price", "3", Decimal("90.00")
    )  # fmt: skip
    assert row["version"] == 1 and json.loads(row["documents"]) == ["document:1", "outbound:1"]
    assert row["opened_at"].isoformat() == "2026-12-06T21:28:03" and row["idempotency_key"] == "k1"

    reopened = {**ALERT, "reason": "found again", "opened_at": "2026-12-08T10:00:00+00:00"}
    later = loader.deliver(outbound("recon_exception", reopened, key="k2"))
    assert isinstance(later, Delivered) and later.response["action"] == "updated" and later.response["version"] == 2
    (row,) = rows(loader, "recon_exception")
    assert (row["reason"], row["version"], row["idempotency_key"]) == ("found again", 2, "k2")


def test_a_billing_event_is_written_once(loader: StagingDestination) -> None:
    assert isinstance(loader.deliver(outbound("billing_event", EVENT)), Delivered)
    again = loader.deliver(outbound("billing_event", EVENT))  # even under a new key: the line is billed
    assert isinstance(again, Delivered) and again.response["action"] == "unchanged"
    (row,) = rows(loader, "billing_event")
    assert (row["billing_key"], row["vendor_part"], row["lot"], row["serial"], row["uom"]) == (
        "SHP-0098812:4500012345:2", "IMP-HIP-52", "HX2611", "SN-0045512", "EA"
    )  # fmt: skip
    assert (Decimal(str(row["quantity"])), Decimal(str(row["contract_price"])), Decimal(str(row["amount"]))) == (
        Decimal(2), Decimal("1450.00"), Decimal("2900.00")
    )  # fmt: skip


def test_what_does_not_fit_is_rejected_naming_the_column(loader: StagingDestination) -> None:
    long_key = loader.deliver(outbound("billing_event", {**EVENT, "key": "S" * 200}))
    assert isinstance(long_key, Rejected) and f"{loader.tables.prefix}billing_event.billing_key" in long_key.reason
    no_id = loader.deliver(outbound("recon_exception", {k: v for k, v in ALERT.items() if k != "exception_id"}))
    assert isinstance(no_id, Rejected) and "exception_id" in no_id.reason
    other = loader.deliver(outbound("ack_overdue", {"partner_id": "medsupply"}))
    assert isinstance(other, Rejected) and "canonical documents" in other.reason
    assert rows(loader, "billing_event") == [] and rows(loader, "recon_exception") == []


def test_a_batch_mixing_documents_and_alerts_loads_both(loader: StagingDestination) -> None:
    partner, doc = golden_documents()[0]
    outcomes = loader.deliver_batch(
        [payload(doc, partner=partner), outbound("recon_exception", ALERT), outbound("billing_event", EVENT)]
    )
    assert [type(o) for o in outcomes] == [Delivered, Delivered, Delivered], outcomes
    assert len(rows(loader, "recon_exception")) == 1 and len(rows(loader, "billing_event")) == 1
    assert len(rows(loader, "document")) == 1


def test_upgrading_from_0001_adds_the_tables(target: Target) -> None:
    from alembic import command

    from gateway.delivery.staging import migrate

    engine = target.engine()
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn, target.prefix), "0001")
        with engine.begin() as conn:
            assert migrate.current_revision(conn, target.prefix) == "0001"
            migrate.upgrade(conn, target.prefix)
        with engine.connect() as conn:
            assert migrate.current_revision(conn, target.prefix) == "0002"
    finally:
        engine.dispose()
    loader = StagingDestination("erp", target.config(upgrade=False))
    try:
        assert isinstance(loader.deliver(outbound("billing_event", EVENT)), Delivered)
    finally:
        loader.close()
