"""End-to-end runtime benchmark: files/s and drop-to-done latency of `gateway run`.

    python bench/bench_runtime.py throughput --files 1000 [--store sqlite|pg] [--workers 1|2]
    python bench/bench_runtime.py latency --rate 50 --seconds 20 [--store sqlite|pg]
    python bench/bench_runtime.py fsync --files 64

Each file is a single-PO 855 from the sample partner medsupply (3 lines, unique PO number and
ISA13), so every file is archived, recorded, validated, acknowledged with a 997 (control numbers
from the store's sequence), translated and written to outbox/canonical. Throughput drops all files
first, then times `gateway run --once` processes until they exit (with --workers 2, two processes
share the inbox and the store). Latency runs `gateway run` as a service and drops files at a
steady rate (written to a temporary name, then renamed, as a careful uploader does); latency is
from the rename to the file's final ledger status. The baseline printed beside each figure is the
same work done by the translator alone in-process (no archive, no ledger, no files), so the
ratio shows what durability costs. Throughput is printed with and without start-up (timed
first, on the empty inbox). `fsync` compares publishing small files one by one (fsync each file
and its folder) with SyncGroup's grouped publication, in one process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from precompile import compile_gateway  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def x855(n: int) -> bytes:
    """A single-PO 855 with three lines; ``n`` makes PO number and control numbers unique."""
    ctl = f"{n % 1_000_000_000:09d}"
    body = [
        "ST*855*0001",
        f"BAK*00*AC*PO{n:08d}*20261202",
        "PO1*1*10*BX*42.50**VN*GLV-NIT-M*IN*100234",
        "ACK*IA*10*BX*068*20261204",
        "PO1*2*6*CA*118.00**VN*SYR-10ML-LL*IN*100871",
        "ACK*IA*4*CA*068*20261204",
        "ACK*BP*2*CA*068*20261211",
        "PO1*3*1*EA*1450.00**VN*IMP-HIP-52*IN*300455",
        "ACK*IP*1*EA*068*20261205",
        "CTT*3",
    ]
    body.append(f"SE*{len(body) + 1}*0001")
    segs = [
        f"ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *261201*0930*U*00401*{ctl}*0*P*>",
        f"GS*PR*MEDSUPPLY*MERCYHOSP*20261201*0930*{n}*X*004010",
        *body,
        f"GE*1*{n}",
        f"IEA*1*{ctl}",
    ]
    return ("~\n".join(segs) + "~\n").encode()


def deployment(store: str, stable: float) -> tuple[Path, str]:
    """A fresh deployment folder and its store URL (a fresh PostgreSQL schema for pg)."""
    home = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    shutil.copytree(REPO / "maps", home / "maps")
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    if store == "pg":
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    else:
        url = "sqlite:///var/gateway.db"
    (home / "gateway.yaml").write_text(f"store: '{url}'\nintake: {{stable_seconds: {stable}, rescan_seconds: 2}}\n\n")
    return home, url


def gateway(*args: str, home: Path) -> list[str]:
    return [sys.executable, "-m", "gateway.cli.main", *args, "--home", str(home)]


def baseline(n: int) -> float:
    """Files/s of the translator alone (validate + map + canonical), in this process."""
    from gateway.translate import FileInput
    from gateway.workspace import load_workspace

    tr = load_workspace(REPO).translator()
    files = [x855(i) for i in range(n)]
    start = time.perf_counter()
    for data in files:
        for _ in tr.translate(data, FileInput(name="b.edi", partner_id="medsupply")):
            pass
    return n / (time.perf_counter() - start)


def throughput(n: int, store: str, workers: int) -> None:
    home, url = deployment(store, 0.0)
    _upgrade(url, home)
    inbox = home / "inbox" / "medsupply"
    inbox.mkdir(parents=True)
    # Start-up alone (imports, X12 definitions, maps, the store), timed on the empty inbox: what a cron
    # `gateway run --once` pays once per run, whatever it then processes.
    start = time.perf_counter()
    subprocess.run(gateway("run", "--once", home=home), stdout=subprocess.DEVNULL, cwd=home, check=True)
    startup = time.perf_counter() - start
    for i in range(n):
        (inbox / f"855-{i:06d}.edi").write_bytes(x855(i + 1))
    start = time.perf_counter()
    procs = [
        subprocess.Popen(gateway("run", "--once", "--worker", f"w{w}", home=home), stdout=subprocess.DEVNULL, cwd=home)
        for w in range(workers)
    ]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - start
    done = _count_done(url, home)
    base = baseline(min(n, 500))
    steady = n / (elapsed - startup)
    print(
        f"throughput store={store} workers={workers} files={n} done={done} seconds={elapsed:.2f} "
        f"files/s={n / elapsed:.1f} start-up={startup:.2f}s files/s-after-start-up={steady:.1f} "
        f"translator-only files/s={base:.1f} ratio={steady / base:.3f}"
    )


def fsync(n: int) -> None:
    """Publishing ``n`` small files durably: one by one (write, fsync, rename, fsync the folder) against
    SyncGroup's two modes, in this process, on the file system of a temporary folder."""
    from gateway.store.durable import SyncGroup, fsync_path

    root = Path(tempfile.mkdtemp(prefix="gw-fsync-"))
    data = x855(1)

    def one_by_one(folder: Path) -> None:
        for i in range(n):
            sub = folder / f"{i % 256:02x}"
            sub.mkdir(parents=True, exist_ok=True)
            tmp = sub / f".{i}.tmp"
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, sub / f"{i}.edi")
            fsync_path(sub)

    def grouped(folder: Path, mode: str) -> None:
        group = SyncGroup(mode)
        for i in range(n):
            group.write(folder / f"{i % 256:02x}" / f"{i}.edi", data, folder / "tmp")
        group.flush()

    timings = {}
    for name, run in (
        ("one-by-one", one_by_one),
        ("group-each", lambda f: grouped(f, "each")),
        ("group-syncfs", lambda f: grouped(f, "group")),
    ):
        folder = root / name
        start = time.perf_counter()
        run(folder)
        timings[name] = (time.perf_counter() - start) / n * 1000
    base = timings["one-by-one"]
    print(f"fsync files={n} " + " ".join(f"{k}={v:.3f}ms/file ({base / v:.1f}x)" for k, v in timings.items()))
    shutil.rmtree(root)


def _real(url: str, home: Path) -> str:
    return url if not url.startswith("sqlite:///var") else f"sqlite:///{home}/var/gateway.db"


def _upgrade(url: str, home: Path) -> None:
    """Create the schema once, before the timed processes start."""
    from gateway.store import Store

    (home / "var").mkdir(exist_ok=True)
    with Store(_real(url, home)) as st:
        st.upgrade()


def _count_done(url: str, home: Path) -> int:
    sys.path.insert(0, str(REPO))
    from gateway.store import Store

    real = url if not url.startswith("sqlite:///var") else f"sqlite:///{home}/var/gateway.db"
    with Store(real) as st:
        counts = st.counts_by_status()["files"]
    return counts.get("processed", 0)


def latency(rate: float, seconds: float, store: str, stable: float) -> None:
    home, url = deployment(store, stable)
    _upgrade(url, home)
    inbox = home / "inbox" / "medsupply"
    inbox.mkdir(parents=True)
    proc = subprocess.Popen(gateway("run", home=home), stdout=subprocess.DEVNULL, cwd=home)
    time.sleep(2.0)  # start-up (imports, maps, migrations) is not what is measured
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
    deadline = time.time() + 30
    from gateway.store import Store

    real = url if not url.startswith("sqlite:///var") else f"sqlite:///{home}/var/gateway.db"
    with Store(real) as st:
        while time.time() < deadline:
            rows = st.list_files(limit=n + 10)
            final = [r for r in rows if r.status in ("processed", "partial", "failed", "duplicate")]
            if len(final) >= n:
                break
            time.sleep(0.5)
    proc.terminate()
    proc.wait(timeout=30)
    lat = sorted((r.updated_at - dropped[r.name]).total_seconds() for r in final if r.name in dropped)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"latency store={store} rate={rate}/s files={n} done={len(lat)} stable_seconds={stable} "
        f"p50={p50 * 1000:.0f}ms p99={p99 * 1000:.0f}ms max={lat[-1] * 1000:.0f}ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--files", type=int, default=1000)
    t.add_argument("--store", choices=["sqlite", "pg"], default="sqlite")
    t.add_argument("--workers", type=int, default=1)
    lat = sub.add_parser("latency")
    lat.add_argument("--rate", type=float, default=50)
    lat.add_argument("--seconds", type=float, default=20)
    lat.add_argument("--store", choices=["sqlite", "pg"], default="sqlite")
    lat.add_argument("--stable", type=float, default=0.2)
    fs = sub.add_parser("fsync")
    fs.add_argument("--files", type=int, default=64)
    args = parser.parse_args()
    compile_gateway(REPO)
    if args.mode == "throughput":
        throughput(args.files, args.store, args.workers)
    elif args.mode == "fsync":
        fsync(args.files)
    else:
        latency(args.rate, args.seconds, args.store, args.stable)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
