"""The ``sql`` destination against SQLite, the local PostgreSQL and the local MariaDB, with the sample
partners' golden documents: inserted, redelivered (nothing changes), corrected (updated in place,
version 2, the previous kept), exact decimals, the 856 hierarchy, and every refusal and retry."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from conftest import MYSQL_URL, PG_URL
from sqlalchemy import Connection, func, select, text
from stagingkit import (  # noqa: F401 - pytest fixtures
    Target,
    golden,
    golden_documents,
    loader_fixture,
    mysql_admin_fixture,
    payload,
    pg_admin_fixture,
    target_fixture,
)

from gateway.delivery.base import Delivered, Rejected, RetryLater
from gateway.delivery.registry import Registry
from gateway.delivery.staging import StagingConfig, StagingDestination, register
from gateway.delivery.staging.load import Tables
from gateway.delivery.staging.rows import plan
from gateway.errors import ConfigError

# One MariaDB database is shared: its tests run on one xdist worker, never two at once.
pytestmark = pytest.mark.xdist_group("mariadb")

ACK = "medsupply/cases/855-split-backorder.json"
ASN = "orthosupply/cases/856-implants-tare.json"
INVOICE = "medsupply/cases/810-invoice.json"


@pytest.fixture(name="conn")
def conn_fixture(target: Target) -> Iterator[Connection]:
    engine = target.engine()
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def count(conn: Connection, tables: Tables, name: str) -> int:
    conn.rollback()  # a fresh snapshot: the loader committed on its own connection
    table = tables.metadata.tables[tables.prefix + name]
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def table_counts(conn: Connection, tables: Tables) -> dict[str, int]:
    return {name: count(conn, tables, name) for name in ["document", "document_history", *tables.children]}


def delivered(outcome: object) -> dict[str, Any]:
    assert isinstance(outcome, Delivered), outcome
    return outcome.response


def test_every_golden_document_loads(loader: StagingDestination, conn: Connection) -> None:
    documents = golden_documents()
    assert {doc["document_type"] for _, doc in documents} == {
        "purchase_order",
        "po_acknowledgment",
        "ship_notice",
        "invoice",
    }
    expected: dict[str, int] = {}
    for partner, doc in documents:
        response = delivered(loader.deliver(payload(doc, partner=partner)))
        assert response["action"] == "inserted" and response["version"] == 1
        for table, n in response["rows"].items():
            expected[table] = expected.get(table, 0) + n
    found = {f"{loader.tables.prefix}{k}": v for k, v in table_counts(conn, loader.tables).items() if v}
    assert found == expected
    assert found[f"{loader.tables.prefix}document"] == len(documents)


def test_a_redelivery_changes_nothing(loader: StagingDestination, conn: Connection) -> None:
    doc = golden(ACK)
    first = payload(doc, key="idem-1")
    assert delivered(loader.deliver(first))["action"] == "inserted"
    before = table_counts(conn, loader.tables)
    again = delivered(loader.deliver(first))  # a retry of the same delivery
    assert again["action"] == "unchanged" and again["version"] == 1 and again["rows"] == {}
    # The same document in a new envelope (new control numbers), as a new delivery: same content.
    resent = copy.deepcopy(doc)
    resent["provenance"]["interchange_control"] = "000000999"
    resent["provenance"]["set_control"] = "0042"
    assert delivered(loader.deliver(payload(resent, key="idem-2")))["action"] == "unchanged"
    assert table_counts(conn, loader.tables) == before
    assert before["document"] == 1 and before["document_history"] == 0
    header = loader.tables.document
    row = conn.execute(select(header)).mappings().one()
    assert row["version"] == 1 and row["idempotency_key"] == "idem-1"


def test_a_corrected_acknowledgment_updates_in_place(loader: StagingDestination, conn: Connection) -> None:
    doc = golden(ACK)
    first = delivered(loader.deliver(payload(doc, key="idem-1")))
    corrected = copy.deepcopy(doc)
    corrected["acknowledgment_date"] = "2026-12-09"
    corrected["lines"][0]["statuses"] = [
        {"bucket": "rejected", "raw_code": "IR", "quantity": {"value": "3", "uom": "EA"}}
    ]
    second = delivered(loader.deliver(payload(corrected, key="idem-2")))
    assert second["action"] == "updated" and second["version"] == 2
    assert second["header_id"] == first["header_id"]
    tables = loader.tables
    head = conn.execute(select(tables.document)).mappings().one()
    assert head["version"] == 2 and head["document_date"] == date(2026, 12, 9) and head["idempotency_key"] == "idem-2"
    old = conn.execute(select(tables.history)).mappings().one()
    assert old["version"] == 1 and old["idempotency_key"] == "idem-1" and '"2026-12-09"' not in old["document"]
    statuses = tables.children["line_status"]
    rows = conn.execute(select(statuses).order_by(statuses.c.line_seq, statuses.c.status_seq)).mappings().all()
    assert (rows[0]["line_seq"], rows[0]["bucket"], rows[0]["quantity"]) == (1, "rejected", Decimal("3"))
    assert len(rows) == sum(len(line["statuses"]) for line in corrected["lines"])
    # The first delivery retried late (its answer was lost) does not bring version 1 back.
    late = delivered(loader.deliver(payload(doc, key="idem-1")))
    assert late["action"] == "unchanged" and late["version"] == 2 and "version 1" in late["note"]
    assert count(conn, tables, "document") == 1 and count(conn, tables, "document_history") == 1


def test_an_invoice_resent_with_purpose_replace(loader: StagingDestination, conn: Connection) -> None:
    doc = golden(INVOICE)
    delivered(loader.deliver(payload(doc)))
    replaced = copy.deepcopy(doc)
    replaced["purpose"], replaced["purpose_code"] = "replace", "05"
    replaced["lines"][0]["unit_price"]["amount"] = "1.25"
    response = delivered(loader.deliver(payload(replaced)))
    assert (response["action"], response["version"]) == ("updated", 2)
    head = conn.execute(select(loader.tables.document)).mappings().one()
    assert head["purpose"] == "replace" and head["invoice_number"] == doc["invoice_number"]
    line = loader.tables.children["line"]
    assert conn.execute(select(line.c.unit_price).where(line.c.line_seq == 1)).scalar_one() == Decimal("1.25")
    assert count(conn, loader.tables, "line") == len(doc["lines"])


def test_decimals_round_trip_exactly(loader: StagingDestination, conn: Connection) -> None:
    doc = copy.deepcopy(golden(INVOICE))
    values = ["0.000001", "12345678901234.123456", "2890.10", "-0.5", "99999999999999.999999"]
    for line, value in zip(doc["lines"], values, strict=False):
        line["unit_price"]["amount"] = value
    doc["total"] = {"amount": values[-1]}
    delivered(loader.deliver(payload(doc)))
    line = loader.tables.children["line"]
    found = conn.execute(select(line.c.unit_price).order_by(line.c.line_seq)).scalars().all()
    assert all(isinstance(v, Decimal) for v in found)
    assert found == [Decimal(v) for v in values[: len(found)]]
    assert conn.execute(select(loader.tables.document.c.total_amount)).scalar_one() == Decimal(values[-1])


def test_the_ship_notice_hierarchy_lands(loader: StagingDestination, conn: Connection) -> None:
    doc = golden(ASN)
    delivered(loader.deliver(payload(doc)))
    t = loader.tables.children
    packs = conn.execute(select(t["ship_pack"]).order_by(t["ship_pack"].c.pack_seq)).mappings().all()
    assert [(p["pack_seq"], p["parent_pack_seq"], p["level"]) for p in packs] == [
        (1, None, "tare"),
        (2, 1, "pack"),
        (3, None, "pack"),
    ]
    assert packs[0]["sscc"] == "00088812340000077101"
    item, pack = t["ship_item"], t["ship_pack"]
    first = (
        conn.execute(
            select(item, pack.c.sscc)
            .join(pack, (pack.c.header_id == item.c.header_id) & (pack.c.pack_seq == item.c.pack_seq))
            .where(item.c.item_seq == 1)
        )
        .mappings()
        .one()
    )
    assert first["lot"] == "HS12-26K41" and first["serial"] == "HS12-000981"
    assert first["expiration_date"] == date(2031, 11, 30) and first["production_date"] == date(2026, 11, 5)
    assert first["gtin"] == "00888123400112" and first["sscc"] == "00088812340000077118"
    assert first["quantity"] == Decimal("1") and first["uom"] == "EA"
    shipment = conn.execute(select(t["shipment"])).mappings().one()
    assert shipment["shipment_id"] == "OS-ASN-7731" and shipment["gross_weight"] == Decimal("14.8")
    assert shipment["shipped_at"] == datetime(2026, 12, 3, 7, 2)
    order = conn.execute(select(t["ship_order"])).mappings().one()
    assert order["po_number"] == "4500012402" and order["po_date"] == date(2026, 12, 2)
    assert count(conn, loader.tables, "ship_item") == sum(1 for _ in _items(doc))


def _items(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(packs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for pack in packs:
            yield from pack["items"]
            yield from walk(pack["packs"])

    for order in doc["orders"]:
        yield from order["items"]
        yield from walk(order["packs"])


def test_header_columns(loader: StagingDestination, conn: Connection) -> None:
    doc = golden(INVOICE)
    delivered(loader.deliver(payload(doc, key="k-7", correlation_id="corr-abc", document_id=41, file_id=9)))
    head = conn.execute(select(loader.tables.document)).mappings().one()
    rows = plan("invoice", doc)
    assert head["partner_id"] == "medsupply" and head["doc_type"] == "invoice" and head["doc_key"] == rows.key
    assert head["correlation_id"] == "corr-abc" and head["ledger_document_id"] == 41 and head["ledger_file_id"] == 9
    assert head["document_date"] == date.fromisoformat(doc["invoice_date"]) and head["currency"] == doc.get("currency")
    assert head["total_amount"] == Decimal(doc["total"]["amount"]) and head["test"] is False
    assert head["content_sha256"] == rows.content_sha256 and '"invoice_number"' in head["document"]


def test_refusals_name_the_table_and_column(loader: StagingDestination) -> None:
    unknown = loader.deliver(payload({"document_type": "remittance"}, doc_type="remittance"))
    assert isinstance(unknown, Rejected) and "purchase_order, po_acknowledgment, ship_notice, invoice" in unknown.reason
    outbound = loader.deliver(payload(golden(INVOICE), kind="outbound", doc_type="997", document=None, data=b"ISA"))
    assert isinstance(outbound, Rejected) and "canonical documents" in outbound.reason
    broken = copy.deepcopy(golden(INVOICE))
    broken["lines"][0]["quantity"] = {"value": "many"}
    invalid = loader.deliver(payload(broken))
    assert isinstance(invalid, Rejected) and "lines.0.quantity.value" in invalid.reason
    long_lot = copy.deepcopy(golden(ASN))
    long_lot["orders"][0]["packs"][0]["packs"][0]["items"][0]["lot"] = "L" * 81
    refused = loader.deliver(payload(long_lot))
    assert isinstance(refused, Rejected) and f"{loader.tables.prefix}ship_item.lot: 81 characters" in refused.reason
    precise = copy.deepcopy(golden(INVOICE))
    precise["lines"][1]["unit_price"]["amount"] = "0.0000001"
    refused = loader.deliver(payload(precise))
    assert isinstance(refused, Rejected) and f"{loader.tables.prefix}line.unit_price: 0.0000001" in refused.reason
    assert "(row 2)" in refused.reason


def test_a_row_the_database_refuses_is_rejected(
    target: Target, loader: StagingDestination, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target.backend == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths: the loader's own check is the only guard there")
    monkeypatch.setattr("gateway.delivery.staging.destination.problems", lambda *_: None)
    doc = copy.deepcopy(golden(INVOICE))
    doc["invoice_number"] = "N" * 101
    refused = loader.deliver(payload(doc))
    assert isinstance(refused, Rejected), refused
    assert f"{loader.tables.prefix}document" in refused.reason
    if target.backend == "mariadb":
        assert "doc_key" in refused.reason


def test_an_unreachable_database_is_retried() -> None:
    for url in ("postgresql://nobody@127.0.0.1:1/none", "mysql://nobody@127.0.0.1:1/none"):
        destination = StagingDestination("erp", StagingConfig(url=url, upgrade=True, connect_timeout_seconds=2))
        try:  # built all the same: the ERP being down must not stop the gateway
            outcome = destination.deliver(payload(golden(INVOICE)))
            assert isinstance(outcome, RetryLater) and "did not answer" in outcome.reason, outcome
        finally:
            destination.close()


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_a_database_that_does_not_exist_is_retried_and_said_so(server: str, request: pytest.FixtureRequest) -> None:
    # Before, MariaDB's "Unknown database" was retried as "did not answer or a lock was not granted".
    from sqlalchemy.engine import make_url

    request.getfixturevalue("pg_admin" if server == "postgresql" else "mysql_admin")  # the server is there
    url = make_url(PG_URL if server == "postgresql" else MYSQL_URL).set(database="gateway_no_such_db")
    destination = StagingDestination("erp", StagingConfig(url=url.render_as_string(hide_password=False), upgrade=True))
    try:
        outcome = destination.deliver(payload(golden(INVOICE)))
        assert isinstance(outcome, RetryLater), outcome
        assert "refused the connection (check its url and credentials)" in outcome.reason, outcome.reason
        assert "gateway_no_such_db" in outcome.reason
    finally:
        destination.close()


def test_tables_behind_the_code(target: Target) -> None:
    with pytest.raises(ConfigError, match="set upgrade: true") as info:
        StagingDestination("erp", target.config(upgrade=False))
    assert info.value.code == "STG-001"
    loader = StagingDestination("erp", target.config())
    try:
        engine = target.engine()
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {target.prefix}line"))
        engine.dispose()
        outcome = loader.deliver(payload(golden(INVOICE)))
        assert isinstance(outcome, RetryLater) and "missing" in outcome.reason, outcome
    finally:
        loader.close()


def test_a_locked_row_is_retried(target: Target, loader: StagingDestination) -> None:
    doc = golden(INVOICE)
    delivered(loader.deliver(payload(doc)))
    quick = StagingDestination("erp", target.config(lock_timeout_seconds=1))
    changed = copy.deepcopy(doc)
    changed["lines"][0]["description"] = "changed"
    engine = target.engine()
    try:
        with engine.connect() as holder:
            holder.begin()
            if target.backend == "sqlite":
                holder.exec_driver_sql("UPDATE stg_document SET version = version")  # takes the write lock
            else:
                holder.execute(select(loader.tables.document).with_for_update())
            outcome = quick.deliver(payload(changed))
            assert isinstance(outcome, RetryLater), outcome
            holder.rollback()
        assert delivered(quick.deliver(payload(changed)))["version"] == 2
    finally:
        quick.close()
        engine.dispose()


def test_concurrent_deliveries_of_a_new_document(target: Target, loader: StagingDestination, conn: Connection) -> None:
    doc = golden(ASN)
    others = [StagingDestination("erp", target.config()) for _ in range(3)]
    outcomes: list[object] = []
    start = threading.Barrier(len(others))

    def go(destination: StagingDestination, key: str) -> None:
        start.wait()
        outcome = destination.deliver(payload(doc, key=key))
        while isinstance(outcome, RetryLater):  # the delivery loop's retry, without the wait
            outcome = destination.deliver(payload(doc, key=key))
        outcomes.append(outcome)

    threads = [threading.Thread(target=go, args=(d, f"race-{n}")) for n, d in enumerate(others)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for d in others:
            d.close()
    actions = sorted(delivered(o)["action"] for o in outcomes)
    assert actions == ["inserted", "unchanged", "unchanged"]
    assert count(conn, loader.tables, "document") == 1 and count(conn, loader.tables, "document_history") == 0
    assert count(conn, loader.tables, "ship_item") == 3


def test_the_clock_sets_the_timestamps(target: Target, conn: Connection) -> None:
    moments = iter([datetime(2026, 12, 1, 9, 0, tzinfo=UTC), datetime(2026, 12, 2, 9, 0, tzinfo=UTC)])
    loader = StagingDestination("erp", target.config(), clock=lambda: next(moments))
    try:
        doc = golden(INVOICE)
        delivered(loader.deliver(payload(doc)))
        changed = copy.deepcopy(doc)
        changed["lines"][0]["description"] = "changed"
        delivered(loader.deliver(payload(changed)))
    finally:
        loader.close()
    head = conn.execute(select(loader.tables.document)).mappings().one()
    assert (head["created_at"], head["updated_at"]) == (datetime(2026, 12, 1, 9), datetime(2026, 12, 2, 9))
    old = conn.execute(select(loader.tables.history)).mappings().one()
    assert (old["loaded_at"], old["superseded_at"]) == (datetime(2026, 12, 1, 9), datetime(2026, 12, 2, 9))


def test_registered_and_configured_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    register(registry)
    model = registry.config_model("destination", "sql")
    assert model is StagingConfig
    config = model.model_validate({"type": "sql", "url": "postgresql://loader@erp/erp", "password": {"env": "ERP_PW"}})
    with pytest.raises(ValueError, match="password"):
        model.model_validate({"type": "sql", "url": "postgresql://loader:secret@erp/erp"})
    with pytest.raises(ValueError, match="extra"):
        model.model_validate({"type": "sql", "url": "sqlite:///x", "pool": 3})
    with pytest.raises(ValueError, match="unsupported database"):
        model.model_validate({"type": "sql", "url": "oracle://erp/erp"})
    monkeypatch.setenv("ERP_PW", "s3cret:/@")
    url = config.engine_url()  # type: ignore[attr-defined]
    assert url.password == "s3cret:/@" and url.drivername == "postgresql+psycopg"
    assert StagingConfig(url="mariadb://root@h/erp").engine_url().query["charset"] == "utf8mb4"


@pytest.mark.parametrize(
    "args",
    [
        ('connection failed: FATAL:  role "erp_loader" does not exist',),
        ('connection failed: FATAL:  password authentication failed for user "erp"',),
        ("connection failed: fe_sendauth: no password supplied",),
        (1049, "Unknown database 'erp'"),  # PyMySQL: the server's error number first
    ],
)
def test_a_refused_connection_is_said_so_not_taken_for_missing_tables(args: tuple[object, ...]) -> None:
    from sqlalchemy.exc import OperationalError

    from gateway.delivery.staging.engine import classify

    verdict = classify(OperationalError("connect", {}, Exception(*args)))
    assert verdict.action == "retry" and not verdict.missing_schema
    assert verdict.reason.startswith("the staging database refused the connection (check its url and credentials)")
