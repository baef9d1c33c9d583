"""Big files end to end, measured the way a user runs them: whole processes, peak RSS from /usr/bin/time -v.

``python bench/bench_bigfile.py --sizes 21M 100M [--items 20] [--only run json jsonl text pyx12]``
generates (once, in ``--work``) a single-interchange 004010 856 of each size with ``bench/gen_856.py``
(sender medsupply's id, ``--items`` items per ship notice: 20 gives ~2.9 KB sets, 7,500 sets in 21 MB),
then for each size runs, each in its own process:

- ``run``: ``gateway run --once`` on a fresh deployment (SQLite ledger) with the file in
  ``inbox/medsupply/``; checks the one 997 it sends validates and answers every set;
- ``json``, ``jsonl``, ``text``: ``gateway translate FILE --partner medsupply [--json|--jsonl]`` with the
  output going to /dev/null;
- ``pyx12``: pyx12's bare X12Reader over the same file (tokenizing only), the peer to beat;

and prints seconds, peak RSS and, for translate, the speed against pyx12's reader in the same run: by wall
time, and by CPU time (user + system), which a busy shared machine moves much less.

``--against DIR [DIR ...]`` also runs each translate command from other checkouts (e.g. the tree before a
change, ``git worktree add DIR COMMIT``), in turn with the others, so before and after meet the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from precompile import compile_gateway  # noqa: E402

TIME = "/usr/bin/time"
# The `gateway` program as installed (its entry point; ``main`` in a checkout from before it had one).
GATEWAY = [sys.executable, "-c", "import sys; from gateway.cli import main as m; sys.argv[0] = 'gateway'; "
           "getattr(m, 'entry', m.main)()"]  # fmt: skip
PYX12 = [
    sys.executable,
    "-c",
    "import sys\nfrom pyx12.x12file import X12Reader\nn = 0\n"
    "with open(sys.argv[1], encoding='latin-1') as fh:\n    for _ in X12Reader(fh):\n        n += 1\nprint(n)",
]
CHOICES = ("run", "json", "jsonl", "text", "pyx12")


def timed(
    cmd: list[str], *, cwd: Path | None = None, stdout: int | None = subprocess.DEVNULL
) -> tuple[float, int, str]:
    """Run ``cmd`` under /usr/bin/time -v: wall seconds, peak RSS in MB, its stderr (minus time's report)."""
    seconds, _, rss, own = timed_cpu(cmd, cwd=cwd, stdout=stdout)
    return seconds, rss, own


def timed_cpu(
    cmd: list[str], *, cwd: Path | None = None, stdout: int | None = subprocess.DEVNULL
) -> tuple[float, float, int, str]:
    """:func:`timed`, with the CPU seconds (user + system) after the wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([TIME, "-v", *cmd], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rss = int(found[1]) // 1024 if found else -1
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr))
    own = proc.stderr.split("\tCommand being timed:")[0]
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[-4:])} failed with {proc.returncode}:\n{own[-3000:]}")
    return seconds, cpu, rss, own


def generate(work: Path, size: str, items: int) -> Path:
    path = work / f"856-{size}-{items}.edi"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                str(REPO / "bench" / "gen_856.py"),
                str(path),
                "--bytes",
                size,
                "--items",
                str(items),
                "--sender",
                "MEDSUPPLY",
                "--receiver",
                "MERCYHOSP",
            ],
            check=True,
        )
    return path


def deployment(root: Path) -> Path:
    """A throwaway deployment: the repository's maps and partners, a SQLite ledger."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(REPO / "partners", root / "partners", ignore=shutil.ignore_patterns("cases"))
    settings = {"store": f"sqlite:///{root / 'var' / 'gateway.sqlite'}", "intake": {"stable_seconds": 0}}
    (root / "gateway.yaml").write_text(json.dumps(settings), "utf-8")
    (root / "inbox" / "medsupply").mkdir(parents=True)
    return root


def check_ack(root: Path, sets: int) -> str:
    """The one 997 the run sent: valid by our validator, one AK2 per set, AK9 counting them all."""
    from gateway.resources import load_catalog
    from gateway.x12.ack.read import FunctionalAck, read_acks
    from gateway.x12.validate.validator import Validator

    acks = sorted((root / "outbox" / "medsupply").glob("*.x12"))
    if len(acks) != 1:
        return f"{len(acks)} ack files (expected 1)"
    data = acks[0].read_bytes()
    report = Validator(load_catalog()).validate(data)
    (fa,) = [a for a in read_acks(data) if isinstance(a, FunctionalAck)]
    ok = report.valid and len(fa.sets) == sets and fa.received == sets and fa.code == "A"
    return f"{acks[0].name}: {'valid' if report.valid else 'INVALID'}, AK9*{fa.code}*{fa.received}, " + (
        "ok" if ok else "WRONG"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["21M"])
    parser.add_argument("--items", type=int, default=20, help="items per ship notice (20: ~2.9 KB sets)")
    parser.add_argument("--only", nargs="+", choices=CHOICES, default=list(CHOICES))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "gateway-bigfile")
    parser.add_argument("--repeat", type=int, default=1, help="translate and pyx12 runs each, in turn; best kept")
    parser.add_argument("--file", type=Path, help="measure this file (sender medsupply) instead of generating")
    parser.add_argument(
        "--against", type=Path, nargs="+", default=[], help="other checkouts: their translate runs too, in turn"
    )
    args = parser.parse_args(argv)
    compile_gateway(REPO, *args.against)
    args.work.mkdir(parents=True, exist_ok=True)
    env_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    os.environ["PYTHONPATH"] = env_path
    print("| file | command | seconds | peak RSS | × pyx12 reader | CPU seconds | × pyx12 (CPU) | notes |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for size in [str(args.file)] if args.file else args.sizes:
        path = args.file or generate(args.work, size, args.items)
        mb = path.stat().st_size / 1e6
        sets = sum(1 for line in path.open("rb") if line.startswith(b"ST*"))
        label = f"{mb:,.0f} MB, {sets:,} sets"
        commands: dict[str, list[str]] = {}
        if "pyx12" in args.only:
            commands["pyx12 X12Reader"] = [*PYX12, str(path)]
        for what in ("json", "jsonl", "text"):
            if what in args.only:
                flag = [] if what == "text" else [f"--{what}"]
                name = f"gateway translate {' '.join(flag)}".strip()
                translate = [*GATEWAY, "translate", str(path), "--partner", "medsupply", *flag]
                commands[name] = [*translate, "--home", str(REPO)]
                for against in args.against:  # the same command, that checkout's gateway first on the path
                    other = f"import sys; sys.path.insert(0, {str(against.resolve())!r}); " + GATEWAY[2]
                    commands[f"{name} ({against.name})"] = [GATEWAY[0], "-c", other, *commands[name][3:]]
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(args.repeat):  # in turn, so a busy moment of the machine falls on each alike
            for name, cmd in commands.items():
                seconds, cpu, rss, _ = timed_cpu(cmd)
                old = best.get(name)
                best[name] = (min(seconds, old[0]), min(cpu, old[1]), max(rss, old[2])) if old else (seconds, cpu, rss)
        base, base_cpu, _ = best.get("pyx12 X12Reader", (0.0, 0.0, 0))
        for name, (seconds, cpu, rss) in best.items():
            ratio = f"{base / seconds:.2f}" if base else "-"
            cpu_ratio = f"{base_cpu / cpu:.2f}" if base_cpu and cpu else "-"
            print(
                f"| {label} | {name} | {seconds:.1f} | {rss} MB | {ratio} | {cpu:.1f} | {cpu_ratio} "
                f"| best of {args.repeat} |",
                flush=True,
            )
        if "run" in args.only:
            root = deployment(Path(tempfile.mkdtemp(prefix="deployment-", dir=args.work)))
            os.replace(shutil.copy(path, root / "inbox" / "medsupply" / ".upload"), root / "inbox/medsupply/big.edi")
            seconds, rss, _ = timed([*GATEWAY, "run", "--once", "--home", str(root)], stdout=subprocess.PIPE)
            print(
                f"| {label} | gateway run --once | {seconds:.1f} | {rss} MB | | | | {check_ack(root, sets)} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
