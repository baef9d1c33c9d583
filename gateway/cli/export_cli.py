"""``gateway export``: a canonical document written through an export layout, without the daemon.

For the integration engineer building or checking a layout (``maps/outbound/**.yaml`` with
``target: {format: csv|fixed|xml}``, ``docs/exports.md``): the bytes a ``files`` destination with
``layout: NAME`` would write, or a ``rest`` destination with ``body: NAME`` would send, on stdout
(or ``--out``); ``--expect FILE`` compares them with what the ERP expects instead and shows a diff.
``--cases`` runs every layout's cases (``maps/outbound/cases/<layout>/<case>.json`` beside
``<case>.expected``).

Exit codes as everywhere: 0 written (or matching), 1 the document cannot be written through the
layout (every problem listed, located by field) or differs from ``--expect``, 2 usage or
configuration (no such layout, layouts that do not compile).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.maps_cli import HOME_HELP
from gateway.mapping.problems import MapLoadError, did_you_mean
from gateway.outbound.layout import Layout
from gateway.outbound.layout_render import parse_document, render_layout
from gateway.outbound.render import RenderError
from gateway.outbound_loader import load_layouts
from gateway.resources import maps_folder

__all__ = ["export"]


def _layouts(home: Path) -> dict[str, Layout]:
    try:
        return load_layouts(home)
    except MapLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) in the export layouts", err=True)
        raise SystemExit(2) from exc


def _document(path: Path, index: int | None) -> dict[str, Any]:
    """The canonical document in ``path``: an object, or one entry of a list (``gateway translate --json``,
    a golden case)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        click.echo(f"{path}: not a JSON file: {exc}", err=True)
        raise SystemExit(1) from exc
    if isinstance(data, list):
        documents = [d for d in data if isinstance(d, dict) and "document_type" in d]
        if index is None and len(documents) != 1:
            raise click.UsageError(f"{path} holds {len(documents)} documents: choose one with --index N (from 0)")
        position = index or 0
        if not 0 <= position < len(documents):
            raise click.UsageError(f"--index {position}: {path} holds {len(documents)} document(s)")
        data = documents[position]
    if not isinstance(data, dict):
        click.echo(f"{path}: a canonical document is a JSON object", err=True)
        raise SystemExit(1)
    return data


def written(layout: Layout, document: dict[str, Any], source: str) -> bytes | list[str]:
    """The layout's bytes for ``document``, or its problems as lines (``source: path: [code] message``)."""
    try:
        return render_layout(layout, parse_document(layout, document))
    except RenderError as exc:
        return [f"{source}: {e.location.path or '(document)'}: [{e.code}] {e.message}" for e in exc.errors]


def differences(expected: bytes, actual: bytes, encoding: str, names: tuple[str, str]) -> list[str]:
    """A unified diff of the two outputs; line endings shown (``\\r``), as an ERP import sees them."""

    def lines(data: bytes) -> list[str]:
        text = data.decode(encoding, errors="replace")
        return [repr(line)[1:-1] for line in text.splitlines(keepends=True)]

    return list(difflib.unified_diff(lines(expected), lines(actual), *names, lineterm=""))


@click.command()
@click.argument("document", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--layout", "name", help="The export layout (its `map:` name).")
@click.option("--expect", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Compare with this file.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option("--index", type=int, help="Which document of a JSON list (from 0).")
@click.option("--cases", is_flag=True, help="Run every layout's cases (maps/outbound/cases/<layout>/).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="GATEWAY_HOME", help=HOME_HELP)
def export(
    document: Path | None,
    name: str | None,
    expect: Path | None,
    out: Path | None,
    index: int | None,
    cases: bool,
    home: Path | None,
) -> None:
    """Write a canonical DOCUMENT (JSON) through an export layout: CSV, fixed width or XML.

    What a `files` destination with `layout: NAME` writes, or a `rest` destination with `body: NAME`
    sends. `--expect FILE` compares byte for byte and prints a diff. Exit 0 written or matching,
    1 a problem with the document or a difference, 2 no such layout or layouts that do not compile.
    """
    root = home or Path.cwd()
    layouts = _layouts(root)
    if cases:
        raise SystemExit(_run_cases(root, layouts))
    if name is None or document is None:
        raise click.UsageError("give --layout NAME and a canonical DOCUMENT.json (or --cases)")
    layout = layouts.get(name)
    if layout is None:
        known = ", ".join(sorted(layouts)) or "none"
        raise click.UsageError(f"no export layout {name!r}{did_you_mean(name, layouts)} (known: {known})")
    data = written(layout, _document(document, index), str(document))
    if isinstance(data, list):
        for line in data:
            click.echo(line, err=True)
        raise SystemExit(1)
    if expect is not None:
        diff = differences(expect.read_bytes(), data, layout.encoding, (str(expect), f"{layout.name}({document})"))
        for line in diff:
            click.echo(line)
        if diff:
            raise SystemExit(1)
        click.echo(f"ok: {document} through {layout.name} matches {expect}", err=True)
        return
    if out is not None:
        out.write_bytes(data)
        click.echo(f"{out}: {len(data)} bytes ({layout.format})", err=True)
        return
    click.get_binary_stream("stdout").write(data)


def _run_cases(root: Path, layouts: dict[str, Layout]) -> int:
    """Every case of every layout; a line per case, exit status 1 when any fails or has no expected file."""
    folder = maps_folder(root) / "outbound" / "cases"
    failed = total = 0
    for case in sorted(folder.glob("*/*.json")):
        layout = layouts.get(case.parent.name)
        expected = case.with_suffix(".expected")
        total += 1
        if layout is None:
            problems = [f"{case}: no export layout {case.parent.name!r}"]
        elif not expected.exists():
            problems = [f"{case}: no {expected.name} beside it"]
        else:
            data = written(layout, _document(case, None), str(case))
            problems = data if isinstance(data, list) else []
            if not problems and isinstance(data, bytes) and data != expected.read_bytes():
                problems = differences(expected.read_bytes(), data, layout.encoding, (str(expected), str(case)))
        failed += bool(problems)
        click.echo(f"{'FAIL' if problems else 'ok  '} {case.parent.name}/{case.stem}")
        for line in problems:
            click.echo(f"    {line}")
    if not total:
        click.echo(f"no layout cases under {folder} (<layout>/<case>.json beside <case>.expected)", err=True)
    click.echo(f"{total - failed} of {total} layout case(s) passed", err=True)
    return 1 if failed or not total else 0
