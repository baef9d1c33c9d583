"""``gateway init [DIR]``: lay out a new deployment folder.

The folder gets ``gateway.yaml`` (every key at its default, :data:`gateway.settings.EXAMPLE`),
``partners/``, ``inbox/``, ``outbox/`` and ``var/``. Base maps and code tables are not copied:
the ones shipped with the installed gateway are used until the folder has a ``maps/`` of its
own (``--with-maps`` copies them there, to change a base map). Exit 0 done, 2 the folder is
already a deployment or cannot be written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from gateway.resources import shipped_maps
from gateway.settings import EXAMPLE

FOLDERS = ("partners", "inbox", "outbox", "var")


@click.command("init")
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--with-maps", is_flag=True, help="Also copy the shipped base maps into DIR/maps/ (to change them).")
def init(directory: Path, with_maps: bool) -> None:
    """Lay out a deployment in DIRECTORY (default: here): gateway.yaml, partners/, inbox/, outbox/, var/."""
    settings = directory / "gateway.yaml"
    if settings.exists():
        raise click.UsageError(f"{settings} exists: {directory} is already a deployment (nothing changed)")
    source = shipped_maps()
    if with_maps and source is None:
        raise click.UsageError("no shipped maps found to copy (is the gateway installed?)")
    try:
        for name in FOLDERS:
            (directory / name).mkdir(parents=True, exist_ok=True)
        if with_maps and source is not None:
            shutil.copytree(source, directory / "maps", ignore=shutil.ignore_patterns("cases", "__pycache__"))
        settings.write_text(EXAMPLE, "utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot lay out {directory}: {exc}") from exc
    click.echo(f"{directory.resolve()}: gateway.yaml, {', '.join(f + '/' for f in FOLDERS)}")
    maps = directory / "maps" if with_maps else source
    click.echo(f"base maps: {maps}" + ("" if with_maps else " (shipped with the gateway)"))
    click.echo("next: add partners/<id>.yaml (docs/onboarding.md), `gateway partners lint`, then `gateway run`")
