"""Finding things on a big ledger: `gateway messages list` filters, `gateway find` and `gateway status`, timed
as whole `gateway` processes (as an operator runs them) on a SQLite ledger of N documents.

    python bench/bench_search.py --documents 200000 [--repeat 3] [--db /tmp/search.sqlite]

The ledger is seeded directly (SQL executemany, not by running files through the gateway, which would
take an hour for 200,000 documents): 4 sets per file (an 810, 856, 855 and 850 in turn), each with its
document, business keys from `gateway.store.search.keys_of` (so they are what the gateway records),
a 997 outbound per file, a delivery per document (one in 500 a dead letter), events as the gateway
writes them, received times spread over 90 days and 20 partners. A seeded database is reused when
`--db` already holds one of that size.

Side by side, in the same invocation:

- floor: `gateway messages list --limit 1 --direction out` (process start-up, store open, one row);
- with indexes: each command on the ledger as migration 0006 leaves it;
- without: the same commands after dropping 0006's indexes (`search_keys` kept, unindexed), on a copy;
- peer: the business key found the way a ledger without `search_keys` would have to, `LIKE` over the
  canonical JSON (one sqlite3 query, no process).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from gateway.store import Store  # noqa: E402
from gateway.store.search import keys_of  # noqa: E402

GATEWAY = [sys.executable, "-m", "gateway.cli.main"]
PARTNERS = [f"partner{i:02d}" for i in range(20)]
TYPES = [("810", "IN", "invoice"), ("856", "SH", "ship_notice"), ("855", "PR", "po_acknowledgment"),
         ("850", "PO", "purchase_order")]  # fmt: skip
INDEXES_0006 = [
    ("files", "ix_files_traffic"),  # 0006's received_at, widened by 0010
    ("interchanges", "ix_interchanges_control_number"),
    ("groups", "ix_groups_control_number"),
    ("transaction_sets", "ix_transaction_sets_control_number"),
    ("documents", "ix_documents_status"),
    ("documents", "ix_documents_traffic"),  # 0006's created_at, widened by 0010
    ("outbound", "ix_outbound_created_at"),
    ("outbound", "ix_outbound_correlation_id"),
    ("outbound", "ix_outbound_control_number"),
    ("outbound", "ix_outbound_group_control_number"),
    ("search_keys", "ix_search_keys_value"),
    ("search_keys", "ix_search_keys_file_id"),
    ("search_keys", "ix_search_keys_outbound_id"),
]


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def document(kind: str, n: int, partner: str) -> dict[str, object]:
    """A small canonical document of each type, with the keys the real ones carry."""
    po = f"PO{n // 4:08d}"
    if kind == "810":
        return {"document_type": "invoice", "invoice_number": f"INV-{n:07d}", "po_number": po,
                "lines": [{"line_number": "1", "quantity": {"value": "2", "uom": "EA"}}]}  # fmt: skip
    if kind == "856":
        item = {"lot": f"LOT{n % 50000:05d}", "serial": f"SN{n}"}
        return {"document_type": "ship_notice", "shipment_id": f"ASN-{n:07d}", "bill_of_lading": f"BOL{n}",
                "orders": [{"po_number": po, "items": [item]}]}  # fmt: skip
    if kind == "855":
        return {"document_type": "po_acknowledgment", "po_number": po, "acknowledgment_date": "2026-12-01"}
    return {"document_type": "purchase_order", "po_number": po, "lines": [{"lot": None, "line_number": "1"}],
            "partner": partner}  # fmt: skip


def seed(db: Path, documents: int) -> None:
    """A ledger of ``documents`` documents at ``db`` (see the module docstring)."""
    if db.exists():
        with sqlite3.connect(db) as conn:
            try:
                if conn.execute("SELECT count(*) FROM documents").fetchone()[0] == documents:
                    return
            except sqlite3.Error:
                pass
        db.unlink()
    with Store(f"sqlite:///{db}") as store:
        store.upgrade()
    rng = random.Random(12)
    now = datetime.now(UTC)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    files_n = documents // 4
    started = time.perf_counter()
    for base in range(0, files_n, 5000):
        rows: dict[str, list[tuple[object, ...]]] = {k: [] for k in
            ("files", "ic", "gr", "st", "doc", "key", "out", "dlv", "ev")}  # fmt: skip
        for f in range(base + 1, min(files_n, base + 5000) + 1):
            partner = PARTNERS[f % len(PARTNERS)]
            at = now - timedelta(seconds=(files_n - f) * 90 * 86400 / files_n)
            corr = str(uuid.UUID(int=rng.getrandbits(128)))
            status = "processed" if f % 97 else "partial"
            rows["files"].append((f, f"{f:064x}", 2000, f"{partner}-{f}.edi", f"inbox:{partner}/{f}", partner, "x12",
                                  status, corr, ts(at), ts(at), 1))  # fmt: skip
            rows["ic"].append((f, f, 1, "ZZ", partner.upper(), "ZZ", "MERCYHOSP", f"{f:09d}", "00401", 0, "accepted",
                               ts(at), ts(at)))  # fmt: skip
            rows["ev"].append(("file", f, f, "create", None, "received", corr, ts(at)))
            rows["ev"].append(("file", f, f, "status", "processing", status, corr, ts(at + timedelta(seconds=1))))
            for s in range(4):
                n = (f - 1) * 4 + s + 1
                code, fid, doc_type = TYPES[s]
                gid = n
                rows["gr"].append((gid, f, f, s + 1, fid, str(f * 4 + s), "00401", "accepted", ts(at), ts(at)))
                rows["st"].append((n, f, gid, 1, code, f"{s + 1:04d}", "translated", "[]", ts(at), ts(at)))
                canonical = document(code, n, partner)
                dead = n % 500 == 0
                dstatus = "dead_letter" if dead else "delivered"
                rows["doc"].append((n, f, n, s + 1, partner, doc_type, f"{code}:{n}", dstatus,
                                    json.dumps(canonical), corr, ts(at), ts(at)))  # fmt: skip
                for kind, value in keys_of(canonical):
                    rows["key"].append((f, n, None, partner, kind, value))
                rows["dlv"].append((f, n, partner, doc_type, "erp", f"{uuid.UUID(int=rng.getrandbits(128))}",
                                    dstatus, 1, ts(at), corr, ts(at), ts(at)))  # fmt: skip
            rows["out"].append((f, partner, "997", f"{f + 10**9:064x}", f"{f:09d}", str(f), f, "created", corr,
                                ts(at), ts(at)))  # fmt: skip
        conn.executemany("INSERT INTO files (id, sha256, size, name, origin, partner_id, format, status, "
                         "correlation_id, received_at, updated_at, attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         rows["files"])  # fmt: skip
        conn.executemany("INSERT INTO interchanges (id, file_id, position, sender_qualifier, sender_id, "
                         "receiver_qualifier, receiver_id, control_number, version, test, status, created_at, "
                         "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows["ic"])  # fmt: skip
        conn.executemany("INSERT INTO groups (id, file_id, interchange_id, position, functional_id, "
                         "control_number, version, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         rows["gr"])  # fmt: skip
        conn.executemany("INSERT INTO transaction_sets (id, file_id, group_id, position, set_id, control_number, "
                         "status, errors, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         rows["st"])  # fmt: skip
        conn.executemany("INSERT INTO documents (id, file_id, transaction_set_id, position, partner_id, doc_type, "
                         "business_key, status, canonical, correlation_id, created_at, updated_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows["doc"])  # fmt: skip
        conn.executemany("INSERT INTO search_keys (file_id, document_id, outbound_id, partner_id, kind, value) "
                         "VALUES (?,?,?,?,?,?)", rows["key"])  # fmt: skip
        conn.executemany("INSERT INTO outbound (id, partner_id, kind, sha256, control_number, group_control_number, "
                         "file_id, status, correlation_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         rows["out"])  # fmt: skip
        conn.executemany("INSERT INTO deliveries (file_id, document_id, partner_id, doc_type, destination, "
                         "idempotency_key, status, attempts, next_attempt_at, correlation_id, created_at, updated_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows["dlv"])  # fmt: skip
        conn.executemany("INSERT INTO events (entity_kind, entity_id, file_id, action, from_status, to_status, "
                         "correlation_id, at) VALUES (?,?,?,?,?,?,?,?)", rows["ev"])  # fmt: skip
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    print(f"seeded {documents} documents ({files_n} files) in {time.perf_counter() - started:.0f} s: {db}")


def cases(documents: int) -> list[tuple[str, list[str]]]:
    n = documents // 2 + 1  # an invoice in the middle of the ledger (n % 4 == 1)
    n -= (n - 1) % 4
    f = (n - 1) // 4 + 1
    return [
        ("list newest 50", ["messages", "list"]),
        ("list --invoice", ["messages", "list", "--invoice", f"INV-{n:07d}"]),
        ("list --po (4 documents)", ["messages", "list", "--po", f"PO{n // 4:08d}"]),
        ("list --lot (4 ASNs)", ["messages", "list", "--lot", f"LOT{(n + 1) % 50000:05d}"]),
        ("list --control ISA13", ["messages", "list", "--control", f"{f:09d}", "--direction", "in"]),
        (
            "list --partner --type --since 7d",
            ["messages", "list", "--partner", "partner03", "--type", "invoice", "--since", "7d"],
        ),
        ("list --status dead_letter", ["messages", "list", "--status", "dead_letter", "--direction", "in"]),
        ("list --since/--until one day", ["messages", "list", "--since", "45d", "--until", "44d", "--limit", "500"]),
        ("find invoice number", ["find", f"INV-{n:07d}"]),
        ("find control number", ["find", str(f)]),
        ("status --json", ["status", "--json"]),
    ]


def inproc(args: list[str], home: Path, db: Path, repeat: int) -> float:
    """The command run in this process (click's runner): the query and the printing, no interpreter start-up."""
    from click.testing import CliRunner

    from gateway.cli.main import main as cli

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = CliRunner().invoke(cli, [*args, "--home", str(home), "--store", f"sqlite:///{db}"])
        times.append(time.perf_counter() - started)
        if done.exit_code not in (0, 1):
            raise SystemExit(f"{' '.join(args)}: exit {done.exit_code}: {done.output[-2000:]}")
    return min(times)


def run(args: list[str], home: Path, db: Path, repeat: int) -> tuple[float, int]:
    times = []
    lines = 0
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run([*GATEWAY, *args, "--home", str(home), "--store", f"sqlite:///{db}"],
                              capture_output=True, text=True, check=False, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr[-2000:]}")
        lines = len(done.stdout.splitlines())
    return min(times), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-search.sqlite"))
    args = parser.parse_args()
    seed(args.db, args.documents)
    home = args.db.parent / "bench-search-home"
    home.mkdir(exist_ok=True)
    bare = args.db.with_name(args.db.stem + "-noindex.sqlite")
    shutil.copyfile(args.db, bare)
    with sqlite3.connect(bare) as conn:
        for _table, name in INDEXES_0006:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute("ANALYZE")
    floor, _ = run(["messages", "list", "--limit", "1", "--direction", "out"], home, args.db, args.repeat)
    print(f"\nledger: {args.documents} documents, {args.db.stat().st_size / 1e6:.0f} MB; best of {args.repeat}")
    print(f"floor (start-up, store open, one row): {floor * 1000:.0f} ms\n")
    print("| command | process, with 0006 indexes | in-process, with | in-process, without | rows |")
    print("|---|---:|---:|---:|---:|")
    for label, argv in cases(args.documents):
        with_ix, rows = run(argv, home, args.db, args.repeat)
        fast = inproc(argv, home, args.db, args.repeat)
        slow = inproc(argv, home, bare, args.repeat)
        print(f"| `{label}` | {with_ix * 1000:.0f} ms | {fast * 1000:.0f} ms | {slow * 1000:.0f} ms | {rows} |")
    n = args.documents // 2 + 1
    n -= (n - 1) % 4
    with sqlite3.connect(args.db) as conn:
        started = time.perf_counter()
        found = conn.execute("SELECT id FROM documents WHERE canonical LIKE ?", (f'%"INV-{n:07d}"%',)).fetchall()
        scan = time.perf_counter() - started
    print(f"\npeer: the invoice number by LIKE over the canonical JSON (no search_keys), one query in-process: "
          f"{scan * 1000:.0f} ms for {len(found)} document(s)")  # fmt: skip


if __name__ == "__main__":
    main()
