"""Reader and validator throughput, side by side with a str.split baseline and pyx12.

``python bench/bench_reader.py [FILE] [--skip pyx12]`` runs each variant in
its own process (so each peak RSS is its own) over the same file and prints
segments/s, MB/s, peak RSS and the ratio to the baseline. Without FILE it
generates the synthetic 200,000-segment 856 (``bench/gen_856.py``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

VARIANTS = ("split", "pyx12", "reader", "validate", "translate")
CHUNK = 1 << 20


def _split(path: str) -> int:
    """Baseline: read in chunks, split on the terminator, split each on the element separator."""
    count = 0
    carry = ""
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            parts = (carry + chunk.decode("latin-1")).split("~")
            carry = parts.pop()
            for p in parts:
                p.split("*")
                count += 1
    if carry.strip():
        count += 1
    return count


def _pyx12(path: str) -> int:
    from pyx12.x12file import X12Reader

    count = 0
    with open(path, encoding="latin-1") as fh:
        for _seg in X12Reader(fh):
            count += 1
    return count


def _reader(path: str) -> int:
    """Our reader: events plus each in-set segment's element list, positions tracked."""
    from gateway.x12.reader import X12Reader

    count = 0
    with open(path, "rb") as fh:
        for _item in X12Reader(fh):
            count += 1
    return count + 3  # the events stand for every segment but GE/IEA/SE counted once each way


def _validate(path: str, validator: object = None) -> int:
    """Our reader plus full validation (structure, elements, syntax notes, HL hierarchy)."""
    from gateway.x12.reader import X12Reader
    from gateway.x12.validate.report import SetReport

    count = 4  # ISA, GS, GE, IEA
    rejected = 0
    with open(path, "rb") as fh:
        for item in validator.stream(X12Reader(fh)):  # type: ignore[attr-defined]
            if isinstance(item, SetReport):
                count += item.segment_count
                rejected += not item.accepted
    if rejected:
        print(f"warning: {rejected} sets rejected", file=sys.stderr)
    return count


def _translate(path: str, translator: object = None) -> int:
    """Read + validate + map + canonical objects (pydantic), one set in memory at a time."""
    from gateway.translate import FileInput, Translation

    count = 4  # ISA, GS, GE, IEA
    failed = 0
    with open(path, "rb") as fh:
        for item in translator.x12(fh, FileInput(name=path)):  # type: ignore[attr-defined]
            if isinstance(item, Translation):
                assert item.validation is not None
                count += item.validation.segment_count
                failed += not item.ok
    if failed:
        print(f"warning: {failed} sets failed", file=sys.stderr)
    return count


def run_variant(name: str, path: str, repeat: int) -> dict[str, float]:
    """Run one variant in this process, best of ``repeat`` runs; imports are done before timing."""
    import gateway.x12.reader
    import gateway.x12.validate.validator  # noqa: F401

    if name == "pyx12":
        import pyx12.x12file  # noqa: F401
    fn = {"split": _split, "pyx12": _pyx12, "reader": _reader, "validate": _validate, "translate": _translate}[name]
    if name == "validate":
        # loading the definitions is start-up work, not per-file work: done before timing
        from gateway.resources import load_catalog
        from gateway.x12.validate.validator import Validator

        validator = Validator(load_catalog(), keep_sets=False)
        fn = functools.partial(_validate, validator=validator)
    if name == "translate":
        # maps and definitions are loaded once at start-up, before timing; no partner profiles:
        # every set goes through the shipped base map for 856 004010
        from pathlib import Path

        from gateway.partners.profile import PartnerDirectory
        from gateway.translate import Translator
        from gateway.workspace import load_workspace

        ws = load_workspace(Path(__file__).resolve().parent.parent)
        fn = functools.partial(_translate, translator=Translator(ws.catalog, ws.library, PartnerDirectory([])))
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn(path)
        best = min(best, time.perf_counter() - start)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = os.path.getsize(path) / (1 << 20)
    return {
        "segments": count,
        "seconds": best,
        "seg_per_s": count / best,
        "mb_per_s": size_mb / best,
        "peak_rss_mb": rss_mb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is kept")
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.file, args.repeat)))
        return 0
    path = args.file
    if path is None:
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        from gen_856 import generate

        path = os.path.join(tempfile.mkdtemp(), "synthetic_856.edi")
        generate(path, segments=200_000)
    results: dict[str, dict[str, float]] = {}
    for name in args.only:
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), path, "--variant", name, "--repeat", str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results.get("split")
    size_mb = os.path.getsize(path) / (1 << 20)
    print(f"file: {path} ({size_mb:.1f} MB)")
    peer = results.get("pyx12")
    print(
        f"{'variant':10} {'segments':>10} {'seconds':>8} {'seg/s':>11} {'MB/s':>7} {'peak RSS MB':>12} {'x split':>8}"
        f" {'x pyx12':>8}"
    )
    for name, r in results.items():
        ratio = f"{r['seg_per_s'] / base['seg_per_s']:.2f}" if base else "-"
        vs_peer = f"{r['seg_per_s'] / peer['seg_per_s']:.2f}" if peer else "-"
        print(
            f"{name:10} {r['segments']:>10.0f} {r['seconds']:>8.2f} {r['seg_per_s']:>11,.0f} {r['mb_per_s']:>7.1f} "
            f"{r['peak_rss_mb']:>12.1f} {ratio:>8} {vs_peer:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
