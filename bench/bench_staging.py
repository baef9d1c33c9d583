"""The ERP staging loader's throughput: new documents/s, one transaction per document vs one per batch.

    python bench/bench_staging.py [--docs 640] [--batch 64] [--repeat 3] [--backend sqlite postgresql mariadb]

Each document is the sample partner medsupply's golden 855 (three lines, each with its
acknowledgment statuses) with a new PO number, so every load inserts a header and its child rows.
``one`` calls ``deliver`` per document (a transaction and a commit each); ``batch`` calls
``deliver_batch`` with ``--batch`` documents (one transaction; new documents, so one INSERT per
table), as the delivery loop does. SQLite is a WAL file with ``synchronous=FULL`` in a temporary folder;
PostgreSQL (``127.0.0.1:5432``, db ``test``) a fresh schema; MariaDB (``127.0.0.1:3306``, db
``test``) a fresh table prefix; both dropped afterwards. A backend that cannot be reached is
reported and skipped. The figure is documents / wall-clock seconds of the loading calls only, the
median of ``--repeat`` runs (the two modes alternate, each run on fresh tables), min-max beside it:
on a shared 2-core machine where the database servers compete with the loader, single runs vary by
a factor of two.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, inspect, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from gateway.delivery.base import Delivered, Payload  # noqa: E402
from gateway.delivery.staging import StagingConfig, StagingDestination  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
ACK = REPO / "partners" / "medsupply" / "cases" / "855-split-backorder.json"


def documents(n: int, tag: str) -> list[Payload]:
    """``n`` new 855s (unique PO numbers under ``tag``), as the delivery loop hands them over."""
    base = json.loads(ACK.read_text("utf-8"))[0]
    out = []
    for i in range(n):
        doc = copy.deepcopy(base)
        doc["po_number"] = f"{tag}-{i:06d}"
        out.append(
            Payload(
                kind="document",
                doc_type=doc["document_type"],
                partner_id="medsupply",
                correlation_id=f"corr-{tag}-{i}",
                idempotency_key=f"idem-{tag}-{i}",
                delivery_id=i + 1,
                document_id=i + 1,
                document=doc,
            )
        )
    return out


@contextmanager
def target(backend: str, folder: Path) -> Iterator[tuple[str, str]]:
    """(url, table prefix) of empty staging tables on ``backend``; cleaned up afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'staging.sqlite'}", "stg_"
        return
    admin_url = PG_URL if backend == "postgresql" else MYSQL_URL
    admin = create_engine(make_url(admin_url).update_query_dict({"connect_timeout": "3"}), poolclass=NullPool)
    try:
        if backend == "postgresql":
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            try:
                yield (
                    make_url(PG_URL)
                    .update_query_dict({"options": f"-csearch_path={schema}"})
                    .render_as_string(hide_password=False),
                    "stg_",
                )
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            return
        prefix = f"b{uuid.uuid4().hex[:8]}_"
        try:
            yield MYSQL_URL, prefix
        finally:
            with admin.begin() as conn:
                names = [t for t in inspect(conn).get_table_names() if t.startswith(prefix)]
                conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
                for name in names:
                    conn.execute(text(f"DROP TABLE `{name}`"))
                conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    finally:
        admin.dispose()


def run(loader: StagingDestination, payloads: list[Payload], batch: int) -> float:
    """Load ``payloads`` (one by one when ``batch`` is 1); documents per second. Every one must be inserted."""
    started = time.perf_counter()
    if batch == 1:
        outcomes: list[Any] = [loader.deliver(p) for p in payloads]
    else:
        outcomes = []
        for start in range(0, len(payloads), batch):
            outcomes.extend(loader.deliver_batch(payloads[start : start + batch]))
    elapsed = time.perf_counter() - started
    bad = [o for o in outcomes if not (isinstance(o, Delivered) and o.response["action"] == "inserted")]
    if bad:
        raise SystemExit(f"{len(bad)} documents not inserted, first: {bad[0]}")
    return len(payloads) / elapsed


def measure(backend: str, docs: int, batch: int, repeat: int) -> dict[str, list[float]] | str:
    """docs/s one by one and per batch on ``backend`` (fresh tables each run), or why it was skipped."""
    figures: dict[str, list[float]] = {"one": [], "batch": []}
    for mode, size in [("one", 1), ("batch", batch)] * repeat:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with target(backend, Path(tmp)) as (url, prefix):
                    loader = StagingDestination("bench", StagingConfig(url=url, table_prefix=prefix, upgrade=True))
                    try:
                        run(loader, documents(min(docs, 32), f"warm{mode}"), size)  # connections, caches
                        figures[mode].append(run(loader, documents(docs, mode), size))
                    finally:
                        loader.close()
            except OperationalError as exc:
                return f"skipped: {str(exc.orig).strip().splitlines()[0]}"
    return figures


def main() -> None:
    """Print docs/s per backend and mode."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=640, help="New documents per measurement.")
    parser.add_argument("--batch", type=int, default=64, help="Documents per deliver_batch call.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per mode; the median is printed.")
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql", "mariadb"])
    args = parser.parse_args()
    print(f"{args.docs} new single-PO 855s (3 lines) per run; batch = {args.batch}; median of {args.repeat} runs")
    for backend in args.backend:
        figures = measure(backend, args.docs, args.batch, args.repeat)
        if isinstance(figures, str):
            print(f"{backend:<11} {figures}")
            continue
        one, many = statistics.median(figures["one"]), statistics.median(figures["batch"])
        print(
            f"{backend:<11} one by one {one:5.0f} docs/s ({min(figures['one']):.0f}-{max(figures['one']):.0f})   "
            f"batch {many:5.0f} docs/s ({min(figures['batch']):.0f}-{max(figures['batch']):.0f})   x{many / one:.1f}"
        )


if __name__ == "__main__":
    main()
