"""The store calls behind the dashboard's pages (issue 14), timed on a big ledger (`bench/gen_store.py`).

    python bench/bench_dashboard.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/gateway_bench]
                                    [--repeat 15] [--explain] [--archive /tmp/gwbench/home/archive]

Each page's calls are those `gateway status`, `gateway find` / `messages list` and `messages show`
make (the web pages reuse them): median and p95 wall time of ``--repeat`` runs, after one warm-up,
and CPU seconds of this process (the client's share: row decoding, Python). "now" is the ledger's
newest receipt, so "today" and "this week" are full windows whatever the clock says. With
``--explain``, every statement a case runs is printed with PostgreSQL's EXPLAIN (ANALYZE, BUFFERS)
plan, to find the sequential scans.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from gateway.store import Store  # noqa: E402
from gateway.store.archive import Archive  # noqa: E402
from gateway.store.search import MessageFilter  # noqa: E402
from gateway.x12.extract import set_segments  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gateway_bench"


def targets(store: Store) -> dict[str, Any]:
    """What the cases look up: a PO with its whole chain, an invoice, a lot, an ISA13, a file to show."""
    with store._db.read("pick bench targets") as conn:
        now = conn.execute(text("SELECT max(received_at) FROM files")).scalar_one()
        mid = conn.execute(text("SELECT max(id) / 2 FROM documents")).scalar_one()
        po, partner = conn.execute(
            text("SELECT po_number, partner_id FROM recon_links WHERE id > :mid / 2 GROUP BY po_number, partner_id "
                 "HAVING count(DISTINCT doc_type) = 4 ORDER BY min(id) LIMIT 1"), {"mid": mid}
        ).one()  # fmt: skip
        invoice = conn.execute(
            text("SELECT value FROM search_keys WHERE kind = 'invoice' AND document_id > :mid ORDER BY document_id "
                 "LIMIT 1"), {"mid": mid}
        ).scalar_one()  # fmt: skip
        lot = conn.execute(
            text("SELECT value FROM search_keys WHERE kind = 'lot' AND document_id > :mid ORDER BY document_id "
                 "LIMIT 1"), {"mid": mid}
        ).scalar_one()  # fmt: skip
        doc_id, file_id, isa13 = conn.execute(
            text("SELECT d.id, d.file_id, i.control_number FROM documents d JOIN interchanges i ON i.file_id = "
                 "d.file_id WHERE d.doc_type = 'invoice' AND d.file_id % 100 = 0 AND d.id > :mid ORDER BY d.id "
                 "LIMIT 1"), {"mid": mid}
        ).one()  # fmt: skip
    return {"now": now, "po": po, "partner": partner, "invoice": invoice, "lot": lot, "document": doc_id,
            "file": file_id, "isa13": isa13}  # fmt: skip


def cases(store: Store, t: dict[str, Any], archive: Archive | None) -> list[tuple[str, str, Callable[[], Any]]]:
    """(page, what, call) for every store call a page makes."""
    now: datetime = t["now"]
    today = datetime.combine(now.date(), dtime(), now.tzinfo)
    week = today - timedelta(days=today.weekday())

    def lineage() -> Any:
        tree = store.file_tree(t["file"])
        delivered = store.list_deliveries(file_id=t["file"], limit=10_000)
        store.attempts_of([d.id for d in delivered])
        store.list_outbound(file_id=t["file"], limit=1000)
        store.events_for_file(t["file"])
        if archive is not None:
            data = archive.read(tree.file.sha256)
            for ic in tree.interchanges:
                for g in ic.groups:
                    for s in g.sets:
                        set_segments(data, ic.row.position, g.row.position, s.row.position, s.row.control_number, 40)
        return tree

    return [
        ("overview", "counts_by_status", store.counts_by_status),
        ("overview", "traffic today", lambda: store.traffic(today)),
        ("overview", "traffic this week", lambda: store.traffic(week)),
        ("overview", "destinations (delivered ever)", lambda: store.destinations(now)),
        ("overview", "destinations (delivered today)", lambda: store.destinations(now, today)),
        ("overview", "indicators", lambda: store.indicators(now)),
        ("overview", "failed files", lambda: [store.list_files(status=s, limit=10) for s in ("failed", "partial")]),
        ("overview", "quarantined, unrouted", lambda: (store.list_files(status="quarantined", limit=20),
                                                       store.list_documents(status="unrouted", limit=20))),
        ("overview", "owed ack counts", store.owed_ack_counts),
        ("overview", "exception counts", store.count_exceptions),
        ("search", "find PO", lambda: store.find(t["po"])),
        ("search", "list --po", lambda: store.list_messages(MessageFilter(key=t["po"], key_kind="po"))),
        ("search", "find invoice", lambda: store.find(t["invoice"])),
        ("search", "find lot", lambda: store.find(t["lot"])),
        ("search", "find ISA13", lambda: store.find(t["isa13"])),
        ("search", "list --control", lambda: store.list_messages(MessageFilter(control=t["isa13"], direction="in"))),
        ("search", "list partner+type+week", lambda: store.list_messages(
            MessageFilter(partner=t["partner"], types=("invoice", "810"), since=week))),
        ("search", "list newest 50", lambda: store.list_messages(MessageFilter())),
        ("lineage", "messages show (file)", lineage),
        ("dead letters", "list 50", lambda: store.list_deliveries(status="dead_letter", limit=50)),
        ("acks", "overdue 100", lambda: store.list_owed_acks(status=["overdue"], limit=100)),
        ("acks", "waiting 100", lambda: store.list_owed_acks(status=["waiting"], limit=100)),
        ("acks", "rejected 100", lambda: store.list_owed_acks(status=["rejected"], limit=100)),
        ("recon", "open exceptions", lambda: store.list_exceptions(status="open", limit=1000)),
    ]  # fmt: skip


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """(median, p95) wall milliseconds and CPU milliseconds per call, after a warm-up."""
    call()
    walls, cpu = [], time.process_time()
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        walls.append((time.perf_counter() - started) * 1000)
    walls.sort()
    p95 = walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))]
    return statistics.median(walls), p95, (time.process_time() - cpu) * 1000 / repeat


def explain(store: Store, call: Callable[[], Any]) -> None:
    """Print each statement ``call`` runs with its EXPLAIN ANALYZE plan."""
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    with engine.connect() as conn:
        for statement, params in seen:
            plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).scalars().all()
            print("    " + " ".join(statement.split())[:300])
            print("\n".join("      " + line for line in plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--archive", type=Path, help="the archive gen_store.py filled (raw segments of the lineage)")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--only", help="the cases whose page or name contains this")
    args = parser.parse_args()
    with Store(args.url) as store:
        t = targets(store)
        archive = Archive(args.archive) if args.archive else None
        with store._db.read("count") as conn:
            docs = conn.execute(text("SELECT count(*) FROM documents")).scalar_one()
        print(f"ledger: {docs} documents at {args.url}; now = {t['now']:%Y-%m-%d %H:%M}; targets: PO {t['po']} "
              f"({t['partner']}), invoice {t['invoice']}, lot {t['lot']}, ISA13 {t['isa13']}, "
              f"file {t['file']}")  # fmt: skip
        print(f"median / p95 of {args.repeat} after a warm-up; CPU of this process per call\n")
        print("| page | store call | median | p95 | client CPU |")
        print("|---|---|---:|---:|---:|")
        totals: dict[str, float] = {}
        for page, what, call in cases(store, t, archive):
            if args.only and args.only not in page and args.only not in what:
                continue
            median, p95, cpu = timed(call, args.repeat)
            totals[page] = totals.get(page, 0.0) + median
            print(f"| {page} | {what} | {median:.1f} ms | {p95:.1f} ms | {cpu:.1f} ms |", flush=True)
            if args.explain:
                explain(store, call)
        print("\nsum of medians per page: " + ", ".join(f"{p} {ms:.0f} ms" for p, ms in totals.items()))


if __name__ == "__main__":
    main()
