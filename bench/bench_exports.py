"""Export layout benchmark: what writing invoices as the AP CSV costs over canonical JSON, whole process.

    python bench/bench_exports.py --files 1000 [--repeat 1] [--layout ap-invoice-lines-csv]
    python bench/bench_exports.py --render [--count 3000]

``--render`` times the layout alone, in this process: every shipped layout case (canonical JSON
validated into its model, then written), documents per second and microseconds per document.

Files are medsupply's golden 810 (three invoice lines), each with its own ISA13/GS06 and invoice
number. Each repeat times the whole `gateway run --once` process (a subprocess, as a user runs it)
over the same files twice, back to back:

- canonical: the shipped default route (canonical JSON files under outbox/canonical);
- layout: every invoice to a `files` destination with `layout:` (the AP invoice-line CSV by default).

Start-up is timed first on the empty inbox and subtracted for the "after start-up" rate, as
bench_delivery does; CPU time (user + system) comes from /usr/bin/time when present. The layout run
checks that one file per invoice was written.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_delivery import _timed, gateway
from bench_runtime import REPO

TEMPLATE = (REPO / "partners" / "medsupply" / "cases" / "810-invoice.edi").read_text("ascii")


def x810(n: int) -> bytes:
    """The golden 810 with ``n`` in its control numbers and its invoice number."""
    ctl = f"{n % 1_000_000_000:09d}"
    text = TEMPLATE.replace("000000413", ctl).replace("*413*X*", f"*{n}*X*").replace("GE*1*413", f"GE*1*{n}")
    return text.replace("INV-0042377", f"INV-{n:08d}").encode("ascii")


def deployment(layout: str | None) -> Path:
    """A fresh deployment; with ``layout``, invoices go to a files destination writing that layout."""
    home = Path(tempfile.mkdtemp(prefix="gw-bench-exp-"))
    shutil.copytree(REPO / "maps", home / "maps", ignore=shutil.ignore_patterns("cases"))
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    (home / "var").mkdir()
    text = "store: 'sqlite:///var/gateway.db'\nintake: {stable_seconds: 0, rescan_seconds: 2}\n"
    if layout:
        text += (
            "destinations:\n"
            f"  export: {{type: files, folder: erp, layout: {layout}, name: '{{partner}}-{{business_key}}.{{ext}}'}}\n"
            "routes:\n  - {name: invoices, match: {doc_type: invoice}, to: [export]}\n"
        )
    (home / "gateway.yaml").write_text(text)
    from gateway.store import Store

    with Store(f"sqlite:///{home}/var/gateway.db") as st:
        st.upgrade()
    return home


def one(n: int, layout: str | None) -> dict[str, Any]:
    home = deployment(layout)
    try:
        start, _cpu0, _ = _timed(gateway("run", "--once", home=home), home)
        inbox = home / "inbox" / "medsupply"
        inbox.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (inbox / f"inv{i:06d}.edi").write_bytes(x810(10_000 + i))
        wall, cpu, rss = _timed(gateway("run", "--once", home=home), home)
        cpu0 = _cpu0 or 0.0
        if layout:
            written = sum(1 for p in (home / "erp").iterdir() if p.is_file())
            if written != n:
                raise SystemExit(f"the layout run wrote {written} files for {n} invoices")
        return {"wall": wall, "start": start, "cpu": (cpu - cpu0) if cpu is not None else None, "rss": rss}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def line(label: str, n: int, r: dict[str, Any]) -> str:
    after = n / max(r["wall"] - r["start"], 1e-9)
    cpu = f", CPU {r['cpu'] / n * 1000:.1f} ms/file" if r["cpu"] is not None else ""
    rss = f", peak RSS {r['rss'] / 1024:.0f} MiB" if r["rss"] else ""
    return f"{label:10} {n / r['wall']:6.1f} files/s ({after:.1f} after start-up){cpu}{rss}"


def render(count: int) -> None:
    """Each shipped layout case written ``count`` times in this process."""
    import json
    import time

    from gateway.outbound.layout_render import parse_document, render_layout
    from gateway.outbound_loader import load_layouts

    layouts = load_layouts(REPO)
    for case in sorted((REPO / "maps" / "outbound" / "cases").glob("*/*.json")):
        layout = layouts[case.parent.name]
        document = json.loads(case.read_text("utf-8"))
        start = time.perf_counter()
        for _ in range(count):
            render_layout(layout, parse_document(layout, document))
        took = time.perf_counter() - start
        name = f"{case.parent.name}/{case.stem}"
        print(f"{name:40} {count / took:7.0f} documents/s {took / count * 1e6:6.0f} us/document")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--layout", default="ap-invoice-lines-csv")
    parser.add_argument("--render", action="store_true", help="time the layouts alone, in this process")
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    if args.render:
        render(args.count)
        return 0
    for _ in range(args.repeat):
        plain = one(args.files, None)
        laid = one(args.files, args.layout)
        print(line("canonical", args.files, plain))
        print(line(args.layout[:10], args.files, laid))
        ratio = (args.files / laid["wall"]) / (args.files / plain["wall"])
        print(f"ratio layout/canonical: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
