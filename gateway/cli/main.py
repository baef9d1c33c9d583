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
from gateway.cli.decided import decide_file
from gateway.cli.ending import Finished
from gateway.cli.heap import streaming_heap
from gateway.cli.lazy import LazyGroup
from gateway.cli.maps_cli import HOME_HELP, open_workspace, partners, translate
from gateway.errors import GatewayError
from gateway.translate import Translator
from gateway.workspace import Workspace
from gateway.x12.ack.build import TA1Policy
from gateway.x12.validate.export import file_dict, file_lines

# The commands that need the store, the runtime or the outbound renderer, imported only when run: a
# `translate` or `validate` never loads SQLAlchemy (about a second of every process otherwise).
LAZY_COMMANDS = {
    "run": "gateway.cli.run_cli:run",
    "status": "gateway.cli.status_cli:status",
    "messages": "gateway.cli.messages_cli:messages",
    "find": "gateway.cli.messages_cli:find",
    "db": "gateway.cli.db:db",
    "render": "gateway.cli.render_cli:render",
    "send": "gateway.cli.render_cli:send",
    "init": "gateway.cli.init_cli:init",
    "deliveries": "gateway.cli.deliveries_cli:deliveries",
    "deadletters": "gateway.cli.deliveries_cli:deadletters",
    "deliver": "gateway.cli.deliveries_cli:deliver",
    "retransmit": "gateway.cli.bulk_cli:retransmit",
    "release": "gateway.cli.deliveries_cli:release",
    "requeue": "gateway.cli.deliveries_cli:requeue",
    "reprocess": "gateway.cli.bulk_cli:reprocess",
    "staging": "gateway.cli.staging_cli:staging",
    "config": "gateway.cli.config_cli:config",
    "export": "gateway.cli.export_cli:export",
    "acks": "gateway.cli.acks_cli:acks",
    "recon": "gateway.cli.recon_cli:recon",
    "reconcile": "gateway.cli.recon_cli:reconcile",
    "archive": "gateway.cli.archive_cli:archive",
    "channels": "gateway.cli.channels_cli:channels",
    "web": "gateway.web.command:web",
}


@click.group(cls=LazyGroup, lazy_commands=LAZY_COMMANDS)
@click.version_option(package_name="hospital-edi-gateway")
def main() -> None:
    """EDI gateway for hospital supply chains: X12 850/855/856/810 with 997/999/TA1."""


def _translator(ws: Workspace, partner: str | None, max_errors: int, lenient_isa: bool) -> Translator:
    """The workspace's translator, as ``gateway run`` builds it (plus the command's reporting options)."""
    if partner is not None and ws.partners.get(partner) is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    translator = ws.translator(max_errors=max_errors)
    translator.strict_isa = not lenient_isa
    return translator


PARTNER_HELP = "The file's partner, as its inbox folder would say (default: each interchange's sender)."


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print only a one-line total.")
@click.option("--max-errors", default=100, show_default=True, help="Errors listed per transaction set.")
@click.option("--lenient-isa", is_flag=True, help="Report a non-fixed-width ISA as a warning, not an error.")
@click.option("--pedantic", is_flag=True, help="Also warn about codes outside the usual code lists.")
@click.option("--partner", help=PARTNER_HELP)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="GATEWAY_HOME", help=HOME_HELP)
def validate(
    files: tuple[Path, ...],
    as_json: bool,
    quiet: bool,
    max_errors: int,
    lenient_isa: bool,
    pedantic: bool,
    partner: str | None,
    home: Path | None,
) -> None:
    """Validate X12 FILES: envelopes, structure and elements, each error located.

    With the partner's profile, as ``gateway run`` validates: guide overlays, accepted findings, and the
    check that every interchange comes from the file's partner (``--partner``).
    """
    ws = open_workspace(home)
    translator = _translator(ws, partner, max_errors, lenient_isa)
    translator.pedantic = pedantic
    totals = {"files": 0, "interchanges": 0, "sets": 0, "accepted": 0, "rejected": 0, "invalid_files": 0}
    documents = []
    for path in files:
        with streaming_heap():
            decided = decide_file(translator, ws, path, partner, x12_only=True)
        report = decided.report
        totals["files"] += 1
        totals["interchanges"] += len(report.interchanges)
        for v in decided.verdicts:
            for s in v.sets():
                totals["sets"] += 1
                totals["rejected" if s.status == "rejected" else "accepted"] += 1
        if not decided.valid:
            totals["invalid_files"] += 1
        refusals = [v.reason for v in decided.verdicts if not v.claim and v.reason]
        if as_json:
            doc = file_dict(str(path), report, decided.valid)
            doc["refused"] = refusals
            documents.append(doc)
        elif not quiet:
            click.echo("\n".join(file_lines(str(path), report, decided.valid)))
            for reason in refusals:
                click.echo(f"  REJECTED {reason}")
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
    default=None,
    help="When to include a TA1 (default: the partner profile's policy, as `gateway run` sends).",
)
@click.option(
    "--start-control",
    type=click.IntRange(0, 999_999_999),
    default=0,
    show_default=True,
    help="First control number; 0 (ISA13 000000000, GS06 0) is one the gateway never sends.",
)
@click.option("--lenient-isa", is_flag=True, help="Report a non-fixed-width ISA as a warning, not an error.")
@click.option("--partner", help=PARTNER_HELP)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="GATEWAY_HOME", help=HOME_HELP)
def ack(
    file: Path, ta1: str | None, start_control: int, lenient_isa: bool, partner: str | None, home: Path | None
) -> None:
    """Print the 997/999 (and TA1) the gateway would send back for FILE.

    Decided as ``gateway run`` decides: the partner profile's guide overlays, accepted findings and
    ack/TA1 policy. Nothing is printed for what the gateway would not answer (acknowledgments, an
    unknown sender, another partner's interchange): stderr says why.
    """
    ws = open_workspace(home)
    translator = _translator(ws, partner, 100, lenient_isa)
    decided = decide_file(translator, ws, file, partner, x12_only=True)
    counter = _Counter(start_control)
    now = datetime.now()
    printed = 0
    for verdict in decided.verdicts:
        plan = verdict.ack
        where = f"{file}: interchange {verdict.report.header.control_number}"
        if plan is None:
            click.echo(f"{where}: no acknowledgment: {verdict.ack_note or verdict.reason}", err=True)
            continue
        if ta1 is not None:
            plan.ta1 = TA1Policy(ta1)
        try:
            data = plan.build(counter, now)
        except GatewayError as exc:
            click.echo(f"{where}: {exc}", err=True)
            sys.exit(1)
        if data is None:
            click.echo(f"{where}: no acknowledgment due under partner {plan.partner}'s ack policy", err=True)
            continue
        sys.stdout.write(data.decode("utf-8"))
        printed += 1
    if not decided.verdicts:
        click.echo(f"{file}: no interchange to acknowledge (not X12?)", err=True)
        sys.exit(1)
    if not printed:
        sys.exit(1)


main.add_command(translate)
main.add_command(partners)


def entry() -> None:
    """The ``gateway`` program (and ``python -m gateway.cli.main``): :data:`main`. A command that ends with
    :class:`~gateway.cli.ending.Finished` (``gateway run --once``: its threads and delivery processes done,
    its store closed, its summary printed) ends the process at once, its logs and output flushed, without the
    interpreter's teardown (see gateway.cli.ending)."""
    try:
        main()
    except Finished as done:
        if _observed():
            raise  # under cProfile or a coverage tracer: their report is written at the interpreter's end
        from gateway.runtime.service import exit_now  # (imported already by the command that finished)

        exit_now(done.code if isinstance(done.code, int) else 1)


def _observed() -> bool:
    """Whether a profiler or tracer watches this interpreter (``sys.setprofile``/``settrace``, or a tool of
    ``sys.monitoring`` on Python 3.12+, as coverage's sysmon core): they write their results at its end."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return monitoring is not None and any(monitoring.get_tool(tool) is not None for tool in range(6))


if __name__ == "__main__":
    entry()
