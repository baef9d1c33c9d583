"""Loading a deployment's maps, tables and partner profiles from disk (an I/O edge).

Phase one of configuration (STYLE.md convention 3): everything is read and
checked, pure and without network, and every problem in every file is
reported at once with ``file:line:col``. The result, :class:`Workspace`,
holds the compiled library, the partner directory, overlays and
cross-reference tables, and builds the :class:`~gateway.translate.Translator`.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import DefinitionError
from gateway.mapping.functions import FunctionRegistry, standard_functions
from gateway.mapping.library import MapLibrary
from gateway.mapping.marked import Mark, MarkedYamlError, MDict, key_mark, load_marked
from gateway.mapping.problems import Problem, Problems, did_you_mean, validate_marked
from gateway.partners.profile import PartnerDirectory, Profile
from gateway.resources import load_catalog, maps_folder
from gateway.translate import Translator
from gateway.x12.schema.catalog import Catalog
from gateway.x12.schema.compiled import SetDefinition


@dataclass(slots=True)
class Workspace:
    """Everything translation needs, loaded and checked."""

    root: Path
    catalog: Catalog
    library: MapLibrary
    partners: PartnerDirectory
    overlays: dict[tuple[str, str, str], SetDefinition] = field(default_factory=dict)
    xrefs: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    profile_files: dict[str, Path] = field(default_factory=dict)
    #: Partners that cannot be used (``load_workspace(partial=True)``): id → the problems at the cause.
    broken: dict[str, list[Problem]] = field(default_factory=dict)
    #: Every problem found, each once, at its cause (empty unless ``partial``).
    problems: list[Problem] = field(default_factory=list)

    def unattributed(self) -> list[Problem]:
        """Problems that take down no partner (a base map or table no profile uses, a stray file)."""
        used = {id(p) for found in self.broken.values() for p in found}
        return [p for p in self.problems if id(p) not in used]

    def translator(self, *, max_errors: int = 100) -> Translator:
        """A translator over this workspace; correlation ids are random UUIDs."""
        return Translator(
            self.catalog,
            self.library,
            self.partners,
            overlays=self.overlays,
            xrefs=self.xrefs,
            new_id=lambda: str(uuid.uuid4()),
            max_errors=max_errors,
        )


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def map_files(maps_dir: Path, partners_dir: Path | None) -> tuple[dict[str, Path], dict[str, Path]]:
    """Map files (``maps/**.yaml`` and ``partners/<id>/maps/*.yaml``) and table files (``maps/tables/``).

    ``maps/outbound/`` holds outbound maps, a different format: :mod:`gateway.outbound_loader` reads them.
    """
    maps: dict[str, Path] = {}
    tables: dict[str, Path] = {}
    if maps_dir.is_dir():
        for path in sorted(maps_dir.rglob("*.yaml")):
            parts = path.relative_to(maps_dir).parts
            if "cases" in parts or parts[0] == "outbound":
                continue
            (tables if parts[0] == "tables" else maps)[str(path)] = path
    if partners_dir is not None and partners_dir.is_dir():
        for path in sorted(partners_dir.glob("*/maps/*.yaml")):
            maps[str(path)] = path
    return maps, tables


def load_workspace(
    root: Path,
    *,
    maps_dir: Path | None = None,
    partners_dir: Path | None = None,
    catalog: Catalog | None = None,
    registry: FunctionRegistry | None = None,
    partial: bool = False,
) -> Workspace:
    """Load and check maps, tables and profiles under ``root``; raises MapLoadError listing every problem.

    Each problem is reported once, at its cause: a profile naming a map that failed to compile
    gets no "map is not defined" of its own. With ``partial`` nothing is raised: the partners
    hit by a problem are listed in :attr:`Workspace.broken` (with the problems that caused it)
    and the others are usable, so one partner's mistake does not stop every partner's files.
    """
    maps_dir = maps_dir or maps_folder(root)
    partners_dir = partners_dir or root / "partners"
    catalog = catalog or load_catalog()
    registry = registry or standard_functions()
    map_paths, table_paths = map_files(maps_dir, partners_dir)
    library, problems = MapLibrary.build_partial(
        {_rel(p, root): p.read_text("utf-8") for p in map_paths.values()},
        {_rel(p, root): p.read_text("utf-8") for p in table_paths.values()},
        catalog,
        registry,
    )
    broken: dict[str, list[Problem]] = {}
    profiles, files = _profiles(partners_dir, root, problems, broken)
    ws = Workspace(root, catalog, library, PartnerDirectory(profiles), profile_files=files)
    for profile in profiles:
        before = len(problems.items)
        causes = _check_profile(ws, profile, files[profile.id], root, problems)
        found = causes + problems.items[before:]
        if found:
            broken.setdefault(profile.id, []).extend(found)
    if not partial:
        problems.raise_if_any()
    ws.broken = broken
    ws.problems = list(problems.items)
    return ws


def load_profiles(partners_dir: Path, root: Path) -> dict[str, Profile]:
    """The partner profiles that load, by id, without compiling any map (``gateway recon`` needs only
    their settings); their problems are `gateway config lint`'s to report."""
    profiles, _ = _profiles(partners_dir, root, Problems(), {})
    return {p.id: p for p in profiles}


def read_xrefs(profile: Profile, partners_dir: Path) -> dict[str, dict[str, str]]:
    """The profile's cross-reference tables that can be read, by name (``gateway recon`` needs them
    without the rest of the workspace); a table that cannot be read is `gateway config lint`'s to report."""
    problems = Problems()
    return _check_xrefs(profile, MDict(), partners_dir / f"{profile.id}.yaml", problems)


def _profiles(
    partners_dir: Path, root: Path, problems: Problems, broken: dict[str, list[Problem]]
) -> tuple[list[Profile], dict[str, Path]]:
    profiles: list[Profile] = []
    files: dict[str, Path] = {}
    if not partners_dir.is_dir():
        return profiles, files
    for path in sorted(partners_dir.glob("*.yaml")):
        before = len(problems.items)
        profile = _profile(path, root, problems, files)
        if profile is not None:
            profiles.append(profile)
            files[profile.id] = path
        if len(problems.items) > before:
            broken.setdefault(path.stem, []).extend(problems.items[before:])
    return profiles, files


def _profile(path: Path, root: Path, problems: Problems, files: dict[str, Path]) -> Profile | None:
    """One profile file, checked on its own; None when it cannot be used at all."""
    origin = _rel(path, root)
    try:
        raw = load_marked(path.read_text("utf-8"), origin)
    except MarkedYamlError as exc:
        problems.add("PRT-001", f"not valid YAML: {exc.reason}", exc.mark)
        return None
    if not isinstance(raw, MDict):
        problems.add("PRT-002", "a partner profile is a YAML mapping", Mark(origin, 1, 1))
        return None
    profile = validate_marked(Profile, raw, problems, "PRT-003")
    if profile is None:
        return None
    if profile.id != path.stem:
        problems.add("PRT-004", f"id {profile.id!r} must match the file name {path.stem!r}", key_mark(raw, "id"), "id")
    if profile.id in files:
        problems.add("PRT-005", f"partner {profile.id!r} is also defined in {files[profile.id]}", key_mark(raw, "id"))
        return None
    return profile


def _check_profile(ws: Workspace, profile: Profile, path: Path, root: Path, problems: Problems) -> list[Problem]:
    """Cross-references: maps exist and fit, overlays compile, xref files load.

    Returns the problems, already reported at their cause, of the broken maps this profile uses.
    """
    causes: list[Problem] = []
    origin = _rel(path, root)
    raw = load_marked(path.read_text("utf-8"), origin)
    docs = raw.get("documents") or {}
    if profile.format == "x12" and profile.x12 is None:
        problems.add("PRT-010", "an x12 partner needs an `x12:` section with its ISA identity", raw.mark, "x12")
    for key, settings in profile.documents.items():
        if settings.direction == "outbound":
            continue  # an outbound map: checked by gateway.outbound_loader.load_outbound
        mark = key_mark(docs.get(key) or docs, "map") if isinstance(docs.get(key), dict) else key_mark(docs, key)
        cmap = ws.library.get(settings.map)
        if cmap is None and settings.map in ws.library.broken:
            found = ws.library.broken_problems.get(settings.map) or []
            causes.extend(p for p in found if p not in causes)
            if not found:  # no problem of its own to point at: say why here
                why = ws.library.broken[settings.map]
                problems.add("PRT-017", f"map {settings.map!r} cannot be used: {why}", mark, f"documents.{key}.map")
            continue
        if cmap is None:
            problems.add(
                "PRT-011",
                f"map {settings.map!r} is not defined{did_you_mean(settings.map, ws.library.raw)}",
                mark,
                f"documents.{key}.map",
            )
            continue
        if key.isdigit() and settings.direction == "inbound" and cmap.source.set_id != key:
            problems.add(
                "PRT-012", f"map {cmap.name} reads set {cmap.source.set_id}, not {key}", mark, f"documents.{key}"
            )
        if not key.isdigit() and cmap.document != key:
            problems.add("PRT-012", f"map {cmap.name} produces {cmap.document}, not {key}", mark, f"documents.{key}")
        if settings.overlay:
            overlay_path = path.parent / settings.overlay
            try:
                definition = ws.catalog.with_overlay(overlay_path.read_text("utf-8"), _rel(overlay_path, root))
            except OSError as exc:
                problems.add("PRT-013", f"overlay {settings.overlay}: {exc.strerror}", mark, f"documents.{key}.overlay")
                continue
            except DefinitionError as exc:
                problems.add("PRT-014", f"overlay {settings.overlay}: {exc}", mark, f"documents.{key}.overlay")
                continue
            ws.overlays[(profile.id, definition.version, definition.id)] = definition
    ws.xrefs[profile.id] = _check_xrefs(profile, raw, path, problems)
    return causes


def _check_xrefs(profile: Profile, raw: MDict, path: Path, problems: Problems) -> dict[str, dict[str, str]]:
    """The profile's cross-reference tables, read; a table that cannot be read is a problem."""
    tables: dict[str, dict[str, str]] = {}
    xref_raw = raw.get("xref") or {}
    for name, xset in profile.xref.items():
        mark = key_mark(xref_raw, name)
        if xset.values is not None:
            tables[name] = dict(xset.values)
            continue
        if not xset.file:
            problems.add("PRT-015", f"xref {name}: give `values` or `file`", mark, f"xref.{name}")
            continue
        try:
            tables[name] = _read_xref(path.parent / xset.file, xset.key, xset.value)
        except (OSError, ValueError, KeyError) as exc:
            problems.add("PRT-016", f"xref {name}: cannot read {xset.file}: {exc}", mark, f"xref.{name}")
    return tables


def _read_xref(path: Path, key: str | None, value: str | None) -> dict[str, str]:
    text = path.read_text("utf-8-sig")
    if path.suffix in (".yaml", ".yml"):
        loaded = load_marked(text, str(path))
        if not isinstance(loaded, Mapping):
            raise ValueError("a YAML xref is a mapping of their value to ours")
        return {str(k): str(v) for k, v in loaded.items()}
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return {}
    k = key or next(iter(rows[0]))
    v = value or list(rows[0])[1]
    return {row[k]: row[v] for row in rows}
