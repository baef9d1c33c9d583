"""``gateway render``: a canonical purchase order (JSON) written as the partner's X12 850.

Exit codes as everywhere: 0 written, 1 the document cannot be written (invalid
JSON, a value the partner's X12 cannot carry; every problem listed, located by
field), 2 usage or configuration (unknown partner, map problems).
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError

from gateway.canonical import PurchaseOrder
from gateway.cli.maps_cli import HOME_HELP, open_workspace
from gateway.errors import ConfigError
from gateway.mapping.problems import MapLoadError
from gateway.outbound import RenderError, render_850
from gateway.outbound_loader import load_outbound


class ControlCounter:
    """Control numbers from ``start`` for one run (the runtime persists real sequences per partner)."""

    def __init__(self, start: int) -> None:
        self.values = {"interchange": start, "group": start, "set": start}

    def __call__(self, kind: str) -> int:
        value = self.values[kind]
        self.values[kind] = value + 1
        return value


def read_order(path: Path) -> PurchaseOrder:
    """The purchase order in ``path``; exits 1 listing every problem with its key path."""
    try:
        return PurchaseOrder.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(document)"
            click.echo(f"{path}: {where}: {err['msg']}", err=True)
        raise SystemExit(1) from exc


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: a watcher never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--partner", required=True, help="The partner profile to write for (its identity, version, delimiters).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of to stdout.")
@click.option(
    "--control",
    type=click.IntRange(1, 999_999_999),
    default=1,
    show_default=True,
    help="Interchange, group and set control number to use.",
)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="GATEWAY_HOME", help=HOME_HELP)
def render(file: Path, partner: str, out: Path | None, control: int, home: Path | None) -> None:
    """Write the purchase order in FILE (canonical JSON) as PARTNER's X12 850."""
    ws = open_workspace(home)
    profile = ws.partners.get(partner)
    if profile is None:
        raise click.UsageError(f"no partner profile {partner!r} (known: {', '.join(sorted(ws.partners.profiles))})")
    try:
        library = load_outbound(ws.root, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
        cmap = library.for_partner(profile, "850")
    except MapLoadError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from exc
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    order = read_order(file)
    try:
        data = render_850(
            order,
            profile,
            cmap,
            control_numbers=ControlCounter(control),
            when=datetime.now(),
            xrefs=ws.xrefs.get(profile.id),
        )
    except RenderError as exc:
        click.echo(f"{file}: PO {order.po_number}: cannot write the 850 for {partner}:", err=True)
        for e in exc.errors:
            click.echo(f"  {e.location.path or e.location.describe()}: [{e.code}] {e.message}", err=True)
        raise SystemExit(1) from exc
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    if out is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    write_atomic(out, data)
    click.echo(f"{out}: 850 for {partner} (map {cmap.name}), PO {order.po_number}, {len(order.lines)} line(s)")


__all__ = ["ControlCounter", "read_order", "render"]
