"""Loading the outbound maps of a deployment from disk (an I/O edge).

``maps/outbound/*.yaml`` are outbound maps, ``maps/outbound/tables/*.yaml`` their
code tables (``cases/`` folders are skipped); a partner's own outbound maps (usually a few
lines that ``extends`` a base map) live in ``partners/<id>/outbound/*.yaml``. Phase one of configuration: all
are compiled and every problem in every file, plus every partner profile's
outbound documents that name a missing or mismatched map, is reported at once
with ``file:line:col``. The pure work is :class:`~gateway.outbound.library.OutboundLibrary`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gateway.mapping.functions import FunctionRegistry
from gateway.mapping.marked import MarkedYamlError, MDict, load_marked
from gateway.mapping.problems import MapLoadError, Problems
from gateway.outbound.functions import outbound_functions
from gateway.outbound.layout import Layout, build_layouts
from gateway.outbound.library import OutboundLibrary
from gateway.partners.profile import PartnerDirectory
from gateway.resources import maps_folder
from gateway.x12.schema.catalog import Catalog


def outbound_files(outbound_dir: Path, partners_dir: Path | None = None) -> tuple[dict[str, Path], dict[str, Path]]:
    """Map files and table files under ``outbound_dir`` (``tables/`` holds the tables), and the
    partners' own outbound maps (``partners_dir/<id>/outbound/*.yaml``)."""
    maps: dict[str, Path] = {}
    tables: dict[str, Path] = {}
    if outbound_dir.is_dir():
        for path in sorted(outbound_dir.rglob("*.yaml")):
            parts = path.relative_to(outbound_dir).parts
            if "cases" in parts:
                continue
            (tables if parts[0] == "tables" else maps)[str(path)] = path
    if partners_dir is not None and partners_dir.is_dir():
        for path in sorted(partners_dir.glob("*/outbound/*.yaml")):
            maps[str(path)] = path
    return maps, tables


def rel_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies under it (for problem locations), else as given."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_outbound(
    root: Path,
    catalog: Catalog,
    *,
    registry: FunctionRegistry | None = None,
    outbound_dir: Path | None = None,
    partners_dir: Path | None = None,
    partners: PartnerDirectory | None = None,
    profile_files: Mapping[str, Path] | None = None,
) -> OutboundLibrary:
    """Compile ``root/maps/outbound`` and ``root/partners/*/outbound``; check ``partners``' outbound
    documents; raise MapLoadError with everything."""
    outbound_dir = outbound_dir or maps_folder(root) / "outbound"
    map_paths, table_paths = outbound_files(outbound_dir, partners_dir or root / "partners")
    problems = Problems()
    try:
        library = OutboundLibrary.build(
            {rel_path(p, root): p.read_text("utf-8") for p in map_paths.values()},
            {rel_path(p, root): p.read_text("utf-8") for p in table_paths.values()},
            catalog,
            registry or outbound_functions(),
        )
    except MapLoadError as exc:
        problems.items.extend(exc.problems)
        library = OutboundLibrary()
    if partners is not None:
        files = profile_files or {}
        for pid, profile in sorted(partners.profiles.items()):
            raw = profile_raw(files.get(pid), root)
            library.check_partner(profile, raw, problems)
    problems.raise_if_any()
    return library


def profile_raw(path: Path | None, root: Path) -> MDict | None:
    """The profile file as marked YAML, for locating problems (None when it cannot be read)."""
    if path is None:
        return None
    try:
        raw = load_marked(path.read_text("utf-8"), rel_path(path, root))
    except (OSError, MarkedYamlError):
        return None
    return raw if isinstance(raw, MDict) else None


def load_layouts(root: Path, *, registry: FunctionRegistry | None = None) -> dict[str, Layout]:
    """The export layouts among ``root``'s outbound maps (``maps/outbound``, ``partners/*/outbound``), by
    name; raises MapLoadError listing every problem in every layout. Needs no X12 catalog."""
    map_paths, table_paths = outbound_files(maps_folder(root) / "outbound", root / "partners")
    return build_layouts(
        {rel_path(p, root): p.read_text("utf-8") for p in map_paths.values()},
        {rel_path(p, root): p.read_text("utf-8") for p in table_paths.values()},
        registry or outbound_functions(),
    )
