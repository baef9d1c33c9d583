"""``gateway translate`` streams: --json writes its array as it goes, --jsonl one object per line, text one
block per set; memory does not grow with the number of sets."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main

CASE = REPO / "partners/medsupply/cases/856-xref-and-uom.edi"


def many_sets(count: int, *, bad: int | None = None) -> bytes:
    """The 856 case as one interchange of ``count`` copies of its set (set ``bad`` loses its BSN02)."""
    text = CASE.read_text()
    term = text[105]
    segs = [s.strip() for s in text.split(term) if s.strip()]
    st = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    out = segs[:st]
    for n in range(1, count + 1):
        body = segs[st + 1 : se]
        if n == bad:
            body = ["BSN*00**20261204*1520*0001" if s.startswith("BSN*") else s for s in body]
        out += [f"ST*856*{n:04d}", *body, f"SE*{len(body) + 2}*{n:04d}"]
    gs = segs[1].split("*")
    out += [f"GE*{count}*{gs[6]}", segs[-1]]
    return (term.join(out) + term).encode()


def translate(tmp_path: Path, data: bytes, *flags: str) -> tuple[int, str]:
    path = tmp_path / "batch.edi"
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["translate", str(path), "--partner", "medsupply", *flags, "--home", str(REPO)])
    return result.exit_code, result.stdout


def test_json_is_one_array_and_jsonl_one_object_per_line(tmp_path: Path) -> None:
    data = many_sets(5, bad=3)
    code_json, out_json = translate(tmp_path, data, "--json")
    code_lines, out_lines = translate(tmp_path, data, "--jsonl")
    code_text, out_text = translate(tmp_path, data)
    assert (code_json, code_lines, code_text) == (1, 1, 1), "one set failed"
    payload = json.loads(out_json)
    lines = [json.loads(line) for line in out_lines.splitlines()]
    assert [without_ids(r) for r in payload["results"]] == [without_ids(r) for r in lines]
    assert [r["control"] for r in lines] == ["0001", "0002", "0003", "0004", "0005"]
    assert [r["document"] is None for r in lines] == [False, False, True, False, False]
    assert lines[2]["errors"] and lines[2]["errors"][0]["location"]["transaction_set"] == "0003"
    assert lines[0]["document"]["document_type"] == "ship_notice"
    assert out_text.count("# ") == 5 and out_text.count('"document_type": "ship_notice"') == 4


def without_ids(result: dict[str, Any]) -> dict[str, Any]:
    """A result without the correlation id each run draws anew."""
    if result["document"] is not None:
        result["document"]["provenance"].pop("correlation_id", None)
    return result


def test_no_sets_is_still_one_json_object(tmp_path: Path) -> None:
    head = CASE.read_bytes()[:106]
    code, out = translate(tmp_path, head + b"IEA*0*000000412~", "--json")
    assert code == 1 and json.loads(out)["results"] == []


def peak(tmp_path: Path, count: int, *flags: str) -> int:
    data = many_sets(count)
    tracemalloc.start()
    try:
        code, _ = translate(tmp_path, data, *flags)
        _, top = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0
    return top - len(data) * 3  # the runner's captured output is not the command's memory


def test_memory_does_not_grow_with_the_sets(tmp_path: Path) -> None:
    for flags in (("--json",), ("--jsonl",)):
        small, big = peak(tmp_path, 40, *flags), peak(tmp_path, 320, *flags)
        assert big < small * 1.5, (flags, small, big)
