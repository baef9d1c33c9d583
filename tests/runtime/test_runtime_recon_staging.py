"""Reconciliation's outputs into the ERP staging tables, end to end: `gateway run --once` records the
exceptions and routes their alerts to a `sql` destination (a SQLite staging file), one row each in
`stg_recon_exception`; `gateway recon waive` releases the implant's billing event into
`stg_billing_event`, once. Ledger on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtimekit import REPO, gateway, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from test_runtime_recon import _drop, _numbered, _sample, recon, recon_home, set_reconciliation


def _staged(url: str, table: str) -> list[dict[str, Any]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).mappings()]
    finally:
        engine.dispose()


def test_exceptions_and_billing_events_land_in_the_staging_tables(tmp_path: Path, store_url: str) -> None:
    staging = f"sqlite:///{tmp_path / 'erp.sqlite'}"
    home = recon_home(tmp_path / "home", store_url, "erp", {"type": "sql", "url": staging, "upgrade": True})
    set_reconciliation(home, chargeable={"items": ["IMP-HIP-52"]})
    _drop(home.path / "send" / "medsupply", "po.json", (REPO / "samples/canonical/purchase-order.json").read_bytes())
    ack = _sample("855-4010-medsupply-ack.edi").replace("PO1*3*2*EA*1450.00*", "PO1*3*2*EA*1495.00*")
    _drop(home.inbox / "medsupply", "855.edi", _numbered(ack, 201))
    _drop(home.inbox / "medsupply", "856.edi", _numbered(_sample("856-4010-medsupply-asn.edi"), 301))
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr

    listed = json.loads(recon(home, "list", "--json").stdout)
    staged = _staged(staging, "stg_recon_exception")
    assert sorted(r["exception_id"] for r in staged) == sorted(e["id"] for e in listed), (staged, listed)
    price = next(e for e in listed if e["kind"] == "ack_price")
    row = next(r for r in staged if r["exception_id"] == price["id"])
    assert (row["po_number"], row["po_line"], row["reason"]) == ("4500012345", "3", price["reason"])
    assert _staged(staging, "stg_billing_event") == []  # withheld: the price exception is open

    waived = recon(home, "waive", str(price["id"]), "--reason", "price increase agreed")
    assert waived.exit_code == 0 and "1 billing event(s) released" in waived.output, waived.output
    (event,) = _staged(staging, "stg_billing_event")
    assert (event["po_line"], event["vendor_part"], event["lot"], event["serial"]) == (
        "3", "IMP-HIP-52", "HX2611", "SN-0045512"
    )  # fmt: skip
    assert recon(home, "run").exit_code == 0 and len(_staged(staging, "stg_billing_event")) == 1
