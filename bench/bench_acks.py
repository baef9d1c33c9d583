"""Acknowledgment tracking benchmark: what the periodic check costs `gateway run`, and how fast acks match.

    python bench/bench_acks.py [--interchanges 5000] [--acks 1000] [--store URL]

A deployment in a temp folder (the repository's maps and partners) and a store (a SQLite file there,
or ``--store``, e.g. a PostgreSQL schema) are filled with ``--interchanges`` distinct 850s for
medsupply: the repository's sample purchase order rendered once, then renumbered per interchange
(each a real archived interchange with its own ISA13/GS06) and recorded as `gateway send` records it.
Then, each step timed:

- track: the first check reads every interchange back from the archive and tracks its set;
- idle check: a check when nothing changed (what `gateway run` pays each minute), best of 5, beside
  the baseline of one trivial store round trip (``list_outbound(limit=1)``);
- match: ``--acks`` 997s (half accepting, a quarter rejecting with AK3/AK4, a quarter for groups we
  never sent) matched as the check matches them, 50 a transaction;
- overdue: the clock moved past every deadline, one ``mark_overdue`` over all that still wait;
- command: the whole ``gateway acks --overdue --limit 20`` process, beside ``gateway status`` on the
  same deployment (a peer read command: start-up, settings, store).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.canonical import PurchaseOrder  # noqa: E402
from gateway.runtime.acks import AckCheck, AckTracker  # noqa: E402
from gateway.runtime.send import OrderSender  # noqa: E402
from gateway.store import Archive, Store  # noqa: E402
from gateway.store.acks import AckToMatch  # noqa: E402
from gateway.workspace import load_workspace  # noqa: E402
from gateway.x12.ack.read import FunctionalAck, SegmentError, SetAck, ack_dict  # noqa: E402
from gateway.x12.renumber import renumber  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def process(args: list[str], home: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gateway.cli.main", *args, "--home", str(home)],
                          capture_output=True, text=True, check=False, cwd=REPO)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{args}: exit {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interchanges", type=int, default=5000)
    parser.add_argument("--acks", type=int, default=1000)
    parser.add_argument("--store", help="store URL (default: a SQLite file in the temp deployment)")
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-acks-"))
    try:
        run(root, opts)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, opts: argparse.Namespace) -> None:
    (root / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(REPO / "partners", root / "partners", ignore=shutil.ignore_patterns("cases"))
    url = opts.store or f"sqlite:///{root / 'var' / 'gateway.sqlite'}"
    (root / "gateway.yaml").write_text(json.dumps({"store": url}))
    (root / "var").mkdir(exist_ok=True)
    clock = Clock()
    store = Store(url, clock=clock)
    store.upgrade()
    archive = Archive(root / "var" / "archive")
    ws = load_workspace(root)
    profile = ws.partners.get("medsupply")
    assert profile is not None
    order = PurchaseOrder.model_validate_json((REPO / "samples/canonical/purchase-order.json").read_text())
    template = OrderSender(ws, None, archive).render(profile, order, 1, clock())
    n = opts.interchanges
    fill, _ = timed(lambda: seed(store, archive, template, n, clock()))
    tracker = AckTracker(store, archive, ws.partners, ws.catalog)
    track, check = timed(tracker.check)
    assert check.tracked == n, check
    idle = min(timed(tracker.check)[0] for _ in range(5))
    base = min(timed(lambda: store.list_outbound(limit=1))[0] for _ in range(5))
    acks = [ack_for(i, n) for i in range(opts.acks)]
    counts = AckCheck()
    match, outcomes = timed(
        lambda: [r for i in range(0, len(acks), 50) for r in tracker.match(acks[i : i + 50], counts)]
    )
    assert all(o is not None for o in outcomes), counts
    clock.now += timedelta(days=2)
    overdue, rows = timed(store.mark_overdue)
    store.close()
    acks_cmd = min(process(["acks", "--overdue", "--limit", "20"], root) for _ in range(3))
    status_cmd = min(process(["status"], root) for _ in range(3))
    print(f"store {url.split('?')[0]}; {n} interchanges recorded in {fill:.1f} s")
    print("| step | count | seconds | per second |\n|---|---:|---:|---:|")
    print(f"| track (first check) | {n} | {track:.2f} | {n / track:,.0f} |")
    print(f"| idle check | 1 | {idle * 1000:.1f} ms | (baseline: one store query {base * 1000:.1f} ms) |")
    print(f"| match 997s | {len(acks)} | {match:.2f} | {len(acks) / match:,.0f} |")
    print(f"| mark overdue | {len(rows)} | {overdue:.2f} | {len(rows) / overdue:,.0f} |")
    print(f"| `gateway acks --overdue --limit 20` | 1 | {acks_cmd:.2f} | (peer `gateway status`: {status_cmd:.2f} s) |")


def seed(store: Store, archive: Archive, template: bytes, n: int, when: datetime) -> None:
    for i in range(1, n + 1):
        number = store.next_interchange_number("medsupply")
        sha = archive.put(renumber(template, number, when))
        store.add_outbound("medsupply", "850", sha, control_number=f"{number:09d}",
                           group_control_number=str(number), reason=f"bench {i}", expected_ack="pending")  # fmt: skip


def ack_for(i: int, n: int) -> AckToMatch:
    group = str(i % n + 1) if i % 4 != 3 else str(10_000_000 + i)
    sets = [SetAck("850", "0001", "A")]
    if i % 4 == 2:
        sets = [SetAck("850", "0001", "R", ["5"], [SegmentError("N1", 5, "N1", "8")])]
    ack = FunctionalAck("997", f"{i:09d}", "0001", "PO", group, "004010", sets[0].code, sets=sets)
    return AckToMatch({"id": 1_000_000 + i, "file_id": None, "partner_id": "medsupply",
                       "canonical": json.dumps(ack_dict(ack)), "received_at": datetime.now(UTC),
                       "correlation_id": "bench"})  # fmt: skip


if __name__ == "__main__":
    main()
