"""The ``gateway`` command line: the composition root for the X12 tools.

The only module that prints. Exit codes: 0 all valid, 1 a document failed,
2 usage or configuration errors.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from gateway.canonical import SCHEMAS
from gateway.cli.db import db
from gateway.cli.maps_cli import partners, translate
from gateway.cli.render_cli import render
from gateway.cli.run_cli import messages, run, status
from gateway.errors import ConfigError, GatewayError
from gateway.resources import load_catalog
from gateway.x12.ack.build import TA1Policy, build_acks
from gateway.x12.reader import X12Reader
from gateway.x12.validate.export import file_dict, file_lines
from gateway.x12.validate.report import FileReport, InterchangeReport
from gateway.x12.validate.validator import Validator


@click.group()
@click.version_option(package_name="hospital-edi-gateway")
def main() -> None:
    """EDI gateway for hospital supply chains: X12 850/855/856/810 with 997/999/TA1."""


def _validator(max_errors: int, lenient_isa: bool) -> Validator:
    try:
        catalog = load_catalog()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    return Validator(catalog, max_errors=max_errors, strict_isa=not lenient_isa)


def _validate_file(validator: Validator, path: Path) -> FileReport:
    with path.open("rb") as stream:
        return validator.validate(stream)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print only a one-line total.")
@click.option("--max-errors", default=100, show_default=True, help="Errors listed per transaction set.")
@click.option("--lenient-isa", is_flag=True, help="Report a non-fixed-width ISA as a warning, not an error.")
@click.option("--pedantic", is_flag=True, help="Also warn about codes outside the usual code lists.")
def validate(
    files: tuple[Path, ...], as_json: bool, quiet: bool, max_errors: int, lenient_isa: bool, pedantic: bool
) -> None:
    """Validate X12 FILES: envelopes, structure and elements, each error located."""
    validator = _validator(max_errors, lenient_isa)
    validator.pedantic = pedantic
    totals = {"files": 0, "interchanges": 0, "sets": 0, "accepted": 0, "rejected": 0, "invalid_files": 0}
    documents = []
    for path in files:
        report = _validate_file(validator, path)
        totals["files"] += 1
        totals["interchanges"] += len(report.interchanges)
        for s in report.sets():
            totals["sets"] += 1
            totals["accepted" if s.accepted else "rejected"] += 1
        if not report.valid:
            totals["invalid_files"] += 1
        if as_json:
            documents.append(file_dict(str(path), report))
        elif not quiet:
            click.echo("\n".join(file_lines(str(path), report)))
    if as_json:
        click.echo(json.dumps({"files": documents, "totals": totals}, indent=2))
    elif quiet or len(files) > 1:
        click.echo(
            f"{totals['files']} files ({totals['invalid_files']} invalid), {totals['interchanges']} interchanges, "
            f"{totals['sets']} transaction sets: {totals['accepted']} accepted, {totals['rejected']} rejected"
        )
    sys.exit(1 if totals["invalid_files"] else 0)


@main.command()
@click.argument("document_type", required=False, type=click.Choice(sorted(SCHEMAS)))
def schema(document_type: str | None) -> None:
    """Print the JSON Schema of a canonical document type (all of them without DOCUMENT_TYPE)."""
    if document_type is not None:
        doc = SCHEMAS[document_type].model_json_schema()
    else:
        doc = {name: model.model_json_schema() for name, model in sorted(SCHEMAS.items())}
    click.echo(json.dumps(doc, indent=2))


class _Counter:
    """Control numbers for ``gateway ack``, a preview sent to nobody: by default ISA13 ``000000000`` (GS06
    from 0), a number the partners' persisted sequences never hand out (they run from 1), so a printed
    ack cannot collide with one the gateway sent; ``--start-control N`` numbers from N instead."""

    def __init__(self, start: int) -> None:
        self.values = {"interchange": start, "group": start, "set": max(start, 1)}

    def __call__(self, kind: str) -> int:
        value = self.values[kind]
        if value or kind != "interchange":
            self.values[kind] = value + 1
        return value


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ta1",
    type=click.Choice([p.value for p in TA1Policy]),
    default=TA1Policy.ON_ERROR.value,
    show_default=True,
    help="When to include a TA1.",
)
@click.option(
    "--start-control",
    type=click.IntRange(0, 999_999_999),
    default=0,
    show_default=True,
    help="First control number; 0 (ISA13 000000000, GS06 0) is one the gateway never sends.",
)
@click.option("--lenient-isa", is_flag=True, help="Report a non-fixed-width ISA as a warning, not an error.")
def ack(file: Path, ta1: str, start_control: int, lenient_isa: bool) -> None:
    """Print the 997/999 (and TA1) the gateway would send back for FILE."""
    validator = _validator(100, lenient_isa)
    counter = _Counter(start_control)
    now = datetime.now()
    printed = 0
    with file.open("rb") as stream:
        for item in validator.stream(X12Reader(stream)):
            if not isinstance(item, InterchangeReport):
                continue
            try:
                data = build_acks(item, counter, now, ta1=TA1Policy(ta1))
            except GatewayError as exc:
                click.echo(f"{file}: interchange {item.header.control_number}: {exc}", err=True)
                sys.exit(1)
            if data is not None:
                sys.stdout.write(data.decode("utf-8"))
                printed += 1
    if not printed:
        click.echo(f"{file}: no interchange to acknowledge (not X12?)", err=True)
        sys.exit(1)


main.add_command(translate)
main.add_command(partners)
main.add_command(run)
main.add_command(status)
main.add_command(messages)
main.add_command(db)
main.add_command(render)


if __name__ == "__main__":
    main()
