"""Every map and code table of a deployment, compiled together and looked up by name or source.

:meth:`MapLibrary.build` takes texts (the composition root reads the files),
resolves ``extends`` chains, compiles every map, and raises one
:class:`~gateway.mapping.problems.MapLoadError` listing every problem in
every file. Base maps are the X12 maps that extend nothing; they are what
``gateway translate`` uses for a sender with no profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.mapping.compiler import CompiledMap, code_table, compile_map, expand_dotted, merge
from gateway.mapping.functions import CodeTable, FunctionRegistry
from gateway.mapping.marked import Mark, MarkedYamlError, MDict, key_mark, load_marked
from gateway.mapping.problems import Problem, Problems, did_you_mean
from gateway.x12.schema.catalog import Catalog

#: ``map: name`` at the top level of a map file that is not valid YAML.
_MAP_NAME = re.compile(r"^map:\s*['\"]?([\w.-]+)", re.MULTILINE)
_TABLE_NAME = re.compile(r"^table:\s*['\"]?([\w.-]+)", re.MULTILINE)


@dataclass(slots=True)
class MapLibrary:
    """Compiled maps by name, base X12 maps by (set, version), and the shared code tables."""

    maps: dict[str, CompiledMap] = field(default_factory=dict)
    tables: dict[str, CodeTable] = field(default_factory=dict)
    raw: dict[str, MDict] = field(default_factory=dict)
    #: Maps that failed to load (:meth:`build_partial`): name → why, and name → the problems at the cause.
    broken: dict[str, str] = field(default_factory=dict)
    broken_problems: dict[str, list[Problem]] = field(default_factory=dict)
    #: Code tables whose file failed to load: name → its problems.
    broken_tables: dict[str, list[Problem]] = field(default_factory=dict)

    def get(self, name: str) -> CompiledMap | None:
        """The map called ``name``."""
        return self.maps.get(name)

    def base_for(self, set_id: str, version: str) -> CompiledMap | None:
        """The shipped base map for an X12 set and version (one that extends nothing)."""
        for m in self.maps.values():
            source = m.source
            if m.extends is None and source.format == "x12" and (source.set_id, source.version) == (set_id, version):
                return m
        return None

    def of_format(self, fmt: str, *, base_only: bool = False) -> list[CompiledMap]:
        """Every map reading ``fmt`` (x12, csv, xml)."""
        return [m for m in self.maps.values() if m.source.format == fmt and not (base_only and m.extends)]

    @classmethod
    def build(
        cls,
        map_texts: Mapping[str, str],
        table_texts: Mapping[str, str],
        catalog: Catalog,
        registry: FunctionRegistry,
    ) -> MapLibrary:
        """Compile everything; raises MapLoadError with every problem found in every file."""
        lib, problems = cls.build_partial(map_texts, table_texts, catalog, registry)
        problems.raise_if_any()
        return lib

    @classmethod
    def build_partial(
        cls,
        map_texts: Mapping[str, str],
        table_texts: Mapping[str, str],
        catalog: Catalog,
        registry: FunctionRegistry,
    ) -> tuple[MapLibrary, Problems]:
        """Compile what compiles; the maps that do not are named in :attr:`broken` with their cause.

        Each problem is reported once, at its cause: a map that extends a broken map is broken
        too, but adds no problem of its own (it would repeat its parent's), so the caller can
        tell which partners a broken map takes down without printing false errors.
        """
        problems = Problems()
        lib = cls()
        lib.tables = load_tables(table_texts, problems)
        for origin, text in table_texts.items():  # a table that failed: the maps using it point here
            named = _TABLE_NAME.search(text)
            if named and named.group(1) not in lib.tables:
                found = [p for p in problems.items if p.mark is not None and p.mark.source == origin]
                lib.broken_tables[named.group(1)] = found
        origins: dict[str, str] = {}
        for origin, text in sorted(map_texts.items()):
            before = len(problems.items)
            raw = load_yaml_file(text, origin, problems)
            if raw is None:
                guess = _MAP_NAME.search(text)  # the file's map, named for the partners that use it
                if guess and guess.group(1) not in lib.broken:
                    lib.broken[guess.group(1)] = f"{origin} cannot be read"
                    lib.broken_problems[guess.group(1)] = problems.items[before:]
                continue
            name = str(raw.get("map", ""))
            if not name:
                problems.add("MAP-021", "a map needs a `map:` name", raw.mark)
                continue
            if name in lib.raw:
                problems.add("MAP-034", f"map {name!r} is also defined in {origins[name]}", key_mark(raw, "map"))
                continue
            if isinstance(raw.get("fields"), MDict):
                raw["fields"] = expand_dotted(raw["fields"])
            lib.raw[name] = raw
            origins[name] = origin
        for name in sorted(lib.raw):
            lib._compile(name, origins, catalog, registry, problems)
        return lib, problems

    def _compile(
        self,
        name: str,
        origins: dict[str, str],
        catalog: Catalog,
        registry: FunctionRegistry,
        problems: Problems,
        active: tuple[str, ...] = (),
    ) -> None:
        """Compile ``name`` after its parents; a map over a broken parent is broken, without a problem of its own."""
        if name in self.maps or name in self.broken or name in active:
            return  # done, or a cycle that resolve() reports
        chain = [name]
        parent = self.raw[name].get("extends")
        while parent and str(parent) in self.raw and str(parent) not in chain:
            chain.append(str(parent))
            parent = self.raw[str(parent)].get("extends")
        if len(chain) > 1 and str(chain[1]) in self.raw:
            self._compile(chain[1], origins, catalog, registry, problems, (*active, name))
            if chain[1] in self.broken:
                self.broken[name] = f"it extends {chain[1]}, which is broken ({self.broken[chain[1]]})"
                self.broken_problems[name] = self.broken_problems.get(chain[1], [])
                return
        before = len(problems.items)
        merged = self.resolve(name, problems, [])
        compiled = None
        if merged is not None:
            compiled = compile_map(merged, origins[name], catalog, registry, self.tables, problems)
        found = problems.items[before:]
        echoes = [p for p in found if p.code == "MAP-011" and _names_broken_table(p, self.broken_tables)]
        for echo in echoes:  # "no code table named uom" when uom.yaml itself is broken: its problem is the cause
            problems.items.remove(echo)
            found.remove(echo)
        for table in sorted({t for p in echoes for t in self.broken_tables if f"{t!r}" in p.message}):
            found += [p for p in self.broken_tables[table] if p not in found]
        if compiled is not None and not found and not echoes:
            self.maps[name] = compiled
            return
        self.broken[name] = f"{len(found) or 1} problem(s) in {origins[name]} or the tables it uses"
        self.broken_problems[name] = found

    def resolve(self, name: str, problems: Problems, chain: list[str]) -> MDict | None:
        """The map's raw spec with its ``extends`` chain merged in (base first)."""
        raw = self.raw[name]
        parent = raw.get("extends")
        if not parent:
            return raw
        parent = str(parent)
        if parent in chain or parent == name:
            problems.add("MAP-035", f"extends cycle: {' -> '.join([*chain, name, parent])}", key_mark(raw, "extends"))
            return None
        if parent not in self.raw:
            hint = did_you_mean(parent, self.raw)
            problems.add("MAP-036", f"extends unknown map {parent!r}{hint}", key_mark(raw, "extends"), "extends")
            return None
        base = self.resolve(parent, problems, [*chain, name])
        if base is None:
            return None
        out = MDict(base)
        out.mark = raw.mark
        out.key_marks = {**base.key_marks, **raw.key_marks}
        for key, value in raw.items():
            if key == "fields":
                out["fields"] = merge(base.get("fields", MDict()), value)
            elif key == "tables":
                out["tables"] = merge(base.get("tables") or MDict(), value)
            elif key == "source":
                out["source"] = merge(base.get("source") or MDict(), value)
            elif key == "document" and base.get("document") and value != base.get("document"):
                problems.add(
                    "MAP-037",
                    f"{name} produces {value} but extends {parent}, which produces {base['document']}",
                    key_mark(raw, "document"),
                )
            else:
                out[key] = value
        out["extends"] = parent
        return out


def _names_broken_table(problem: Problem, broken: Mapping[str, list[Problem]]) -> bool:
    return any(problem.message.startswith(f"no code table named {name!r}") for name in broken)


def load_tables(table_texts: Mapping[str, str], problems: Problems) -> dict[str, CodeTable]:
    """Code-table files (``table:``, ``codes:``, ``default:``) by name; problems go to ``problems``.
    Shared by the inbound and the outbound map libraries."""
    tables: dict[str, CodeTable] = {}
    for origin, text in sorted(table_texts.items()):
        raw = load_yaml_file(text, origin, problems)
        if raw is None:
            continue
        name = str(raw.get("table", ""))
        if not name:
            problems.add("MAP-032", "a table file needs `table: <name>`", raw.mark)
            continue
        if name in tables:
            problems.add("MAP-033", f"table {name!r} is defined twice", key_mark(raw, "table"))
            continue
        table = code_table(name, raw, problems, raw.mark, name)
        if table is not None:
            tables[name] = table
    return tables


def load_yaml_file(text: str, origin: str, problems: Problems) -> Any:
    """One map or table file as marked YAML, or None after recording why not."""
    try:
        raw = load_marked(text, origin)
    except MarkedYamlError as exc:
        problems.add("MAP-040", f"not valid YAML: {exc.reason}", exc.mark)
        return None
    if not isinstance(raw, MDict):
        problems.add("MAP-041", "the file must be a YAML mapping", getattr(raw, "mark", None) or Mark(origin, 1, 1))
        return None
    return raw
