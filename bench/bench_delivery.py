"""End-to-end delivery benchmark: files/s and drop-to-delivered latency of `gateway run` with routing.

    python bench/bench_delivery.py throughput --files 1000 [--repeat 1] [--delivery-workers 0 1]
    python bench/bench_delivery.py latency --rate 50 --seconds 20

Files are bench_runtime's single-PO 855s (medsupply, 3 lines, unique PO number and ISA13).

`throughput` times the whole `gateway run --once` process (a subprocess, as a user runs it) over the
same files in two configurations, back to back in one invocation:

- processing: the shipped default route (canonical JSON files under outbox/canonical);
- delivery: every document routed to a REST destination on a loopback receiver (a threaded HTTP
  server in this process answering 200 at once and counting distinct Idempotency-Keys) AND to the
  `sql` staging destination on a SQLite file (`upgrade: true`).

It prints files/s for each (with and without start-up, timed first on the empty inbox, as
bench_runtime does), the ratio delivery/processing, the gateway's peak RSS (with /usr/bin/time -v
when present), the machine's speed at the start of each pair (a fixed loop's CPU seconds), and
checks that in the delivery run every document reached both destinations: the receiver's distinct
keys and the staging header rows both equal the number of files.

``--delivery-workers 0 1`` runs the delivery configuration once with the service's own delivery threads
(0) and once with one delivery process (``processing.delivery_workers: 1``), after the same processing run.
``--batch N`` sets ``processing.batch`` in every run. ``--services N`` starts N `gateway run --once` at
once on the one deployment in every run (worker names s1..sN, each with its own delivery processes), as N
services on one host share its inbox and ledger: files/s is over the wall time until the last ends, CPU
the sum. ``--ledger-writes`` runs the gateway with ``-v`` and prints the line each process logs at its end:
its write transactions, the seconds they waited to begin (on SQLite, for the ledger's one write lock) and
held it, and the kinds that held it longest.
``BENCH_GATEWAY_YAML`` (environment) is appended to each deployment's gateway.yaml, to try another
top-level setting in both runs, e.g.
``BENCH_GATEWAY_YAML=$'intake: {stable_seconds: 0.2}\n'``.

`latency` runs `gateway run` as a service with the delivery configuration and drops files at a
steady rate (temporary name, then rename). A file's drop-to-delivered time runs from the rename to
the later of its REST arrival (recorded by the receiver, keyed by PO number) and its staging
delivery's ``delivered_at`` in the ledger's deliveries table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtime import REPO, x855
from precompile import compile_gateway

TIME = "/usr/bin/time"


class Receiver:
    """A loopback REST receiver: answers 200 at once; records each distinct Idempotency-Key and when
    each PO number first arrived (wall clock, UTC)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.requests = 0
        self.arrived: dict[str, datetime] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: httpx reuses its connection as with a real API
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = datetime.now(UTC)
                key = self.headers.get("Idempotency-Key", "")
                po = _po_number(body)
                with receiver.lock:
                    receiver.requests += 1
                    receiver.keys.add(key)
                    if po is not None:
                        receiver.arrived.setdefault(po, now)
                # One write for the whole answer: headers and body sent apart meet Nagle's algorithm
                # and the client's delayed ACK, 40 ms per request that no real server would add.
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/po-acks/{{business_key}}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_PO = re.compile(rb'"po_number"\s*:\s*"([^"]+)"')


def _po_number(body: bytes) -> str | None:
    match = _PO.search(body)
    return match.group(1).decode() if match else None


DESTINATIONS = {
    "rest": "  receiver:\n    type: rest\n    url: '{rest_url}'\n",
    "sql": "  erp-staging:\n    type: sql\n    url: 'sqlite:///{home}/var/staging.sqlite'\n    upgrade: true\n",
}
ROUTED = {"rest": "receiver", "sql": "erp-staging"}
TO = {"rest+sql": ("rest", "sql"), "rest": ("rest",), "sql": ("sql",)}


def deployment(
    to: tuple[str, ...], rest_url: str | None, stable: float = 0.0, workers: int = 0, batch: int | None = None
) -> Path:
    """A fresh deployment folder; with ``to`` (``rest``, ``sql``), every document goes there instead of
    the shipped default route (acknowledgments go to partner-outbox either way); ``workers``: the
    service's delivery processes (``processing.delivery_workers``); ``batch``: ``processing.batch``."""
    home = Path(tempfile.mkdtemp(prefix="gw-bench-dlv-"))
    shutil.copytree(REPO / "maps", home / "maps")
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    (home / "var").mkdir()
    text = f"store: 'sqlite:///var/gateway.db'\nintake: {{stable_seconds: {stable}, rescan_seconds: 2}}\n"
    processing = {"delivery_workers": workers} if workers else {}
    processing |= {"batch": batch} if batch else {}
    text += f"processing: {{{', '.join(f'{k}: {v}' for k, v in processing.items())}}}\n" if processing else ""
    text += os.environ.get("BENCH_GATEWAY_YAML", "")  # more settings, e.g. "intake: {stable_seconds: 0.2}\n"
    if to:
        text += "destinations:\n" + "".join(DESTINATIONS[d].format(rest_url=rest_url, home=home) for d in to)
        text += f"routes:\n  - name: everything\n    match: {{}}\n    to: [{', '.join(ROUTED[d] for d in to)}]\n"
    (home / "gateway.yaml").write_text(text)
    from gateway.store import Store

    with Store(f"sqlite:///{home}/var/gateway.db") as st:
        st.upgrade()
    return home


def gateway(*args: str, home: Path) -> list[str]:
    return [sys.executable, "-m", "gateway.cli.main", *args, "--home", str(home)]


def _timed(cmds: list[list[str]], home: Path) -> tuple[float, float | None, int | None, float]:
    """Run ``cmds`` at once, each to completion (their logs to var/gateway.log): wall seconds until the last
    ends, and CPU seconds (user + system, summed over them) and the largest peak RSS in KiB when
    /usr/bin/time is there, and this process's CPU seconds meanwhile (its main thread waits: the loopback
    receiver's, which takes its share of the same cores). CPU time is the steadier figure on a shared
    machine: other processes stretch the wall clock, not the work done."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rss_files = [home / "var" / f"time-{i}.txt" for i in range(len(cmds))]
    timed = os.access(TIME, os.X_OK)
    with open(home / "var" / "gateway.log", "ab") as log:
        own = time.process_time()
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [TIME, "-v", "-o", str(f), *cmd] if timed else cmd,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=home,
                env=env,
            )
            for cmd, f in zip(cmds, rss_files, strict=True)
        ]
        codes = [p.wait() for p in procs]
        elapsed = time.perf_counter() - start
        own = time.process_time() - own
    if any(codes):
        raise SystemExit(f"gateway run exited {codes} (see {home / 'var' / 'gateway.log'})")
    if not all(f.exists() for f in rss_files):
        return elapsed, None, None, own
    texts = [f.read_text() for f in rss_files]
    cpu = sum(float(m) for t in texts for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", t))
    peaks = [int(m) for t in texts for m in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", t)]
    return elapsed, cpu, max(peaks) if peaks else None, own


def _one_throughput(
    n: int,
    to: tuple[str, ...],
    workers: int = 0,
    batch: int | None = None,
    ledger_writes: bool = False,
    services: int = 1,
) -> dict[str, Any]:
    """One `gateway run --once` over ``n`` files routed ``to`` (empty: the shipped default); with
    ``ledger_writes`` it runs with ``-v`` and keeps each process's "ledger writes" log line. ``services``:
    that many `gateway run --once` at once on the one deployment (worker names s1, s2...), each with its
    own ``workers`` delivery processes, as several services on one host share an inbox and a ledger."""
    receiver = Receiver() if "rest" in to else None
    try:
        home = deployment(to, receiver.url if receiver else None, workers=workers, batch=batch)
        inbox = home / "inbox" / "medsupply"
        inbox.mkdir(parents=True)
        # Start-up alone (imports, maps, the store, destinations built: the staging migration runs
        # here), on the empty inbox, as bench_runtime times it.
        startup, startup_cpu, _, _ = _timed([gateway("run", "--once", home=home)], home)
        for i in range(n):
            (inbox / f"855-{i:06d}.edi").write_bytes(x855(i + 1))
        log_at = (home / "var" / "gateway.log").stat().st_size
        verbose = ["-v"] if ledger_writes else []  # each process then logs where its ledger writes went
        named = (lambda i: ["--worker", f"s{i}"]) if services > 1 else (lambda i: [])
        runs = [gateway("run", "--once", *verbose, *named(i), home=home) for i in range(1, services + 1)]
        elapsed, cpu, rss, receiver_cpu = _timed(runs, home)
        with open(home / "var" / "gateway.log", "rb") as log:
            log.seek(log_at)
            writes = [line.split("gateway.run: ", 1)[-1] for line in log.read().decode().splitlines()]
    finally:
        if receiver is not None:
            receiver.close()
    out: dict[str, Any] = {
        "seconds": elapsed,
        "startup": startup,
        "cpu_ms": None if cpu is None or startup_cpu is None else 1000 * (cpu - services * startup_cpu) / n,
        "fps": n / elapsed,
        "fps_steady": n / (elapsed - startup),
        "rss_mib": None if rss is None else rss / 1024,
        "receiver_ms": 1000 * receiver_cpu / n if receiver is not None else None,
        "processed": _processed(home),
        "delivered": _delivered(home),
        "writes": [line for line in writes if "ledger writes: " in line],
    }
    checks = [out["processed"] == n]
    if receiver is not None:
        out["keys"] = len(receiver.keys)
        checks.append(out["keys"] == n)
    if "sql" in to:
        out["staged"] = _staged(home)
        checks.append(out["staged"] == n)
    out["ok"] = all(checks)
    _FINISHED.append(home)  # removed when the bench ends, see _remove_finished
    return out


def _processed(home: Path) -> int:
    with sqlite3.connect(home / "var" / "gateway.db") as conn:
        return conn.execute("SELECT count(*) FROM files WHERE status = 'processed'").fetchone()[0]


def _staged(home: Path) -> int:
    with sqlite3.connect(home / "var" / "staging.sqlite") as conn:
        return conn.execute("SELECT count(*) FROM stg_document").fetchone()[0]


def _delivered(home: Path) -> dict[str, int]:
    with sqlite3.connect(home / "var" / "gateway.db") as conn:
        rows = conn.execute(
            "SELECT destination, count(*) FROM deliveries WHERE status = 'delivered' GROUP BY destination"
        ).fetchall()
    return dict(rows)


# Each run's deployment folder is removed when the bench ends, not between runs. On ext4 without a journal
# (this VM's disk), creating a file skips every inode deleted in the last minutes, reading each one's table
# block: after one run's folder (~10,000 files) was removed, a file created by the next run cost 0.3-1.3 ms
# of kernel time instead of ~0.03 (perf: find_get_block_common, recently_deleted), and the run measured
# mostly that. Removing folders between runs handicapped whichever run came second.
_FINISHED: list[Path] = []


def _remove_finished() -> None:
    for home in _FINISHED:
        shutil.rmtree(home, ignore_errors=True)


def _gauge() -> str:
    """The machine's speed now: the CPU seconds a fixed loop takes in a fresh interpreter (0.45-0.91 s on
    this 2-core VM from one day to the next), and the microseconds it takes to create (and close) an empty
    file in the folder deployments are made in (30 µs to 1.3 ms on this VM's disk, see _FINISHED); the
    files/s of runs far apart compare only beside them."""
    code = "import time; t = time.process_time(); sum(range(3 * 10**7)); print(time.process_time() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return f"fixed-loop={float(done.stdout):.2f}s create={_create_us():.0f}us"


def _create_us(n: int = 200) -> float:
    """Microseconds to create and close one empty file, over ``n`` files in a new folder where the bench
    makes its deployments (the folder is then removed with them, at the end)."""
    folder = Path(tempfile.mkdtemp(prefix="gw-bench-create-"))
    _FINISHED.append(folder)
    start = time.perf_counter()
    for i in range(n):
        os.close(os.open(folder / f"{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return (time.perf_counter() - start) / n * 1e6


def _line(label: str, r: dict[str, Any]) -> str:
    cpu = "" if r["cpu_ms"] is None else f" cpu={r['cpu_ms']:.2f}ms/file"
    rss = "" if r["rss_mib"] is None else f" rss={r['rss_mib']:.0f}MiB"
    rss += "" if r["receiver_ms"] is None else f" receiver-cpu={r['receiver_ms']:.2f}ms/file"
    return (
        f"  {label:<11} seconds={r['seconds']:.2f} start-up={r['startup']:.2f}s files/s={r['fps']:.1f} "
        f"files/s-after-start-up={r['fps_steady']:.1f}{cpu}{rss}"
    )


def throughput(
    n: int,
    repeat: int,
    to: tuple[str, ...],
    workers: list[int],
    batch: int | None = None,
    ledger_writes: bool = False,
    services: int = 1,
) -> int:
    """Processing alone, then delivery ``to`` with each number of delivery processes in ``workers`` (0: the
    service's own threads), back to back, ``repeat`` times; each run with ``services`` services at once."""
    failures = 0
    for r in range(repeat):
        base = _one_throughput(n, (), batch=batch, ledger_writes=ledger_writes, services=services)
        size = f" batch={batch}" if batch else ""
        size += f" services={services}" if services > 1 else ""
        print(f"throughput run={r + 1} files={n}{size} to={'+'.join(to)} {_gauge()}", flush=True)
        print(_line("processing", base), flush=True)
        for w in workers:
            dlv = _one_throughput(n, to, w, batch, ledger_writes, services)
            failures += not (base["ok"] and dlv["ok"])
            ratio = f"  ratio delivery/processing: files/s={dlv['fps'] / base['fps']:.3f} " + (
                f"after start-up={dlv['fps_steady'] / base['fps_steady']:.3f}"
            )
            if base["cpu_ms"] and dlv["cpu_ms"]:
                ratio += f" cpu/file={dlv['cpu_ms'] / base['cpu_ms']:.2f}x"
            seen = " ".join(f"{k}={dlv[k]}" for k in ("keys", "staged") if k in dlv)
            for line in [*(base["writes"] if w == workers[0] else []), *dlv["writes"]]:
                print(f"  {line}", flush=True)
            print(
                f"{_line(f'delivery w={w}', dlv)}\n{ratio}\n"
                f"  check: processed={base['processed']}/{dlv['processed']} receiver/staging {seen} "
                f"ledger delivered={dlv['delivered']} {'OK' if base['ok'] and dlv['ok'] else 'MISMATCH'}",
                flush=True,
            )
    return 1 if failures else 0


def _staging_delivered(home: Path) -> dict[str, datetime]:
    """file name -> ``delivered_at`` of its staging delivery, from the ledger."""
    with sqlite3.connect(home / "var" / "gateway.db") as conn:
        rows = conn.execute(
            "SELECT f.name, d.delivered_at FROM deliveries d JOIN files f ON f.id = d.file_id "
            "WHERE d.destination = 'erp-staging' AND d.status = 'delivered'"
        ).fetchall()
    return {name: _utc(at) for name, at in rows}


def _utc(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def latency(
    rate: float, seconds: float, stable: float, to: tuple[str, ...], workers: int = 0, batch: int | None = None
) -> int:
    """`gateway run` as a service delivering ``to``; files dropped at ``rate``; drop-to-delivered."""
    receiver = Receiver() if "rest" in to else None
    home = deployment(to, receiver.url if receiver else None, stable, workers, batch)
    inbox = home / "inbox" / "medsupply"
    inbox.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open(home / "var" / "gateway.log", "ab")  # noqa: SIM115 - open for the service's lifetime
    proc = subprocess.Popen(gateway("run", "-v", home=home), stdout=subprocess.DEVNULL, stderr=log, cwd=home, env=env)
    # Start-up (imports, maps, migrations) is not what is measured: files are dropped once the service
    # logs that it watches the inbox (a fixed pause let a slow start-up on a loaded machine count) and each
    # of its delivery processes that it delivers (they start beside it and take longer: maps, destinations;
    # 1.5 s more on a slow machine, which the first second's files waited for).
    started = time.monotonic()
    while not _ready(home / "var" / "gateway.log", workers) and time.monotonic() - started < 180:
        if proc.poll() is not None:
            raise SystemExit(f"gateway run exited {proc.returncode} (see {home / 'var' / 'gateway.log'})")
        time.sleep(0.2)
    dropped: dict[str, datetime] = {}
    n = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        if (pause := due - time.perf_counter()) > 0:
            time.sleep(pause)
        name = f"855-{i:06d}.edi"
        tmp = inbox / f".{name}.part"
        tmp.write_bytes(x855(i + 1))
        os.rename(tmp, inbox / name)
        dropped[name] = datetime.now(UTC)
    lag = time.perf_counter() - t0 - (n - 1) / rate  # how far the dropper itself fell behind
    arrived: dict[str, dict[str, datetime]] = {}
    deadline = time.time() + 60
    while time.time() < deadline:
        if receiver is not None:
            with receiver.lock:  # the receiver keys by PO number; x855(i + 1) carries PO{i + 1:08d}
                arrived["rest"] = {f"855-{int(po[2:]) - 1:06d}.edi": at for po, at in receiver.arrived.items()}
        if "sql" in to:
            arrived["sql"] = _staging_delivered(home)
        if all(len(arrived[d]) >= n for d in to):
            break
        time.sleep(0.5)
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    if receiver is not None:
        receiver.close()
    both = [name for name in dropped if all(name in arrived[d] for d in to)]
    if not both:
        print(f"latency rate={rate}/s files={n}: nothing delivered (see {home})")
        return 1
    lines = [
        f"latency rate={rate}/s files={n} to={'+'.join(to)} delivered-everywhere={len(both)} "
        f"stable_seconds={stable} dropper-lag={lag * 1000:.0f}ms",
        f"  drop-to-delivered (the later):  {_summary([_later(arrived, to, k) - dropped[k] for k in both])}",
    ]
    for d in to:
        lines.append(f"  drop-to-{d:<22} {_summary([arrived[d][k] - dropped[k] for k in both])}")
    # The service's own end-to-end rate: from the first drop to the last delivery. At a rate it keeps up with,
    # about that rate; above what it can do, what it can do (the backlog grows and the latencies with it).
    span = (max(_later(arrived, to, k) for k in both) - min(dropped[k] for k in both)).total_seconds()
    lines.append(f"  first drop to last delivered: {len(both)} files in {span:.2f} s = {len(both) / span:.1f} files/s")
    print("\n".join(lines), flush=True)
    _FINISHED.append(home)
    return 0 if len(both) == n else 1


def _ready(log: Path, workers: int) -> bool:
    """Whether the service's log says it watches the inbox and each of its ``workers`` delivery processes
    that it delivers."""
    text = log.read_bytes()
    return b" watching " in text and text.count(b" delivering (store ") >= workers


def _later(arrived: dict[str, dict[str, datetime]], to: tuple[str, ...], name: str) -> datetime:
    return max(arrived[d][name] for d in to)


def _summary(deltas: list[timedelta]) -> str:
    values = sorted(d.total_seconds() for d in deltas)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"p50={statistics.median(values) * 1000:.0f}ms p99={p99 * 1000:.0f}ms max={values[-1] * 1000:.0f}ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--files", type=int, default=1000)
    t.add_argument("--repeat", type=int, default=1, help="pairs of runs (processing, then delivery)")
    lat = sub.add_parser("latency")
    lat.add_argument("--rate", type=float, default=50)
    lat.add_argument("--seconds", type=float, default=20)
    lat.add_argument("--stable", type=float, default=0.5, help="intake.stable_seconds (0.5: the default)")
    t.add_argument("--delivery-workers", type=int, nargs="+", default=[0], help="delivery runs with N processes")
    lat.add_argument("--delivery-workers", type=int, default=0, help="processing.delivery_workers")
    for p in (t, lat):
        p.add_argument(
            "--to", choices=sorted(TO), default="rest+sql", help="where documents go in the delivery configuration"
        )
        p.add_argument("--batch", type=int, default=None, help="processing.batch in every run (default: its default)")
    t.add_argument(
        "--ledger-writes",
        action="store_true",
        help="run the gateway with -v and print each process's ledger writes (time waiting for and holding "
        "SQLite's write lock, by kind)",
    )
    t.add_argument(
        "--services",
        type=int,
        default=1,
        help="that many `gateway run --once` at once on one deployment, in every run (each with its own "
        "delivery processes)",
    )
    for p in (t, lat):
        p.add_argument(
            "--keep",
            action="store_true",
            help="leave the deployment folders in place at the end (they are printed): removing thousands of "
            "files slows the file creations of a bench started in the next minutes on this VM's disk",
        )
    args = parser.parse_args()
    to = TO[args.to]
    compile_gateway(REPO)
    try:
        if args.mode == "throughput":
            return throughput(
                args.files, args.repeat, to, args.delivery_workers, args.batch, args.ledger_writes, args.services
            )
        return latency(args.rate, args.seconds, args.stable, to, args.delivery_workers, args.batch)
    finally:
        if args.keep:
            print(f"kept: {' '.join(str(home) for home in _FINISHED)}", flush=True)
        else:
            _remove_finished()


if __name__ == "__main__":
    raise SystemExit(main())
