"""A chargeable ship-notice line is billed once, however many workers reconcile its chain at the same
instant: four `gateway recon run` processes started together record one billing event (one
``recon_billing`` row, one POST); and the unique key alone decides between two transactions inserting
the same line at once (no reconciliation lock taken). SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

from runtimekit import GATEWAY, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures
from sqlalchemy import func, select
from support.httpd import Receiver
from test_runtime_recon_outbox import _check_keys, _recorded, _recorded_chain
from test_runtime_recon_outputs import _posted

from gateway.reconcile.billing import BillingLine
from gateway.store import Store
from gateway.store.schema import recon_billing


def test_four_workers_at_once_bill_the_implant_once(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = _recorded_chain(tmp_path, store_url, hooks, over_contract=False)
        runs = [
            subprocess.Popen(
                [*GATEWAY, "recon", "run", "--home", str(home.path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outcomes = [(r.wait(timeout=120), *r.communicate()) for r in runs]
        assert all(code == 0 for code, _, _ in outcomes), outcomes
        said = Counter("1 billing event(s)" in out for _, out, _ in outcomes)
        assert said[True] == 1, outcomes  # one worker recorded it; the others found it billed

        (event,) = _posted(hooks, "billing_event")
        assert (event["po_line"], event["lot"], event["serial"], event["quantity"]) == (
            "3",
            "HX2611",
            "SN-0045512",
            "2",
        )
        assert _recorded(home)[1]["billing_event"] == 1
        with Store(home.store_url) as store, store._db.read("count billed lines") as conn:
            assert conn.execute(select(func.count()).select_from(recon_billing)).scalar() == 1
        _check_keys(home, hooks)


def _line() -> BillingLine:
    return BillingLine(
        key="SHP-1:PO1:0", partner="medsupply", po_number="PO1", line="3", position=0, shipment_id="SHP-1",
        notice="document:2", item={"vendor_part": "IMP-HIP-52"}, lot="HX2611", serial="SN-1", udi=None,
        quantity=Decimal(1), uom="EA", price=Decimal("1450.00"), currency=None, item_id="IMP-HIP-52",
    )  # fmt: skip


def test_two_transactions_inserting_one_line_at_once_bill_it_once(tmp_path: Path, store_url: str) -> None:
    """The first holds its insert uncommitted while the second inserts the same line: the second waits
    (PostgreSQL on the unique index, SQLite on the write lock), then does nothing."""
    store = Store(store_url)
    store.upgrade()
    inserted = threading.Event()
    results: dict[str, bool] = {}

    def first() -> None:
        with store._db.write("bill a line") as conn:
            results["first"] = store._claim_line_on(conn, _line())
            inserted.set()
            time.sleep(0.5)  # the second transaction is waiting now

    def second() -> None:
        inserted.wait(10)
        with store._db.write("bill the same line") as conn:
            results["second"] = store._claim_line_on(conn, _line())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == {"first": True, "second": False}
        with store._db.write("bill it again") as conn:
            assert store._claim_line_on(conn, _line()) is False  # idempotent
            other = _line().__class__(**{**{f: getattr(_line(), f) for f in _line().__slots__}, "serial": "SN-2"})
            assert store._claim_line_on(conn, other) is True  # another serial is another billed unit
        with store._db.read("count billed lines") as conn:
            assert conn.execute(select(func.count()).select_from(recon_billing)).scalar() == 2
    finally:
        store.close()
