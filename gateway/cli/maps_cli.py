"""``gateway translate`` and ``gateway partners``: maps and profiles from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from gateway.cases import find_cases, run_case
from gateway.errors import GatewayError, location_dict
from gateway.mapping.problems import MapLoadError
from gateway.translate import FileInput, Translation, golden_view
from gateway.workspace import Workspace, load_workspace

HOME_HELP = "The deployment folder holding maps/ and partners/ (default: $GATEWAY_HOME or the current folder)."


def open_workspace(home: Path | None) -> Workspace:
    """Load the workspace or exit 2 listing every problem."""
    try:
        return load_workspace(home or Path.cwd())
    except MapLoadError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from exc


F = TypeVar("F", bound=Callable[..., Any])


def _home_option(fn: F) -> F:
    return click.option(
        "--home", type=click.Path(file_okay=False, path_type=Path), envvar="GATEWAY_HOME", help=HOME_HELP
    )(fn)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--partner", help="Translate as this partner's file (default: found from the envelope).")
@click.option("--map", "map_name", help="Use this map, whatever the partner.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the file and its results (an array).")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print JSON Lines: one object per set or document.")
@_home_option
def translate(
    file: Path, partner: str | None, map_name: str | None, as_json: bool, as_jsonl: bool, home: Path | None
) -> None:
    """Translate FILE (X12, CSV or XML) into canonical JSON, one document per set.

    Output is written as each set is translated, whatever the file's size (with --json the results
    array too). Exit 1 when any set or document failed (the others are still printed).
    """
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl are two formats: give one")
    ws = open_workspace(home)
    if partner is not None and ws.partners.get(partner) is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    # Interchange reports keep group tallies, not every set's report: memory stays flat on a big file.
    info = FileInput(name=str(file), partner_id=partner, map_name=map_name, report_sets=False)
    out = click.get_text_stream("stdout")
    seen = failed = 0
    with file.open("rb") as source:
        if as_json:
            out.write(f'{{"file": {json.dumps(str(file), ensure_ascii=False)}, "results": [')
        for r in ws.translator().translate(source, info):
            if not isinstance(r, Translation):
                continue
            seen += 1
            failed += not r.ok
            if as_json or as_jsonl:
                out.write(_result_json(r) + "\n" if as_jsonl else ("\n" if seen == 1 else ",\n") + _result_json(r))
            else:
                _print_result(out, file, r)
        if as_json:
            out.write("\n]}\n" if seen else "]}\n")
    out.flush()
    if not seen:
        click.echo(f"{file}: no transaction sets or documents found", err=True)
        raise SystemExit(1)
    if failed:
        raise SystemExit(1)


def _result_json(r: Translation) -> str:
    """One result as a JSON object on one line; the document serialized by pydantic itself (no dict copy)."""
    head = {
        "index": r.index,
        "partner": r.partner,
        "map": r.map_name,
        "base_map": r.base_map,
        "set": r.set_id,
        "control": r.set_control,
    }
    document = r.document.model_dump_json(exclude_none=True) if r.document is not None else "null"
    errors = json.dumps([_error_dict(e) for e in r.errors], ensure_ascii=False)
    return f'{json.dumps(head, ensure_ascii=False)[:-1]}, "document": {document}, "errors": {errors}}}'


def _print_result(out: TextIO, file: Path, r: Translation) -> None:
    """The text output of one result: a header line, the document's JSON, errors on stderr."""
    what = f"set {r.set_id} {r.set_control}" if r.set_id else f"document {r.index}"
    who = f"partner {r.partner}" if r.partner else "no partner profile"
    how = f"map {r.map_name}" + (" (base map: no partner map for this sender)" if r.base_map else "")
    out.write(f"# {file}: {what}, {who}, {how}\n")
    if r.document is not None and r.ok:
        out.write(r.document.model_dump_json(exclude_none=True, indent=2))
        out.write("\n")
    for e in r.errors:
        loc = e.location.describe() if e.location else ""
        click.echo(f"ERROR {e.code} {loc}: {e.message}", err=True)


def _error_dict(e: GatewayError) -> dict[str, object]:
    out: dict[str, object] = {"code": e.code, "message": e.message}
    if e.location is not None:
        out["location"] = location_dict(e.location)
        out["where"] = e.location.describe()
    return out


@click.group()
def partners() -> None:
    """Partner profiles: list, show, lint, test golden cases."""


@partners.command("list")
@_home_option
def list_partners(home: Path | None) -> None:
    """Every partner profile, with its format and documents."""
    ws = open_workspace(home)
    for pid, p in sorted(ws.partners.profiles.items()):
        ident = ""
        if p.x12 is not None:
            ident = f"{p.x12.production.qualifier}:{p.x12.production.id} {p.x12.version}"
        elif p.cxml:
            ident = f"cXML {p.cxml[0].domain}:{p.cxml[0].identity}"
        docs = ", ".join(f"{k}→{v.map}" for k, v in p.documents.items())
        click.echo(f"{pid:<20} {p.format:<4} {ident:<32} {p.name}  [{docs}]")


@partners.command("show")
@click.argument("partner_id")
@_home_option
def show_partner(partner_id: str, home: Path | None) -> None:
    """One profile, as loaded (defaults filled in)."""
    ws = open_workspace(home)
    profile = ws.partners.get(partner_id)
    if profile is None:
        raise click.UsageError(f"no partner {partner_id!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    click.echo(json.dumps(profile.model_dump(mode="json", exclude_none=True), indent=2))


@partners.command("lint")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
def lint(path: Path | None) -> None:
    """Check every profile and map under PATH (default: the current folder); every problem, located."""
    try:
        ws = load_workspace(path or Path.cwd())
    except MapLoadError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from exc
    click.echo(
        f"ok: {len(ws.library.maps)} maps, {len(ws.library.tables)} tables, {len(ws.partners.profiles)} partners"
    )


@partners.command("test")
@click.argument("partner_id", required=False)
@click.option("--update", is_flag=True, help="Write the actual output as the expected JSON (review the diff!).")
@_home_option
def test_cases(partner_id: str | None, update: bool, home: Path | None) -> None:
    """Run the golden cases (all, or one partner's): input file → expected canonical JSON."""
    ws = open_workspace(home)
    if partner_id is not None and ws.partners.get(partner_id) is None:
        raise click.UsageError(f"no partner {partner_id!r}")
    passed = failed = 0
    for case in find_cases(ws, partner_id):
        result = run_case(ws, case, update=update)
        if result.passed:
            passed += 1
            click.echo(f"PASS {case.name}" + (" (updated)" if update else ""))
        else:
            failed += 1
            click.echo(f"FAIL {case.name}")
            for line in result.diff[:80]:
                click.echo(f"    {line}")
    click.echo(f"{passed} passed, {failed} failed")
    if failed or passed == 0:
        raise SystemExit(1)


__all__ = ["golden_view", "partners", "translate"]
