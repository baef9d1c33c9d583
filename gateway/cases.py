"""Golden cases: an input file beside the canonical JSON it must translate to (an I/O edge).

Two places hold cases:

- ``maps/<dir>/cases/<map name>/<case>.<edi|x12|csv|xml>`` + ``<case>.json``: run through that
  map alone (no partner), so a base map's behaviour is pinned.
- ``partners/<id>/cases/<case>.<ext>`` + ``<case>.json``: run as that partner's file (its
  profile, maps, tables and cross-references), exactly as the runtime would.

The JSON is a list with one entry per transaction set or document: the canonical document
(without run-specific provenance), or ``{"errors": [...]}`` for a set expected to fail. A document
expected to carry business-level warnings lists their codes in its entry's ``"warnings"`` key.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.resources import maps_folder
from gateway.translate import FileInput, Translation, golden_view
from gateway.workspace import Workspace

INPUT_SUFFIXES = (".edi", ".x12", ".txt", ".csv", ".xml")


@dataclass(slots=True)
class Case:
    """One golden case: its input, its expected output and how to run it."""

    name: str
    input: Path
    expected: Path
    partner: str | None = None
    map_name: str | None = None


@dataclass(slots=True)
class CaseResult:
    """A case run: passed, or the diff between expected and actual."""

    case: Case
    actual: list[dict[str, Any]]
    passed: bool
    diff: list[str] = field(default_factory=list)
    missing_expected: bool = False


def find_cases(ws: Workspace, partner: str | None = None) -> Iterator[Case]:
    """Every case in the workspace, or only ``partner``'s own (``partners/<id>/cases/``).

    A partner's run leaves out the base maps' cases even for maps it uses: those pin the base
    map, not the partner, and counting them would pass a partner that has no case of its own.
    """
    if partner is None:
        for case_dir in sorted(maps_folder(ws.root).glob("**/cases/*")):
            if not case_dir.is_dir():
                continue
            for item in sorted(case_dir.iterdir()):
                if item.suffix in INPUT_SUFFIXES:
                    yield Case(f"{case_dir.name}/{item.stem}", item, item.with_suffix(".json"), map_name=case_dir.name)
    partners_dir = ws.root / "partners"
    for pid in sorted(ws.partners.profiles):
        if partner is not None and pid != partner:
            continue
        for item in sorted((partners_dir / pid / "cases").glob("*")):
            if item.suffix in INPUT_SUFFIXES:
                yield Case(f"{pid}/{item.stem}", item, item.with_suffix(".json"), partner=pid)


def actual_output(ws: Workspace, case: Case) -> list[dict[str, Any]]:
    """What the case's input translates to, in the golden form."""
    translator = ws.translator()
    info = FileInput(name=case.input.name, partner_id=case.partner, map_name=case.map_name)
    out: list[dict[str, Any]] = []
    for item in translator.translate(case.input.read_bytes(), info):
        if isinstance(item, Translation):
            out.append(case_entry(item))
    return out


def case_entry(item: Translation) -> dict[str, Any]:
    """A translation in golden form: the document, or its error codes and messages.

    A document with business-level warnings gets their codes under ``"warnings"`` (absent when none),
    so a case whose output starts warning fails until its expectation lists them.
    """
    if item.ok and item.document is not None:
        entry = golden_view(item.document)
        if item.warnings:
            entry["warnings"] = [w.code for w in item.warnings]
        return entry
    return {"errors": [f"{e.code} {e.message}" for e in item.errors]}


def run_case(ws: Workspace, case: Case, *, update: bool = False) -> CaseResult:
    """Run one case; with ``update`` write the actual output as the new expectation."""
    actual = actual_output(ws, case)
    if update or not case.expected.exists():
        if update:
            case.expected.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n", "utf-8")
            return CaseResult(case, actual, True)
        return CaseResult(case, actual, False, ["(no expected .json; run with --update to create it)"], True)
    expected = json.loads(case.expected.read_text("utf-8"))
    if expected == actual:
        return CaseResult(case, actual, True)
    diff = list(
        difflib.unified_diff(
            json.dumps(expected, indent=2, ensure_ascii=False).splitlines(),
            json.dumps(actual, indent=2, ensure_ascii=False).splitlines(),
            fromfile=str(case.expected),
            tofile="actual",
            lineterm="",
        )
    )
    return CaseResult(case, actual, False, diff)
