"""Reconciliation benchmark: `gateway recon run` over 10,000 POs with full chains (about 200,000 lines).

    python bench/bench_recon.py [--pos 10000] [--lines 5] [--store sqlite|pg]
    python bench/bench_recon.py incremental [--pos 200] [--base COMMIT]
    python bench/bench_recon.py share [--pos 200]

A deployment is made in a temporary folder and its store filled directly (SQLAlchemy Core on the
store's own tables, as `gateway run` would leave it: one file row, then for each PO an 850, an 855,
an 856 and an 810 as canonical JSON documents, ``--lines`` lines each). One PO in 20 is invoiced
0.45 over its price on line 1, one in 50 ships a unit more than ordered on line 2, so the run
writes exceptions too. Then the real command is timed as a user runs it, a subprocess under
/usr/bin/time -v (wall time and peak RSS):

1. the first `gateway recon run`: index every document, reconcile every chain, write the exceptions;
2. a second one over the same store: nothing new, every chain reconciled again (what a nightly
   re-run for the time-based SLAs costs).

It checks the exceptions written: exactly the injected ones (an invoice price 0.45 over, a line
shipped over; the invoices bill what was ordered, so the over-shipment causes nothing more).

`incremental` measures what reconciling each document as it is recorded adds to `gateway run`:
``--pos`` canonical POs dropped in send/medsupply/ (sent as 850s) and, per PO, an 855, an 856 and an
810 X12 file in inbox/medsupply/, processed by one `gateway run --once` (SQLite, whole process),
with this tree and with ``--base`` (default: the commit before reconciliation, extracted with
`git archive` into a temporary folder), alternately, three times each. On a loaded machine the
wall times swing more than the difference, so `share` also measures it in one process: the same
files through the runtime's `Service.run_once`, timing the calls that index and reconcile after each
batch against the whole run.
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
PROGRAM = "from gateway.cli import main as m; getattr(m, 'entry', m.main)()"
"""The `gateway` program as installed (its entry point; ``main`` in a checkout from before it had one)."""
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


def timed(home: Path, *args: str, repo: Path = REPO) -> tuple[float, int | None, str]:
    """Run ``gateway ARGS --home HOME`` with the code of ``repo``; (wall seconds, peak RSS in MB or None,
    stdout). Its CPU seconds (user + sys, from /usr/bin/time) are kept in ``LAST_CPU``."""
    cmd = [sys.executable, "-c", PROGRAM, *args, "--home", str(home)]
    if Path(TIME).exists():
        cmd = [TIME, "-v", *cmd]
    env = {"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"gateway {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr)
    LAST_CPU[0] = sum(float(c) for c in cpu) if len(cpu) == 2 else float("nan")
    return wall, int(found.group(1)) // 1024 if found else None, proc.stdout.strip()


LAST_CPU = [float("nan")]
"""The CPU seconds (user + sys) of the last :func:`timed` process."""

BASE = "dc24adf"
"""The commit this branch started from: no reconciliation."""


def _x12(kind: str, fid: str, n: int, body: list[str]) -> bytes:
    ctl = f"{n:09d}"
    body = [f"ST*{kind}*0001", *body]
    body.append(f"SE*{len(body) + 1}*0001")
    segs = [
        f"ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *261201*0930*U*00401*{ctl}*0*P*>",
        f"GS*{fid}*MEDSUPPLY*MERCYHOSP*20261201*0930*{n}*X*004010",
        *body,
        f"GE*1*{n}",
        f"IEA*1*{ctl}",
    ]
    return ("~\n".join(segs) + "~\n").encode()


_LINES = [("1", "10", "BX", "42.50", "GLV-NIT-M"), ("2", "4", "CA", "118.00", "SYR-10ML-LL"),
          ("3", "2", "EA", "1450.00", "IMP-HIP-52")]  # fmt: skip


def supplier_files(n: int) -> dict[str, bytes]:
    """The 855, 856 and 810 for PO ``n`` (all three lines accepted, shipped and invoiced as ordered)."""
    po = f"PO{n:08d}"
    ack = [f"BAK*00*AC*{po}*20261202"]
    for ln, qty, uom, price, vp in _LINES:
        ack += [f"PO1*{ln}*{qty}*{uom}*{price}**VN*{vp}", f"ACK*IA*{qty}*{uom}*068*20261128"]
    asn = [f"BSN*00*SH{n:08d}*20261128*1410*0001", "HL*1**S", "DTM*011*20261128", "HL*2*1*O", f"PRF*{po}***20261201"]
    for i, (ln, qty, uom, _, vp) in enumerate(_LINES):
        asn += [f"HL*{3 + i}*2*I", f"LIN*{ln}*VN*{vp}", f"SN1**{qty}*{uom}"]
    total = sum(int(q) * float(p) for _, q, _, p, _ in _LINES)
    inv = [f"BIG*20261129*INV{n:08d}*20261201*{po}"]
    inv += [f"IT1*{ln}*{qty}*{uom}*{price}**VN*{vp}" for ln, qty, uom, price, vp in _LINES]
    inv += [f"TDS*{round(total * 100)}", "CTT*3"]
    return {
        f"855-{n:06d}.edi": _x12("855", "PR", 3 * n, [*ack, "CTT*3"]),
        f"856-{n:06d}.edi": _x12("856", "SH", 3 * n + 1, [*asn, f"CTT*{2 + len(_LINES)}"]),
        f"810-{n:06d}.edi": _x12("810", "IN", 3 * n + 2, inv),
    }


def _home(pos: int, name: str) -> tuple[Path, str]:
    """A deployment with ``pos`` orders in send/medsupply/ and their 855/856/810 in inbox/medsupply/."""
    order = json.loads((REPO / "samples" / "canonical" / "purchase-order.json").read_text("utf-8"))
    home = Path(tempfile.mkdtemp(prefix=f"bench-recon-{name}-"))
    (home / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    url = f"sqlite:///{home / 'var' / 'gateway.db'}"
    settings = {"store": url, "intake": {"stable_seconds": 0}, "processing": {"batch": 32}}
    (home / "gateway.yaml").write_text(json.dumps(settings), "utf-8")
    send = home / "send" / "medsupply"
    send.mkdir(parents=True)
    # Asked for by the end of next year: the order alone is not late while its chain comes in.
    later = f"{datetime.now(UTC).year + 1}-12-31"
    orders = [{**order, "po_number": f"PO{n:08d}", "requested_delivery": later} for n in range(1, pos + 1)]
    (send / "orders.json").write_text(json.dumps(orders), "utf-8")
    inbox = home / "inbox" / "medsupply"
    inbox.mkdir(parents=True)
    for n in range(1, pos + 1):
        for file, data in supplier_files(n).items():
            (inbox / file).write_bytes(data)
    return home, url


def share(pos: int) -> None:
    """In one process: the time the runtime spends reconciling after each batch, against the whole run."""
    from gateway.runtime.service import Service, ensure_folders
    from gateway.settings import load_settings
    from gateway.workspace import load_workspace

    home, url = _home(pos, "share")
    try:
        deployment, _ = load_settings(home)
        ensure_folders(deployment)
        store = Store(url)
        store.upgrade()
        service = Service(deployment, load_workspace(home), store, worker="bench")
        spent = [0.0, 0]
        catch_up = service.reconciler.catch_up

        def timed_catch_up() -> int:
            start = time.perf_counter()
            try:
                return catch_up()
            finally:
                spent[0] += time.perf_counter() - start
                spent[1] += 1

        service.reconciler.catch_up = timed_catch_up  # type: ignore[method-assign]
        start = time.perf_counter()
        service.run_once()
        total = time.perf_counter() - start
        found = store.list_exceptions(limit=None)
        print(
            f"{pos} POs ({4 * pos} documents): run {total:.1f} s, of which reconciling {spent[0]:.2f} s "
            f"in {spent[1]} call(s): {100 * spent[0] / (total - spent[0]):.1f} % added to processing; "
            f"{len(store.chain_keys())} chains, {len(found)} exception(s)"
        )
        store.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def incremental(pos: int, base: str) -> None:
    """`gateway run --once` over ``pos`` full chains, this tree against ``base``, alternately."""
    trees = {"base": Path(tempfile.mkdtemp(prefix="bench-recon-base-")), "recon": REPO}
    archive = subprocess.run(["git", "-C", str(REPO), "archive", base], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(trees["base"])], input=archive, check=True)
    figures: dict[str, list[float]] = {"base": [], "recon": []}
    cpu: dict[str, list[float]] = {"base": [], "recon": []}
    try:
        for _ in range(3):
            for name, tree in trees.items():
                home, url = _home(pos, name)
                wall, rss, out = timed(home, "run", "--once", repo=tree)
                figures[name].append(wall)
                cpu[name].append(LAST_CPU[0])
                first = out.splitlines()[0] if out else ""
                print(f"{name}: {wall:.1f} s wall, {LAST_CPU[0]:.2f} s CPU, peak RSS {rss} MB ({first})")
                if name == "recon":
                    with Store(url) as store:
                        found = store.list_exceptions(limit=None)
                        chains = len(store.chain_keys())
                    print(f"  {chains} chains indexed, {len(found)} exception(s): {[e.reason for e in found][:3]}")
                shutil.rmtree(home, ignore_errors=True)
    finally:
        shutil.rmtree(trees["base"], ignore_errors=True)
    b, r = min(figures["base"]), min(figures["recon"])
    print(f"{pos} POs ({4 * pos} documents): base {b:.1f} s, with reconciliation {r:.1f} s: +{100 * (r - b) / b:.0f} %")
    cb, cr = sorted(cpu["base"])[1], sorted(cpu["recon"])[1]
    print(f"CPU seconds (user + sys), median of 3: base {cb:.2f} s, with reconciliation {cr:.2f} s: "
          f"+{100 * (cr - cb) / cb:.1f} %")  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["share"]:
        parser = argparse.ArgumentParser(description="the share of a run spent reconciling")
        parser.add_argument("share")
        parser.add_argument("--pos", type=int, default=200)
        share(parser.parse_args().pos)
        return
    if sys.argv[1:2] == ["incremental"]:
        parser = argparse.ArgumentParser(description="what reconciling as documents are recorded adds")
        parser.add_argument("incremental")
        parser.add_argument("--pos", type=int, default=200)
        parser.add_argument("--base", default=BASE)
        args = parser.parse_args()
        incremental(args.pos, args.base)
        return
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
            print(f"{label}: {wall:.1f} s wall, {LAST_CPU[0]:.1f} s CPU, peak RSS {rss} MB: {out}")
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
