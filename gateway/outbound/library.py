"""Every outbound map of a deployment, compiled together; the map for a partner's set.

:meth:`OutboundLibrary.build` takes texts (the edge, :mod:`gateway.outbound_loader`,
reads the files) and raises one MapLoadError listing every problem in every file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.errors import ConfigError, Location
from gateway.mapping.functions import CodeTable, FunctionRegistry
from gateway.mapping.library import load_tables, load_yaml_file
from gateway.mapping.marked import MDict, key_mark
from gateway.mapping.problems import Problems, did_you_mean
from gateway.outbound.compiler import compile_outbound
from gateway.outbound.extends import resolve_outbound
from gateway.outbound.layout import is_layout
from gateway.outbound.nodes import OutboundMap
from gateway.partners.profile import DocumentSettings, Profile
from gateway.x12.schema.catalog import Catalog


@dataclass(slots=True)
class OutboundLibrary:
    """Outbound maps by name, and the shared outbound code tables."""

    maps: dict[str, OutboundMap] = field(default_factory=dict)
    tables: dict[str, CodeTable] = field(default_factory=dict)

    def get(self, name: str) -> OutboundMap | None:
        """The map called ``name``."""
        return self.maps.get(name)

    def base_for(self, set_id: str, version: str) -> OutboundMap | None:
        """The map writing ``set_id`` in ``version``: ``x12-<set>-<version>-out`` first, else the first by name."""
        found = sorted(
            (m for m in self.maps.values() if (m.set_id, m.version) == (set_id, version)), key=lambda m: m.name
        )
        preferred = [m for m in found if m.name == f"x12-{set_id}-{version}-out"]
        return next(iter(preferred or found), None)

    def for_partner(self, profile: Profile, set_id: str) -> OutboundMap:
        """The map for sending ``set_id`` to ``profile``: the one its profile names, else the base map.

        Raises ConfigError when the named map does not exist or does not write ``set_id`` in the
        partner's version; never falls back silently from a map the profile names.
        """
        x12 = profile.x12
        if x12 is None:
            raise ConfigError(f"partner {profile.id} has no `x12:` section", "OUT-020", Location(partner=profile.id))
        key, settings = self._named(profile, set_id)
        loc = Location(partner=profile.id, path=f"documents.{key}.map")
        if settings is not None:
            cmap = self.get(settings.map)
            if cmap is None:
                hint = did_you_mean(settings.map, self.maps)
                raise ConfigError(f"partner {profile.id}: no outbound map {settings.map!r}{hint}", "OUT-021", loc)
        else:
            cmap = self.base_for(set_id, x12.version)
            if cmap is None:
                raise ConfigError(f"no outbound map writes {set_id} {x12.version} (maps/outbound/)", "OUT-022", loc)
        if cmap.set_id != set_id or cmap.version != x12.version:
            what = f"map {cmap.name} writes {cmap.set_id} {cmap.version}"
            raise ConfigError(f"partner {profile.id} trades {set_id} {x12.version}, but {what}", "OUT-023", loc)
        return cmap

    def _named(self, profile: Profile, set_id: str) -> tuple[str, DocumentSettings | None]:
        """The profile's outbound entry for ``set_id`` (keyed by set id or by canonical document type)."""
        for key, settings in profile.documents.items():
            if settings.direction != "outbound":
                continue
            cmap = self.get(settings.map)
            if key == set_id or (not key.isdigit() and cmap is not None and cmap.set_id == set_id):
                return key, settings
        return set_id, None

    def check_partner(self, profile: Profile, raw: MDict | None, problems: Problems) -> None:
        """Phase-one checks of a profile's outbound documents, located in its file when ``raw`` is given."""
        docs = raw.get("documents") if raw is not None else None
        for key, settings in profile.documents.items():
            if settings.direction != "outbound":
                continue
            entry = docs.get(key) if isinstance(docs, MDict) else None
            mark = key_mark(entry, "map") if isinstance(entry, MDict) else key_mark(docs, key)
            path = f"documents.{key}.map"
            cmap = self.get(settings.map)
            if cmap is None:
                hint = did_you_mean(settings.map, self.maps)
                problems.add(
                    "PRT-021",
                    f"outbound map {settings.map!r} is not defined in maps/outbound/ or partners/*/outbound/{hint}",
                    mark,
                    path,
                )
                continue
            if (key.isdigit() and cmap.set_id != key) or (not key.isdigit() and cmap.document != key):
                problems.add(
                    "PRT-022", f"map {cmap.name} writes {cmap.set_id} ({cmap.document}), not {key}", mark, path
                )
            x12 = profile.x12
            if x12 is None or x12.us is None:
                what = "an `x12:` section" if x12 is None else "`x12.us` (our ISA/GS identity)"
                problems.add("PRT-023", f"sending X12 to this partner needs {what}", mark, path)
            elif x12.version != cmap.version:
                problems.add(
                    "PRT-024", f"the partner trades {x12.version}; map {cmap.name} writes {cmap.version}", mark, path
                )

    @classmethod
    def build(
        cls,
        map_texts: Mapping[str, str],
        table_texts: Mapping[str, str],
        catalog: Catalog,
        registry: FunctionRegistry,
    ) -> OutboundLibrary:
        """Compile every map (texts keyed by origin); raises MapLoadError listing every problem in every file."""
        problems = Problems()
        lib = cls()
        lib.tables = load_tables(table_texts, problems)
        raws: dict[str, MDict] = {}
        origins: dict[str, str] = {}
        unnamed: list[tuple[MDict, str]] = []
        for origin, text in sorted(map_texts.items()):
            raw = load_yaml_file(text, origin, problems)
            if raw is None or is_layout(raw):  # export layouts: gateway.outbound.layout.build_layouts
                continue
            name = str(raw.get("map") or "")
            if not name:
                unnamed.append((raw, origin))  # compiled alone: the compiler reports the missing name
            elif name in raws:
                problems.add("MAP-034", f"map {name!r} is also defined in {origins[name]}", key_mark(raw, "map"))
            else:
                raws[name], origins[name] = raw, origin
        for raw, origin in unnamed:
            compile_outbound(raw, origin, catalog, registry, lib.tables, problems)
        for name in sorted(raws):
            merged = resolve_outbound(raws, name, problems)
            if merged is None:
                continue
            cmap = compile_outbound(merged, origins[name], catalog, registry, lib.tables, problems)
            if cmap is not None:
                lib.maps[cmap.name] = cmap
        problems.raise_if_any()
        return lib
