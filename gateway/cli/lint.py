"""``gateway partners lint [PATH]``: every problem in a deployment's profiles and maps, at once.

PATH is a deployment folder, a folder inside one (``partners/``, ``maps/x12/``), or one file
(a profile, a map, a code table). The deployment is the nearest folder at or above PATH that
holds ``partners/``, ``maps/`` or ``gateway.yaml``; everything in it is loaded (a profile is only
right if its maps are), and the problems located under PATH are reported: inbound maps, outbound
maps and profiles together, each once at its cause. A file outside any deployment is checked
against the maps shipped with the gateway. PATH with nothing to check is an error, not "ok".
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gateway.cli.config_cli import default_registry, lint_config
from gateway.mapping.marked import MarkedYamlError, MDict, load_marked
from gateway.mapping.problems import MapLoadError, Problem, Problems
from gateway.outbound.functions import outbound_functions
from gateway.outbound.library import OutboundLibrary
from gateway.outbound_loader import outbound_files, profile_raw, rel_path
from gateway.resources import maps_folder
from gateway.workspace import Workspace, load_workspace


class NothingToLint(Exception):
    """PATH holds no profile, map or table."""


@dataclass(slots=True)
class LintReport:
    """What was checked under PATH and the problems found there."""

    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    maps: int = 0
    outbound_maps: int = 0
    tables: int = 0
    partners: int = 0
    broken: list[str] = field(default_factory=list)


def deployment_of(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` with ``gateway.yaml`` or ``partners/``, else with ``maps/``.

    (``partners/<id>/`` has a ``maps/`` too: it is not a deployment.)
    """
    start = path if path.is_dir() else path.parent
    folders = (start, *start.parents)
    for folder in folders:
        if (folder / "gateway.yaml").is_file() or (folder / "partners").is_dir():
            return folder
    for folder in folders:
        if (folder / "maps").is_dir():
            return folder
    return None


def lint_path(path: Path) -> LintReport:
    """Lint ``path`` (folder or file); raises :class:`NothingToLint` when there is nothing to check."""
    path = path.resolve()
    root = deployment_of(path)
    if root is None:
        if path.is_dir():
            raise NothingToLint(f"{path}: no partners/, maps/ or gateway.yaml here or above: nothing to lint")
        return _lint_alone(path)
    return _lint(root, path)


def _yaml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix in (".yaml", ".yml") else []
    return [p for p in path.rglob("*.y*ml") if "cases" not in p.relative_to(path).parts and p.name != "gateway.yaml"]


def _lint(root: Path, only: Path) -> LintReport:
    if only.is_file() and only.suffix not in (".yaml", ".yml"):
        raise NothingToLint(f"{only}: not a YAML profile, map or table")
    ws = load_workspace(root, partial=True)
    problems = list(ws.problems)
    outbound_maps, found = _outbound(root, ws)
    problems.extend(p for p in found if p not in problems)
    report = LintReport(
        maps=len(ws.library.maps),
        outbound_maps=outbound_maps,
        tables=len(ws.library.tables),
        partners=len(ws.partners.profiles),
    )
    whole = only == root
    own = [p for p in _yaml_files(only) if _is_own(p, root)]
    if only.is_file() and only.parent.name == "partners" and (only.parent / only.stem).is_dir():
        own += [p for p in _yaml_files(only.parent / only.stem) if p not in own]  # the partner's maps, overlays
    if not whole and not own:
        raise NothingToLint(f"{only}: no profile, map or table to check")
    if whole and not (root / "partners").is_dir() and not (root / "maps").is_dir():
        raise NothingToLint(f"{root}: no partners/ and no maps/: nothing to lint (`gateway init` lays them out)")
    report.files = len(own)
    inside = {str(p) for p in own}
    for problem in problems:
        if whole or problem.mark is None or _source(problem, root) in inside:
            report.problems.append(problem)
    for pid, causes in sorted(ws.broken.items()):
        profile = root / "partners" / f"{pid}.yaml"
        if whole or str(profile) in inside:
            report.broken.append(pid)
            report.problems.extend(p for p in causes if p not in report.problems)
    for problem in lint_config(root, default_registry()).problems.items:
        if (whole or (problem.mark is not None and _source(problem, root) in inside)) and not _known(problem, report):
            report.problems.append(problem)
    report.problems.sort(key=lambda p: (p.mark.source, p.mark.line, p.mark.column) if p.mark else ("", 0, 0))
    return report


def _known(problem: Problem, report: LintReport) -> bool:
    """Whether the same mistake is already reported (a profile's route fails its model in both checks)."""
    return any(p.mark == problem.mark and p.message == problem.message for p in report.problems)


def _outbound(root: Path, ws: Workspace) -> tuple[int, list[Problem]]:
    """Outbound maps and the profiles' outbound documents: the problems, each at its cause.

    The outbound library is built all or nothing; a broken file is set aside and the rest
    rebuilt, so that a profile naming a good map is not told it "is not defined".
    """
    maps, tables = outbound_files(maps_folder(root) / "outbound")
    for path in sorted((root / "partners").glob("*/outbound/*.yaml")):  # a partner's own outbound maps
        maps[str(path)] = path
    texts = {rel_path(p, root): p.read_text("utf-8") for p in maps.values()}
    table_texts = {rel_path(p, root): p.read_text("utf-8") for p in tables.values()}
    causes: list[Problem] = []
    dropped: set[str] = set()
    library = OutboundLibrary()
    for _ in range(len(texts) + 1):
        try:
            library = OutboundLibrary.build(texts, table_texts, ws.catalog, outbound_functions())
            break
        except MapLoadError as exc:
            if not causes:  # the first build reports every problem; later ones only what the first set aside
                causes.extend(exc.problems)
            bad = {p.mark.source for p in exc.problems if p.mark}
            if not bad & set(texts):
                break
            dropped |= bad & set(texts)
            texts = {k: v for k, v in texts.items() if k not in bad}
    checks = Problems()
    for pid, profile in sorted(ws.partners.profiles.items()):
        library.check_partner(profile, profile_raw(ws.profile_files.get(pid), root), checks)
    broken_names = {_map_name(root / source) for source in dropped}
    for problem in checks.items:
        if problem.code == "PRT-021" and any(f"{name!r}" in problem.message for name in broken_names if name):
            continue  # the map's own problems are its cause
        causes.append(problem)
    return len(library.maps), causes


def _map_name(path: Path) -> str | None:
    try:
        match = re.search(r"^map:\s*['\"]?([\w.-]+)", path.read_text("utf-8"), re.MULTILINE)
    except OSError:
        return None
    return match.group(1) if match else None


def _is_own(path: Path, root: Path) -> bool:
    """A file the deployment loads: under ``partners/`` or its maps folder (not the shipped maps)."""
    rel = path.relative_to(root).parts
    return bool(rel) and rel[0] in ("partners", "maps")


def _source(problem: Problem, root: Path) -> str:
    source = Path(problem.mark.source) if problem.mark else Path()
    return str(source if source.is_absolute() else (root / source).resolve())


def _lint_alone(path: Path) -> LintReport:
    """A file in no deployment: a profile or a partner map, checked with the shipped maps."""
    try:
        raw = load_marked(path.read_text("utf-8"), str(path))
    except (OSError, UnicodeDecodeError, MarkedYamlError) as exc:
        raise NothingToLint(f"{path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(raw, MDict) or not ({"id", "map"} & set(raw)):
        raise NothingToLint(f"{path}: not a partner profile (`id:`) or a map (`map:`)")
    with tempfile.TemporaryDirectory(prefix="gateway-lint-") as tmp:
        home = Path(tmp)
        if "id" in raw:
            target = home / "partners" / path.name
        else:
            target = home / "partners" / "_lint" / "maps" / path.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(path, target)
        shipped = maps_folder(home)
        ws = load_workspace(home, maps_dir=shipped, partial=True)
        relative = str(target.relative_to(home))
        report = LintReport(files=1, maps=len(ws.library.maps), partners=len(ws.partners.profiles))
        for problem in ws.problems:
            if problem.mark is not None and problem.mark.source == relative:
                problem = Problem(
                    problem.code,
                    problem.message,
                    problem.mark.__class__(str(path), problem.mark.line, problem.mark.column),
                    problem.path,
                )
                report.problems.append(problem)
        report.broken = sorted(ws.broken)
    return report
