"""``gateway translate`` and ``gateway partners``: maps and profiles from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from gateway.cli.decided import StreamedFile
from gateway.cli.heap import streaming_heap
from gateway.errors import GatewayError, location_dict
from gateway.formats.encoding import describe_content
from gateway.mapping.checks import DocumentWarning
from gateway.mapping.problems import MapLoadError
from gateway.translate import Translation, golden_view, sniff
from gateway.verdict import SetVerdict
from gateway.workspace import Workspace, load_workspace
from gateway.x12.ack.read import ack_dict
from gateway.x12.validate.export import finding_dict

if TYPE_CHECKING:  # the deployment settings' models (destinations...) are not needed to translate a file
    from gateway.settings import Deployment

HOME_HELP = "The deployment folder holding maps/ and partners/ (default: $GATEWAY_HOME or the current folder)."


def open_workspace(home: Path | None, *, partial: bool = False, deployment: Deployment | None = None) -> Workspace:
    """Load the workspace or exit 2 listing every problem (with ``partial``: the broken partners are listed in it).

    With ``deployment``, its ``folders.maps`` and ``folders.partners`` are used (a missing maps
    folder means the maps shipped with the gateway).
    """
    maps_dir = partners_dir = None
    if deployment is not None:
        home = deployment.home
        partners_dir = deployment.path("partners")
        maps_dir = deployment.path("maps") if deployment.path("maps").is_dir() else None
    try:
        return load_workspace(home or Path.cwd(), partial=partial, maps_dir=maps_dir, partners_dir=partners_dir)
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

    What is accepted is decided as ``gateway run`` decides it (partner profile, guide overlays, envelope
    and sender checks). Output is written as each set is translated, whatever the file's size (with
    --json the results array too). Exit 1 when any part of the file was not accepted: a set or document
    that failed, or an interchange or group rejected (its sets are then not translated); the rest is
    printed.
    """
    if as_json and as_jsonl:
        raise click.UsageError("--json and --jsonl are two formats: give one")
    ws = open_workspace(home)
    if partner is not None and ws.partners.get(partner) is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    with file.open("rb") as head:
        _refuse_unreadable(file, head.read(65536))
    streamed = StreamedFile(ws.translator(), ws, file, partner, map_name)
    out = click.get_text_stream("stdout")
    seen = 0
    if as_json:
        out.write(f'{{"file": {json.dumps(str(file), ensure_ascii=False)}, "results": [')
    with streaming_heap():
        for r, v in streamed:
            seen += 1
            if as_json or as_jsonl:
                line = _result_json(r, v)
                out.write(line + "\n" if as_jsonl else ("\n" if seen == 1 else ",\n") + line)
            else:
                _print_result(out, file, r, v)
    problems = streamed.problems
    if as_json:
        tail = json.dumps({"accepted": not problems, "problems": problems}, ensure_ascii=False)[1:]
        out.write(("\n], " if seen else "], ") + tail + "\n")
    out.flush()
    if problems:
        click.echo(f"{file}: {len(problems)} part(s) not accepted:", err=True)
        for line in problems:
            click.echo(f"  {line}", err=True)
        raise SystemExit(1)


def _translated(r: Translation, v: SetVerdict | None) -> bool:
    """Whether the decision keeps the translation's document (a refused set's document is not one)."""
    return v.status == "translated" if v is not None else r.ok


def _result_json(r: Translation, v: SetVerdict | None) -> str:
    """One result as a JSON object on one line; the document serialized by pydantic itself (no dict copy)."""
    head = {
        "index": r.index,
        "partner": r.partner,
        "map": r.map_name,
        "base_map": r.base_map,
        "set": r.set_id,
        "control": r.set_control,
        "status": v.status if v is not None else ("translated" if r.ok else "failed"),
        "reason": v.reason if v is not None else None,
        "acknowledgment": ack_dict(r.acknowledgment) if r.acknowledgment is not None else None,
        "warnings": ([finding_dict(f) for f in v.warnings] if v is not None else [])
        + [_error_dict(w) for w in r.warnings],
        "errors": [_error_dict(e) for e in r.errors],
    }
    translated = r.document is not None and _translated(r, v)
    document = r.document.model_dump_json(exclude_none=True) if translated and r.document is not None else "null"
    return f'{json.dumps(head, ensure_ascii=False)[:-1]}, "document": {document}}}'


def _print_result(out: TextIO, file: Path, r: Translation, v: SetVerdict | None) -> None:
    """The text output of one result: a header line, the document's JSON; findings and errors on stderr."""
    what = f"set {r.set_id} {r.set_control}" if r.set_id else f"document {r.index}"
    who = f"partner {r.partner}" if r.partner else "no partner profile"
    how = f"map {r.map_name}" + (" (base map: no partner map for this sender)" if r.base_map else "")
    if r.acknowledgment is not None:
        how = "an acknowledgment (read, never translated or acknowledged)"
    head = f"# {file}: {what}, {who}, {how}\n"
    if r.document is not None and _translated(r, v):
        out.write(f"{head}{r.document.model_dump_json(exclude_none=True, indent=2)}\n")  # one write a set
    elif r.acknowledgment is not None:
        out.write(head + json.dumps(ack_dict(r.acknowledgment), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(head)
    rejected = v is not None and v.status == "rejected" and not r.errors
    if r.errors or r.warnings or rejected or (v is not None and v.warnings):
        out.flush()  # stdout before the stderr lines about the same result
    for f in v.warnings if v is not None else []:
        click.echo(f"WARNING {f.code} {f.location.describe()}: {f.message} (accepted: {f.waived})", err=True)
    for e in r.errors:
        loc = e.location.describe() if e.location else ""
        click.echo(f"ERROR {e.code} {loc}: {e.message}", err=True)
    for w in r.warnings:
        loc = w.location.describe() if w.location else ""
        click.echo(f"WARNING {w.code} {loc}: {w.message}", err=True)
    if rejected and v is not None:
        click.echo(f"REJECTED (not passed on): {v.reason}", err=True)


def _refuse_unreadable(file: Path, data: bytes) -> None:
    """Exit 1 naming what the file is when no reader can take it (binary, UTF-16 X12 or CSV)."""
    if sniff(data) != "csv":
        return
    what = describe_content(data)
    if what is None:
        return
    hint = ""
    if "text" in what:
        hint = "; X12 and CSV are read as ASCII/UTF-8: re-encode it (for example iconv -f UTF-16 -t UTF-8)"
    click.echo(f"{file}: {what}: not X12, XML or CSV{hint}", err=True)
    raise SystemExit(1)


def _error_dict(e: GatewayError | DocumentWarning) -> dict[str, object]:
    out: dict[str, object] = {"code": e.code, "message": e.message}
    if e.location is not None:
        out["location"] = location_dict(e.location)
        out["where"] = e.location.describe()
    return out


@click.group()
def partners() -> None:
    """Partner profiles: list, show, lint, test golden cases, keys."""


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
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def lint(path: Path | None) -> None:
    """Check profiles, maps and outbound maps under PATH (a deployment, a folder in it, or one file).

    Every problem at once, located ``file:line:col``, each once at its cause. Exit 0 clean,
    2 problems found or nothing to check under PATH.
    """
    from gateway.cli.lint import NothingToLint, lint_path  # the outbound maps' code: not for `translate`

    try:
        report = lint_path(path or Path.cwd())
    except NothingToLint as exc:
        click.echo(f"nothing to lint: {exc}", err=True)
        raise SystemExit(2) from exc
    for problem in report.problems:
        click.echo(str(problem), err=True)
    counts = (
        f"{report.maps} maps, {report.outbound_maps} outbound maps, {report.tables} tables, {report.partners} partners"
    )
    if report.problems:
        hit = f"; partners not usable: {', '.join(report.broken)}" if report.broken else ""
        click.echo(f"{len(report.problems)} problem(s) ({counts}){hit}", err=True)
        raise SystemExit(2)
    click.echo(f"ok: {counts}")


@partners.command("keys")
def keys() -> None:
    """Every key of a partner profile (type, default, meaning) as a Markdown table."""
    from gateway.partners.reference import profile_reference  # imported when run, as the other listings

    click.echo(profile_reference(), nl=False)


@partners.command("test")
@click.argument("partner_id", required=False)
@click.option("--update", is_flag=True, help="Write the actual output as the expected JSON (review the diff!).")
@_home_option
def test_cases(partner_id: str | None, update: bool, home: Path | None) -> None:
    """Run the golden cases (all, or only PARTNER_ID's own): input file → expected canonical JSON.

    A partner's run counts only ``partners/<id>/cases/``, not the base maps' cases. Exit 1 when
    a case fails or none was found.
    """
    from gateway.cases import find_cases, run_case  # imported when run, like the store (gateway.cli.lazy)

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
    if passed + failed == 0:
        where = f"partners/{partner_id}/cases/" if partner_id else "maps/*/cases/ or partners/*/cases/"
        click.echo(f"no golden cases found in {where}: nothing was tested", err=True)
    if failed or passed == 0:
        raise SystemExit(1)


__all__ = ["golden_view", "partners", "translate"]
