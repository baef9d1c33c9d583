"""``gateway config lint``: phase one of the deployment's configuration, every problem at once.

Reads ``gateway.yaml`` and the partner profiles (their ``routes:``) and checks them with
:func:`gateway.config_check.check_config` against the gateway's component registry; nothing is
built and no connection is opened. ``gateway partners lint`` runs the same check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from gateway.config_check import CheckedConfig, check_config
from gateway.delivery.registry import Registry
from gateway.mapping.marked import Mark, MarkedYamlError, load_marked
from gateway.mapping.problems import MapLoadError, Problem, Problems
from gateway.settings import Settings

__all__ = ["config", "default_registry", "lint_config"]


def default_registry() -> Registry:
    """The registry the gateway runs with (from the composition root, imported only when needed)."""
    from gateway.components import default_registry as build  # the root imports every component

    return build()


def _source(path: Path, home: Path) -> str:
    """How a file is named in problems: relative to the deployment folder when inside it."""
    try:
        return str(path.resolve().relative_to(home))
    except ValueError:
        return str(path)


def _read(path: Path, home: Path, problems: Problems, code: str) -> Any:
    """The marked YAML of ``path``; a problem (and None) when it is not valid YAML."""
    source = _source(path, home)
    try:
        return load_marked(path.read_text("utf-8"), source)
    except MarkedYamlError as exc:
        problems.add(code, f"not valid YAML: {exc.reason}", exc.mark)
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(code, f"cannot be read: {exc}", Mark(source, 1, 1))
    return None


def lint_config(home: Path, registry: Registry, config: Path | None = None) -> CheckedConfig:
    """Phase one for the deployment in ``home``: ``gateway.yaml`` (or ``config``) and the profiles' routes.

    A profile that is not valid YAML is left to ``gateway partners lint``, which reports it.
    """
    home = home.resolve()
    path = config or home / "gateway.yaml"
    read = Problems()
    raw = None
    if path.exists():
        raw = _read(path, home, read, "CFG-002")
    elif config is not None:
        read.add("CFG-001", f"no settings file {path}", None)
    if read.items:  # an unreadable gateway.yaml: that problem alone, not the defaults' checks
        return CheckedConfig(read)
    folder = home / _partners_folder(raw)
    profiles = {p.stem: _read(p, home, Problems(), "PRT-001") for p in sorted(folder.glob("*.yaml"))}
    layouts, broken = _layouts(home)
    checked = check_config(
        raw,
        registry,
        profiles,
        layouts=layouts,
        build_problems=_build_problems(home),
        file_exists=lambda name: (home / name).exists(),
    )
    checked.problems.items.extend(broken)
    return checked


def _build_problems(home: Path) -> Callable[[BaseModel], list[tuple[tuple[str, ...], str]]]:
    """What a destination's build would refuse, asked of its config's ``lint(home)`` (REST: CA bundle,
    HMAC secret) when it has one."""

    def check(config: BaseModel) -> list[tuple[tuple[str, ...], str]]:
        lint = getattr(config, "lint", None)
        return list(lint(str(home))) if callable(lint) else []

    return check


def _layouts(home: Path) -> tuple[dict[str, str] | None, list[Problem]]:
    """The export layouts (name -> document type) of the deployment, or None and their problems."""
    from gateway.outbound_loader import load_layouts  # compiles maps: only when linting

    try:
        return {name: layout.document for name, layout in load_layouts(home).items()}, []
    except MapLoadError as exc:
        summary = Problem("CFG-042", "the export layouts do not compile, so layout names were not checked", None)
        return None, [summary, *exc.problems]


def _partners_folder(raw: Any) -> str:
    """``folders.partners`` as written (even when another key of the file is wrong), else the default."""
    folders = raw.get("folders") if isinstance(raw, dict) else None
    value = folders.get("partners") if isinstance(folders, dict) else None
    return value if isinstance(value, str) and value else Settings().folders.partners


@click.group()
def config() -> None:
    """The deployment's configuration: lint."""


@config.command("lint")
@click.option(
    "--home",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="GATEWAY_HOME",
    help="The deployment folder (default: $GATEWAY_HOME or the current folder).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default: HOME/gateway.yaml).",
)
def lint(home: Path | None, config_file: Path | None) -> None:
    """Check gateway.yaml's destinations and routes and the partners' routes, without building anything.

    Every problem at once, located ``file:line:col`` with its key path: unknown destination types and
    keys, routes to destinations that do not exist, bad predicates, rules never reached, secrets not
    set, retry policies. Exit 0 clean, 2 when anything is wrong.
    """
    checked = lint_config(home or Path.cwd(), default_registry(), config_file)
    echo_checked(checked)
    if checked.problems.items:
        raise SystemExit(2)


def echo_checked(checked: CheckedConfig) -> None:
    """Print the problems (stderr) and the summary line (stdout when clean)."""
    for problem in sorted_problems(checked.problems):
        click.echo(str(problem), err=True)
    counts = (
        f"{checked.destinations} destination(s), {checked.routes} route(s), {checked.partner_routes} partner route(s)"
    )
    if checked.problems.items:
        click.echo(f"{len(checked.problems.items)} problem(s) in the configuration ({counts})", err=True)
    else:
        click.echo(f"ok: {counts}")


def sorted_problems(problems: Problems) -> list[Any]:
    """The problems in file, line and column order (those without a place first)."""
    return sorted(problems.items, key=lambda p: (p.mark.source, p.mark.line, p.mark.column) if p.mark else ("", 0, 0))
