"""A realistic ledger of N documents on PostgreSQL, for the dashboard's performance (issue 14).

    python bench/gen_store.py [--documents 1000000] [--url postgresql+psycopg://postgres@127.0.0.1:5432/gateway_bench]
                              [--seed 14] [--end 2026-12-06T22:00] [--archive /tmp/gateway_bench_home/archive]
    python bench/gen_store.py --drop      # DROP DATABASE gateway_bench when done

The database is created if missing (dropped and created again if it holds a ledger), migrated by the
gateway's own migrations (`Store.upgrade`), then filled with COPY: the secondary indexes are dropped
first and built again after (as pg_restore does), the id sequences moved past the rows, and the
tables VACUUM ANALYZEd, so the planner sees what a long-lived ledger's would.

What it holds, over ``--days`` (90) ending at ``--end`` (default: now, to the minute), across 50
partners with Zipf-like volumes:

- CSV files of purchase orders from the ERP (1-3 each), each PO a document, an 850 sent (outbound row,
  its delivery to the partner's SFTP, its ``ack_expectations`` row: accepted, waiting, overdue or
  rejected by age and chance) and its business key;
- X12 files from the partners: one interchange, one group, 1-4 sets of one type (855, 856, 810) or a
  997, each set its document with ``search_keys`` from :func:`gateway.store.search.keys_of`, a 997 sent
  back per file, and the reconciliation index (``recon_links``) of every PO-chain document;
- a delivery per document to the ERP destination of its type, with attempts: 5 % retried, 0.2 % dead
  letters (rejected after retries), the last ten minutes still pending; 0.4 % of sets rejected with a
  located error, 0.2 % of documents unrouted;
- ``ack_receipts`` for the 997s, reconciliation exceptions (price variances on 3 % of invoices, lots
  missing on 1 % of ASNs, late acknowledgments), open when recent, else resolved or waived;
- events as the gateway writes them: file created and processed, each interchange, set and document
  created, each delivery created and settled.

The numbers are drawn from ``random.Random(seed)``: the same seed and ``--end`` give the same ledger.
With ``--archive``, every ``--archive-every``-th X12 file's bytes are put in a gateway archive there, so
a lineage page can show raw segments (the bench picks those files).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from storegen_rows import COLUMNS, Generator  # noqa: E402

from gateway.store import Store  # noqa: E402
from gateway.store.archive import Archive  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gateway_bench"


def libpq_dsn(url: str, database: str | None = None) -> str:
    """The psycopg connection string of a SQLAlchemy URL (optionally another database on that server)."""
    u = make_url(url)
    parts = {"host": u.host or "127.0.0.1", "port": u.port or 5432, "user": u.username or "postgres",
             "dbname": database or u.database}  # fmt: skip
    if u.password:
        parts["password"] = u.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


def recreate_database(url: str) -> None:
    """A new, empty database named by ``url`` (dropped first when it exists)."""
    name = make_url(url).database
    with psycopg.connect(libpq_dsn(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(libpq_dsn(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    print(f"dropped database {name}")


def secondary_indexes(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every index not behind a primary key or unique constraint."""
    rows = conn.execute(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.schemaname = current_schema() AND NOT EXISTS
             (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"""
    ).fetchall()
    return [(str(n), str(d)) for n, d in rows]


def fill(url: str, gen: Generator) -> dict[str, int]:
    """COPY the generator's rows in, indexes dropped meanwhile; returns the rows per table."""
    counts = dict.fromkeys(COLUMNS, 0)
    begun = time.perf_counter()
    with psycopg.connect(libpq_dsn(url)) as conn:
        # Foreign keys are not checked row by row while loading (the generator gives consistent ids), as
        # pg_restore loads data: the constraints stay declared.
        conn.execute("SET session_replication_role = replica")
        saved = secondary_indexes(conn)
        for name, _ in saved:
            conn.execute(f'DROP INDEX "{name}"')
        for chunk in gen.chunks():
            with conn.cursor() as cur:
                for table, rows in chunk.items():
                    if not rows:
                        continue
                    with cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    counts[table] += len(rows)
            conn.commit()
            print(
                f"  {gen.documents_made:>9} documents, {counts['events']:>9} events, "
                f"{time.perf_counter() - begun:.0f} s",
                flush=True,
            )
        started = time.perf_counter()
        for _, ddl in saved:
            conn.execute(ddl)
        for table in COLUMNS:
            if "id" in COLUMNS[table]:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM "
                    f"{table}), false)"
                )
        # Every document is in recon_links already: the reconciliation index starts after the last one.
        conn.execute("INSERT INTO recon_cursors (name, value, updated_at) SELECT 'documents', coalesce(max(id), 0), "
                     "now() FROM documents")  # fmt: skip
        conn.commit()
        print(f"  {len(saved)} indexes built in {time.perf_counter() - started:.0f} s")
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help="the ledger's database (created, replaced)")
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--partners", type=int, default=50)
    parser.add_argument("--end", help="the newest receipt, ISO UTC (default: now, to the minute)")
    parser.add_argument("--archive", type=Path, help="put a sample of the X12 files' bytes in this archive")
    parser.add_argument("--archive-every", type=int, default=100)
    parser.add_argument("--drop", action="store_true", help="drop the database and exit")
    args = parser.parse_args()
    if args.drop:
        drop_database(args.url)
        return
    end = (
        datetime.fromisoformat(args.end).replace(tzinfo=UTC)
        if args.end
        else datetime.now(UTC).replace(second=0, microsecond=0)
    )
    archive = Archive(args.archive) if args.archive else None

    def keep(data: bytes) -> None:
        if archive is not None and archive.put(data) != hashlib.sha256(data).hexdigest():
            raise SystemExit("the archive's digest differs from sha256 of the bytes")

    started = time.perf_counter()
    cpu = time.process_time()
    recreate_database(args.url)
    with Store(args.url) as store:
        store.upgrade()
    gen = Generator(args.documents, seed=args.seed, end=end, days=args.days, partners=args.partners,
                    keep=keep if archive else None, keep_every=args.archive_every)  # fmt: skip
    counts = fill(args.url, gen)
    wall = time.perf_counter() - started
    print(f"\n{args.documents} documents up to {end.isoformat()} (seed {args.seed}) in {make_url(args.url).database}: "
          f"{wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU in this process")  # fmt: skip
    for table, n in counts.items():
        print(f"  {table:<18} {n:>10}")
    with psycopg.connect(libpq_dsn(args.url)) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    print(f"  database size: {size[0] if size else '?'}")


if __name__ == "__main__":
    main()
