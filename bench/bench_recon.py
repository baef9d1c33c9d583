"""Reconciliation benchmark: `gateway recon run` over 10,000 POs with full chains (about 200,000 lines).

    python bench/bench_recon.py [--pos 10000] [--lines 5] [--store sqlite|pg]

A deployment is made in a temporary folder and its store filled directly (SQLAlchemy Core on the
store's own tables, as `gateway run` would leave it: one file row, then for each PO an 850, an 855,
an 856 and an 810 as canonical JSON documents, ``--lines`` lines each). One PO in 20 is invoiced
0.45 over its price on line 1, one in 50 ships a unit more than ordered on line 2, so the run
writes exceptions too. Then the real command is timed as a user runs it, a subprocess under
/usr/bin/time -v (wall time and peak RSS):

1. the first `gateway recon run`: index every document, reconcile every chain, write the exceptions;
2. a second one over the same store: nothing new, every chain reconciled again (what a nightly
   re-run for the time-based SLAs costs).

It checks the exceptions written: exactly the injected ones (price and over-shipment, plus the
invoice over shipped that the over-shipment does not cause, since invoices bill what was ordered).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.store import Store  # noqa: E402
from gateway.store.schema import documents, files  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TIME = "/usr/bin/time"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def chain_docs(n: int, lines: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(doc_type, business key, canonical) for PO ``n``: 850, 855, 856, 810, each with ``lines`` lines."""
    po = f"PO{n:08d}"
    items = []
    for i in range(1, lines + 1):
        items.append(
            {
                "line_number": str(i),
                "quantity": {"value": str(10 * i), "uom": "BX" if i % 2 else "EA"},
                "unit_price": {"amount": f"{11.95 + i:.2f}"},
                "item": {"vendor_part": f"VP-{i:03d}", "buyer_item": f"{100000 + i}"},
            }
        )
    order = {"document_type": "purchase_order", "po_number": po, "order_date": "2026-11-02",
             "requested_delivery": "2026-11-10", "lines": items}  # fmt: skip
    ack = {
        "document_type": "po_acknowledgment", "po_number": po, "acknowledgment_date": "2026-11-03",
        "ack_type": "accepted",
        "lines": [
            {**{k: it[k] for k in ("line_number", "quantity", "unit_price", "item")},
             "statuses": [{"bucket": "accepted", "raw_code": "IA", "quantity": it["quantity"],
                           "scheduled_date": "2026-11-05"}]}
            for it in items
        ],
    }  # fmt: skip
    shipped = [{"line_number": it["line_number"], "item": it["item"], "quantity": dict(it["quantity"])} for it in items]
    if n % 50 == 0 and lines >= 2:
        shipped[1]["quantity"]["value"] = str(int(shipped[1]["quantity"]["value"]) + 1)
    notice = {"document_type": "ship_notice", "shipment_id": f"SH{n:08d}", "notice_date": "2026-11-05",
              "ship_date": "2026-11-05", "orders": [{"po_number": po, "items": shipped}]}  # fmt: skip
    billed = [{k: it[k] for k in ("line_number", "quantity", "unit_price", "item")} for it in items]
    if n % 20 == 0:
        billed[0] = {**billed[0], "unit_price": {"amount": f"{11.95 + 1 + 0.45:.2f}"}}
    total = sum(float(b["quantity"]["value"]) * float(b["unit_price"]["amount"]) for b in billed)
    invoice = {"document_type": "invoice", "invoice_number": f"INV{n:08d}", "invoice_date": "2026-11-06",
               "po_number": po, "lines": billed, "total": {"amount": f"{total:.2f}"}}  # fmt: skip
    return [
        ("purchase_order", f"850:{po}:original", order),
        ("po_acknowledgment", f"855:{po}:2026-11-03:original", ack),
        ("ship_notice", f"856:SH{n:08d}:original", notice),
        ("invoice", f"810:INV{n:08d}", invoice),
    ]


def fill(url: str, pos: int, lines: int) -> int:
    """The store at ``url`` migrated and filled; returns the number of documents."""
    with Store(url) as store:
        store.upgrade()
    engine = create_engine(url)
    count = 0
    with engine.begin() as conn:
        file_id = conn.execute(
            insert(files).returning(files.c.id),
            {"sha256": "0" * 64, "size": 0, "name": "bench", "origin": "bench", "partner_id": "medsupply",
             "format": "x12", "status": "processed", "correlation_id": str(uuid.uuid4()), "received_at": T0,
             "updated_at": T0, "attempts": 1},
        ).scalar_one()  # fmt: skip
        batch: list[dict[str, Any]] = []
        for n in range(1, pos + 1):
            for k, (doc_type, key, canonical) in enumerate(chain_docs(n, lines)):
                at = T0 + timedelta(hours=k)
                batch.append(
                    {"file_id": file_id, "transaction_set_id": None, "position": count, "partner_id": "medsupply",
                     "doc_type": doc_type, "business_key": key, "status": "translated",
                     "canonical": json.dumps(canonical), "correlation_id": str(uuid.uuid4()), "parent_id": None,
                     "warnings": None, "route": None, "created_at": at, "updated_at": at}
                )  # fmt: skip
                count += 1
            if len(batch) >= 4000:
                conn.execute(insert(documents), batch)
                batch = []
        if batch:
            conn.execute(insert(documents), batch)
    engine.dispose()
    return count


def timed(home: Path, *args: str) -> tuple[float, int | None, str]:
    """Run ``gateway ARGS --home HOME``; (wall seconds, peak RSS in MB or None, stdout)."""
    cmd = [sys.executable, "-c", "from gateway.cli.main import main; main()", *args, "--home", str(home)]
    if Path(TIME).exists():
        cmd = [TIME, "-v", *cmd]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"gateway {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, int(found.group(1)) // 1024 if found else None, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pos", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--store", choices=["sqlite", "pg"], default="sqlite")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-recon-"))
    try:
        (home / "maps").symlink_to(REPO / "maps", target_is_directory=True)
        shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
        if args.store == "pg":
            schema = f"bench_recon_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        else:
            url = f"sqlite:///{home / 'var' / 'gateway.db'}"
            (home / "var").mkdir()
        (home / "gateway.yaml").write_text(json.dumps({"store": url}), "utf-8")
        start = time.perf_counter()
        docs = fill(url, args.pos, args.lines)
        print(f"filled {docs} documents ({args.pos} POs x 4, {args.lines} lines each: "
              f"{docs * args.lines} lines) in {time.perf_counter() - start:.1f} s")  # fmt: skip
        for label in ("first run (index + reconcile)", "second run (reconcile again)"):
            wall, rss, out = timed(home, "recon", "run")
            print(f"{label}: {wall:.1f} s, peak RSS {rss} MB: {out}")
        with Store(url) as store:
            kinds: dict[str, int] = {}
            for e in store.list_exceptions(limit=None):
                kinds[e.kind] = kinds.get(e.kind, 0) + 1
        expected = {"invoice_price": args.pos // 20, "ship_over_ordered": args.pos // 50}
        print(f"exceptions: {dict(sorted(kinds.items()))} (expected {expected})")
        if kinds != expected:
            raise SystemExit("the exceptions written are not the injected ones")
        if args.store == "pg":
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
