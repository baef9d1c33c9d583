"""The dashboard's pages rendered on a big ledger (issue 14): overview, a search by PO number, a lineage.

    python bench/gen_store.py --archive /tmp/gwbench/home/archive      # the 1,000,000-document ledger
    python bench/bench_web.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/gateway_bench]
                              [--home /tmp/gwbench/home] [--requests 30]

Two measurements, in the same run:

- **process**: the real `gateway web` (uvicorn) started on a loopback port, each page asked with httpx
  over TCP, ``--requests`` times each, the three pages in turn (interleaved, so load drifts hit them
  alike) after a warm-up: median and p95 of the whole request (headers, body read), and the server
  process's and the PostgreSQL backends' CPU seconds per request (from /proc: what a page costs, which
  the wall time of a loaded host hides);
- **in-process**: the same requests through Starlette's TestClient, with every public Store method
  wrapped to add up the time spent in it: the store's share of each page.

Sign-in is by the trusted proxy header (``web.trusted_header``), so argon2's deliberate slowness at
login is not in the figures (it is paid once per session, not per page). The deployment folder
``--home`` gets a gateway.yaml pointing at the ledger (``store:``) and the archive gen_store.py filled.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from bench_dashboard import DEFAULT_URL, targets  # noqa: E402
from gen_store import libpq_dsn  # noqa: E402

from gateway.store import Store  # noqa: E402

USER = "bench"
HEADER = "X-Remote-User"


def write_home(home: Path, url: str) -> None:
    """A deployment whose store is the bench ledger, with one viewer named by the proxy header."""
    (home / "archive").mkdir(parents=True, exist_ok=True)
    (home / "gateway.yaml").write_text(
        f"store: {url}\nfolders:\n  archive: archive\nweb:\n  trusted_header: {HEADER}\n"
        f"  users:\n    - {{name: {USER}, role: viewer}}\n"
    )


def pages(t: dict[str, Any]) -> dict[str, str]:
    return {"overview": "/", "search by PO": f"/search?q={t['po']}", "lineage": f"/documents/{t['document']}"}


def stats(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@contextmanager
def server(home: Path, back_minutes: int) -> Iterator[tuple[str, int]]:
    """`gateway web` on a free loopback port, its clock ``back_minutes`` behind (libfaketime); (base URL, pid)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if back_minutes:
        env |= {"LD_PRELOAD": FAKETIME, "FAKETIME": f"-{back_minutes}m", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    log = (home / "web.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "web", "--home", str(home), "--port", str(port),
         "--log-level", "warning"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/login", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gateway web did not start: see {home / 'web.log'}") from None
                time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def database_cpu(conn: psycopg.Connection) -> float:
    """CPU seconds of the PostgreSQL backends serving the bench database (this connection's excepted):
    the database's share of a page, which a loaded host's wall time hides."""
    pids = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    total = 0.0
    for (pid,) in pids:
        try:
            total += cpu_seconds(int(pid))
        except (FileNotFoundError, ProcessLookupError):
            continue  # a backend that ended meanwhile
    return total


def over_loopback(home: Path, url: str, paths: dict[str, str], n: int, back: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with (
        server(home, back) as (base, pid),
        httpx.Client(base_url=base, headers={HEADER: USER}, timeout=60) as client,
        psycopg.connect(libpq_dsn(url), autocommit=True) as watch,
    ):
        db_cpu: dict[str, float] = dict.fromkeys(paths, 0.0)
        times: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, float] = dict.fromkeys(paths, 0.0)
        sizes: dict[str, int] = {}
        for path in paths.values():  # warm-up: templates compiled, pool connected
            got = client.get(path)
            if got.status_code != 200:
                raise SystemExit(f"GET {path}: HTTP {got.status_code}: {got.text[:500]}")
        for _ in range(n):
            for name, path in paths.items():
                before, db_before = cpu_seconds(pid), database_cpu(watch)
                started = time.perf_counter()
                got = client.get(path)
                times[name].append((time.perf_counter() - started) * 1000)
                cpu[name] += cpu_seconds(pid) - before
                db_cpu[name] += database_cpu(watch) - db_before
                sizes[name] = len(got.content)
                if got.status_code != 200:
                    raise SystemExit(f"GET {path}: HTTP {got.status_code}")
        for name in paths:
            median, p95 = stats(times[name])
            out[name] = {"median": median, "p95": p95, "cpu": cpu[name] * 1000 / n, "db": db_cpu[name] * 1000 / n,
                         "bytes": sizes[name]}  # fmt: skip
    return out


def timing_store(store: Store, spent: list[float]) -> None:
    """Wrap every public method of ``store`` (on the instance) to add its wall time to ``spent[0]``."""
    for name in dir(type(store)):
        if name.startswith("_") or not callable(getattr(type(store), name, None)):
            continue
        method = getattr(store, name)

        def wrapped(*args: Any, _m: Callable[..., Any] = method, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _m(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started

        setattr(store, name, wrapped)


def in_process(home: Path, url: str, paths: dict[str, str], n: int, back: int) -> dict[str, dict[str, float]]:
    from starlette.testclient import TestClient

    import gateway.web.pages as pages_module
    from gateway.web.app import create_app

    class Behind(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Behind:
            return cast(Behind, datetime.now(tz) - timedelta(minutes=back))

    pages_module.datetime = Behind  # type: ignore[misc] # the pages' clock, as libfaketime sets the server's
    out: dict[str, dict[str, float]] = {}
    spent = [0.0]
    with Store(url) as store:
        timing_store(store, spent)
        app = create_app(home, store, secret="bench")
        with TestClient(app, headers={HEADER: USER}) as client:
            for path in paths.values():
                client.get(path)
            times: dict[str, list[float]] = {name: [] for name in paths}
            share: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(n):
                for name, path in paths.items():
                    spent[0] = 0.0
                    started = time.perf_counter()
                    got = client.get(path)
                    times[name].append((time.perf_counter() - started) * 1000)
                    share[name].append(spent[0] * 1000)
                    if got.status_code != 200:
                        raise SystemExit(f"GET {path}: HTTP {got.status_code}")
    for name in paths:
        median, p95 = stats(times[name])
        out[name] = {"median": median, "p95": p95, "store": statistics.median(share[name])}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--home", type=Path, default=Path("/tmp/gwbench/home"))
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--back-minutes", type=int, default=0,
                        help="run the pages' clock this far behind (after midnight UTC: so 'today' and 'this week' "
                             "are the ledger's last full ones)")  # fmt: skip
    args = parser.parse_args()
    write_home(args.home, args.url)
    with Store(args.url) as store:
        t = targets(store)
    paths = pages(t)
    print(f"ledger {args.url}; pages: {paths}; load average before: {os.getloadavg()}")
    remote = over_loopback(args.home, args.url, paths, args.requests, args.back_minutes)
    local = in_process(args.home, args.url, paths, args.requests, args.back_minutes)
    print(f"load average after: {os.getloadavg()}\n")
    print("| page | `gateway web` over loopback: median | p95 | CPU / request: web process | PostgreSQL | "
          "in-process median | p95 | store's share (median) | HTML |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in paths:
        r, loc = remote[name], local[name]
        print(f"| {name} | {r['median']:.0f} ms | {r['p95']:.0f} ms | {r['cpu']:.0f} ms | {r['db']:.0f} ms | "
              f"{loc['median']:.0f} ms | "
              f"{loc['p95']:.0f} ms | {loc['store']:.0f} ms | {r['bytes'] / 1000:.0f} kB |")  # fmt: skip


if __name__ == "__main__":
    main()
