"""Outbound map files compiled into node trees, every problem reported at once with ``file:line:col``.

Checked when a map loads: top-level keys; the target set and version exist
in the catalog; every field path against the canonical model (did-you-mean
for misspelt names); every segment id against the set definition, and its
*place*: segments come in the set's order, a group whose first segment
triggers a loop (N1, PO1, N9, CTT) fills that loop, mandatory segments and
loops are written; element counts; function names, parameters and code
tables; typed values (dates, decimals) have a formatting function.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gateway.canonical import SCHEMAS, ItemIds
from gateway.mapping.compiler import code_table, compile_calls
from gateway.mapping.functions import CodeTable, FunctionRegistry
from gateway.mapping.marked import Mark, MDict, key_mark, mark_of
from gateway.mapping.problems import Problems, did_you_mean
from gateway.outbound.nodes import Cond, Elem, Group, OutboundMap, Pairs, SegOut
from gateway.outbound.paths import FieldPath, compile_path
from gateway.x12.schema.catalog import Catalog
from gateway.x12.schema.compiled import LoopNode, SegmentSpec, SetDefinition

TOP_KEYS = ("map", "extends", "document", "description", "target", "segments", "tables")
GROUP_KEYS = frozenset({"each", "when", "segments", "description"})
VALUE_KEYS = frozenset({"from", "const", "first_of", "fn", "default", "when", "description"})
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})
TESTS = ("equals", "not_equals", "in", "not_in", "exists")


class _Place:
    """Where the compiler is in the set definition: a loop, the last child position used, what was used."""

    def __init__(self, loop: LoopNode, name: str) -> None:
        self.loop = loop
        self.name = name
        self.index = 0
        self.used: set[int] = {0}  # the trigger (or ST) is always there


class ValueCompiler:
    """Field paths, ``when`` conditions and element values checked against the canonical model.

    Shared by the X12 compiler below and the export layouts (:mod:`gateway.outbound.layout`), so that
    every outbound map reads the document with one value language. ``medium`` names what a value is
    written as, in the message that asks for a formatting function.
    """

    medium = "X12 text"

    def __init__(
        self, model: type[BaseModel], registry: FunctionRegistry, tables: set[str], problems: Problems
    ) -> None:
        self.model = model
        self.registry = registry
        self.tables = tables
        self.problems = problems

    # paths and conditions

    def path(self, text: str, item: Any, mark: Mark | None, key: str) -> FieldPath | None:
        """A field path checked against the current item's type (see :mod:`gateway.outbound.paths`)."""
        return compile_path(text, self.model, item, self.problems, mark, key)

    def condition(self, spec: Any, item: Any, mark: Mark | None, key: str) -> Cond | None:
        """``when: PATH`` (present) or ``{path, equals|not_equals|in|not_in|exists}``."""
        if isinstance(spec, str):
            spec = MDict({"path": spec, "exists": True})
        tests = set(spec) - {"path"} if isinstance(spec, dict) else set()
        if not isinstance(spec, dict) or "path" not in spec or len(tests) != 1:
            self.problems.add("MAP-618", f"`when` is a path or {{path, one of {'|'.join(TESTS)}}}", mark, key)
            return None
        test = tests.pop()
        if test not in TESTS:
            self.problems.add(
                "MAP-618", f"`when` has no test {test!r}{did_you_mean(test, TESTS)}", key_mark(spec, test), key
            )
            return None
        path = self.path(str(spec["path"]), item, mark_of(spec["path"], mark), key)
        if path is None:
            return None
        arg = spec[test]
        if test == "exists":
            return Cond(path, test, exists=bool(arg))
        return Cond(path, test, codes=frozenset(str(a) for a in (arg if isinstance(arg, list) else [arg])))

    # element values

    def elem(self, spec: Any, item: Any, mark: Mark | None, key: str) -> Elem | None:
        """A path, ``{const: X}``, or ``{from|first_of, fn, <params>, default, when}``."""
        mark = mark_of(spec, mark)
        if isinstance(spec, str):
            spec = MDict({"from": spec})
            spec.mark = mark
        if not isinstance(spec, dict):
            self.problems.add(
                "MAP-609", f"an element is a field path, {{const: X}} or a value spec, not {spec!r}", mark, key
            )
            return None
        sources = [k for k in ("from", "const", "first_of") if k in spec]
        if len(sources) != 1:
            self.problems.add("MAP-609", "a value spec takes exactly one of from, const, first_of", mark, key)
            return None
        node = Elem()
        if "from" in spec:
            node.path = self.path(str(spec["from"]), item, mark_of(spec["from"], mark), key)
            if node.path is None:
                return None
        elif "const" in spec:
            if not isinstance(spec["const"], str):
                self.problems.add("MAP-609", "`const` is text (quote codes like '00')", key_mark(spec, "const"), key)
                return None
            node.const = str(spec["const"])
        else:
            alts = spec["first_of"] if isinstance(spec["first_of"], list) else [spec["first_of"]]
            node.alternatives = [a for a in (self.elem(s, item, mark, key) for s in alts) if a is not None]
            if len(node.alternatives) != len(alts):
                return None
        if "when" in spec:
            node.when = self.condition(spec["when"], item, key_mark(spec, "when"), key)
        if not self.calls(node, spec, key):
            return None
        kind = node.path.kind if node.path is not None else "str"
        if not node.calls and kind not in ("str", "int"):
            fix = {"date": "format_date", "decimal": "format_decimal", "list": "count"}.get(kind, "a function")
            text = node.path.text if node.path is not None else ""
            self.problems.add(
                "MAP-612", f"{text!r} is a {kind}: give `fn: {fix}` to write it as {self.medium}", mark, key
            )
            return None
        return node

    def calls(self, node: Elem, spec: dict[str, Any], key: str) -> bool:
        """``fn`` (a name, or a list of names and ``{name: {params}}``), inline params, ``default``."""
        params = {k: v for k, v in spec.items() if k not in VALUE_KEYS}
        calls, ok = compile_calls(spec, params, self.registry, set(self.tables), self.problems, key)
        node.calls.extend(calls)
        return ok


class OutboundCompiler(ValueCompiler):
    """Compiles one outbound map's ``segments`` against the canonical model and the set definition."""

    def __init__(
        self,
        model: type[BaseModel],
        definition: SetDefinition,
        segments: Mapping[str, SegmentSpec],
        registry: FunctionRegistry,
        tables: set[str],
        problems: Problems,
    ) -> None:
        super().__init__(model, registry, tables, problems)
        self.definition = definition
        self.segments = segments
        self.what = f"{definition.id} {definition.version}"

    # segments and groups

    def segment(self, seg_id: str, spec: Any, item: Any, place: _Place, mark: Mark | None, key: str) -> SegOut | None:
        """``SEG: [elements]`` or ``SEG: {when, elements}``, placed in the set definition."""
        placed = self.place(seg_id, place, mark, key)
        if seg_id not in self.segments:
            return None
        when = None
        if isinstance(spec, dict):
            for bad in sorted(set(spec) - {"when", "elements", "description"}):
                self.problems.add(
                    "MAP-605", f"a segment takes when and elements, not {bad!r}", key_mark(spec, bad), key
                )
            if "when" in spec:
                when = self.condition(spec["when"], item, key_mark(spec, "when"), key)
            mark, spec = key_mark(spec, "elements"), spec.get("elements")
        if not isinstance(spec, list):
            self.problems.add("MAP-605", f"{seg_id} needs a list of elements", mark, key)
            return None
        defined = self.segments[seg_id].elements
        if len(spec) > len(defined):
            self.problems.add("MAP-608", f"{seg_id} has {len(defined)} elements; {len(spec)} given", mark, key)
            return None
        out = SegOut(seg_id, [], when=when)
        ok = True
        for pos, element in enumerate(spec, 1):
            where = f"{key}.{seg_id}{pos:02d}"
            if isinstance(element, dict) and "item_ids" in element:
                out.pairs = self.pairs(element, item, seg_id, pos == len(spec), len(defined) - pos + 1, where)
                ok = ok and out.pairs is not None
                continue
            if element is None or element == "":
                out.elements.append(None)
                continue
            node = self.elem(element, item, mark_of(element, mark), where)
            ok = ok and node is not None
            out.elements.append(node)
        return out if ok and placed else None

    def pairs(self, spec: dict[str, Any], item: Any, seg_id: str, last: bool, free: int, key: str) -> Pairs | None:
        """``{item_ids: path, qualifiers: {ItemIds field: code}, other: true}``, the segment's last entry."""
        mark = mark_of(spec)
        for bad in sorted(set(spec) - {"item_ids", "qualifiers", "other", "description"}):
            self.problems.add("MAP-616", f"item_ids takes qualifiers and other, not {bad!r}", key_mark(spec, bad), key)
        if not last:
            self.problems.add("MAP-616", "item_ids fills the rest of the segment: make it the last element", mark, key)
            return None
        path = self.path(str(spec["item_ids"]), item, key_mark(spec, "item_ids"), key)
        if path is None:
            return None
        if path.annotation is not ItemIds:
            self.problems.add("MAP-616", f"item_ids reads an ItemIds object; {path.text} is not one", mark, key)
            return None
        qualifiers = spec.get("qualifiers") or MDict()
        if not isinstance(qualifiers, dict):
            self.problems.add("MAP-616", "`qualifiers` maps ItemIds fields to X12 qualifiers", mark, key)
            return None
        names = [n for n in ItemIds.model_fields if n != "other"]
        bad_names = [n for n in qualifiers if n not in names]
        for name in bad_names:
            hint = did_you_mean(str(name), names)
            self.problems.add("MAP-610", f"ItemIds has no field {name!r}{hint}", key_mark(qualifiers, name), key)
        if bad_names:
            return None
        return Pairs(path, {str(k): str(v) for k, v in qualifiers.items()}, bool(spec.get("other", True)), free // 2)

    def place(self, seg_id: str, place: _Place, mark: Mark | None, key: str) -> bool:
        """Check that ``seg_id`` may come next at ``place`` and move the place on."""
        if seg_id in ENVELOPE:
            self.problems.add("MAP-606", f"{seg_id} is written by the envelope, not by the map", mark, key)
            return False
        if not _SEGMENT_ID.match(seg_id) or seg_id not in self.definition.segment_ids or seg_id not in self.segments:
            hint = did_you_mean(seg_id, self.definition.segment_ids - ENVELOPE)
            self.problems.add("MAP-606", f"segment {seg_id} is not used in {self.what}{hint}", mark, key)
            return False
        positions = place.loop.by_id.get(seg_id, ())
        ahead = [p for p in positions if p >= place.index]
        if not ahead:
            if positions:
                after = _child_id(place.loop.children[place.index])
                msg = f"{seg_id} must come before {after} in {place.name}"
            else:
                msg = f"{seg_id} is not part of {place.name}"
            self.problems.add("MAP-607", msg, mark, key)
            return False
        place.index = ahead[0]
        place.used.add(ahead[0])
        return True

    def group(self, spec: MDict, item: Any, place: _Place, key: str) -> Group | None:
        """``{each?, when?, segments}``; a group whose first segment triggers a loop fills that loop."""
        for bad in sorted(set(spec) - GROUP_KEYS):
            self.problems.add(
                "MAP-605", f"a group takes each, when and segments, not {bad!r}", key_mark(spec, bad), key
            )
        node = Group([])
        inner = item
        if "each" in spec:
            node.each = self.path(str(spec["each"]), item, key_mark(spec, "each"), key)
            if node.each is None:
                return None
            picked = node.each.picks
            if node.each.kind != "list" and not picked:
                self.problems.add("MAP-617", f"each: {node.each.text} is not a list", key_mark(spec, "each"), key)
                return None
            inner = node.each.annotation if picked else typing.get_args(node.each.annotation)[0]
            key = f"{key}.each({node.each.text})"
        if "when" in spec:
            node.when = self.condition(spec["when"], item, key_mark(spec, "when"), key)
        entries = spec.get("segments")
        if not isinstance(entries, list) or not entries:
            self.problems.add("MAP-604", "a group needs `segments:`, a non-empty list", spec.mark, key)
            return None
        loop = _loop_at(place, _first_segment(entries))
        if loop is not None:
            position = place.loop.children.index(loop)
            place.index = position
            place.used.add(position)
            inside = _Place(loop, f"loop {loop.id} of the {self.what}")
            node.body = self.body(entries, inner, inside, key)
            self.mandatory(inside, spec.mark, key)
            return node
        node.body = self.body(entries, inner, place, key)
        if node.each is not None and len(_segment_ids(node.body)) > 1:
            self.problems.add(
                "MAP-619",
                f"each: {node.each.text} repeats {', '.join(sorted(_segment_ids(node.body)))} outside a loop, "
                "which would go back and forth: give each segment its own `each`",
                key_mark(spec, "each"),
                key,
            )
        return node

    def body(self, entries: list[Any], item: Any, place: _Place, key: str) -> list[SegOut | Group]:
        """A list of segment and group entries, placed in order."""
        out: list[SegOut | Group] = []
        for i, entry in enumerate(entries):
            where = f"{key}[{i}]"
            if isinstance(entry, MDict) and "segments" in entry:
                grp = self.group(entry, item, place, where)
                if grp is not None:
                    out.append(grp)
                continue
            if not isinstance(entry, MDict) or len(entry) != 1:
                what = "an entry is {SEG: [elements]} or a group {each?, when?, segments}"
                self.problems.add("MAP-605", what, mark_of(entry), where)
                continue
            seg_id = str(next(iter(entry)))
            seg = self.segment(seg_id, entry[seg_id], item, place, key_mark(entry, seg_id), where)
            if seg is not None:
                out.append(seg)
        return out

    def mandatory(self, place: _Place, mark: Mark | None, key: str) -> None:
        """Every mandatory segment or loop of ``place`` is written by the map."""
        for i in place.loop.mandatory:
            child = place.loop.children[i]
            name = _child_id(child)
            if i not in place.used and name not in ENVELOPE:
                self.problems.add("MAP-620", f"{place.name} requires {name}; the map never writes it", mark, key)


def _child_id(child: Any) -> str:
    return f"loop {child.id}" if isinstance(child, LoopNode) else str(child.id)


def _first_segment(entries: list[Any]) -> str | None:
    entry = entries[0] if entries else None
    if isinstance(entry, MDict) and "segments" in entry:
        inner = entry.get("segments")
        return _first_segment(inner) if isinstance(inner, list) else None
    if isinstance(entry, MDict) and len(entry) == 1:
        return str(next(iter(entry)))
    return None


def _loop_at(place: _Place, seg_id: str | None) -> LoopNode | None:
    """The loop ``seg_id`` opens at or after the current place (None: a plain segment, or nothing)."""
    for p in place.loop.by_id.get(seg_id or "", ()):
        if p >= place.index:
            child = place.loop.children[p]
            return child if isinstance(child, LoopNode) and p > 0 else None
    return None


def _segment_ids(body: list[SegOut | Group]) -> set[str]:
    out: set[str] = set()
    for node in body:
        out |= {node.id} if isinstance(node, SegOut) else _segment_ids(node.body)
    return out


def check_header(raw: MDict, what: str, problems: Problems) -> tuple[str, str, type[Any] | None]:
    """The ``map:`` name, the ``document:`` type and its canonical model, shared by outbound maps and
    export layouts so their codes agree (MAP-602 for both: a missing name, an unknown document type).
    A problem goes to ``problems``; the name is then empty, the model None."""
    name = str(raw.get("map") or "")
    if not name:
        problems.add("MAP-602", f"{what} needs a `map:` name", raw.mark)
    document = str(raw.get("document") or "")
    model = SCHEMAS.get(document)
    if model is None:
        hint = did_you_mean(document, SCHEMAS)
        problems.add(
            "MAP-602", f"`document` must be one of {', '.join(SCHEMAS)}{hint}", key_mark(raw, "document"), "document"
        )
    return name, document, model


def local_tables(raw: MDict, problems: Problems) -> dict[str, CodeTable]:
    """A map's or layout's own ``tables:``, compiled (a bad one's problems to ``problems``, itself left out)."""
    local: dict[str, CodeTable] = {}
    for tname, body in (raw.get("tables") or {}).items():
        table = code_table(str(tname), body, problems, key_mark(raw["tables"], tname), f"tables.{tname}")
        if table is not None:
            local[str(tname)] = table
    return local


def compile_outbound(
    raw: MDict,
    origin: str,
    catalog: Catalog,
    registry: FunctionRegistry,
    tables: Mapping[str, CodeTable],
    problems: Problems,
) -> OutboundMap | None:
    """Compile one outbound map; every problem goes to ``problems`` (None when there were any)."""
    before = len(problems.items)
    for key in raw:
        if key not in TOP_KEYS:
            problems.add("MAP-601", f"unknown key {key!r}{did_you_mean(key, TOP_KEYS)}", key_mark(raw, key), key)
    name, document, model = check_header(raw, "an outbound map", problems)
    target = raw.get("target")
    definition = _target(target, key_mark(raw, "target"), catalog, problems)
    local = local_tables(raw, problems)
    entries = raw.get("segments")
    if not isinstance(entries, list) or not entries:
        problems.add("MAP-604", "an outbound map needs `segments:`, a list", key_mark(raw, "segments"), "segments")
        return None
    if model is None or definition is None or not name:
        return None
    segs = {sid: spec for sid in definition.segment_ids if (spec := catalog.segment(definition.version, sid))}
    seen = {**tables, **local}
    compiler = OutboundCompiler(model, definition, segs, registry, set(seen), problems)
    place = _Place(definition.root, f"the {definition.id} {definition.version}")
    body = compiler.body(entries, model, place, "segments")
    compiler.mandatory(place, key_mark(raw, "segments"), "segments")
    if len(problems.items) > before:
        return None
    return OutboundMap(name, document, model, definition.id, definition.version, catalog, Group(body), origin, seen)


def _target(spec: Any, mark: Mark | None, catalog: Catalog, problems: Problems) -> SetDefinition | None:
    if not isinstance(spec, dict) or str(spec.get("format", "")) != "x12":
        problems.add(
            "MAP-603", 'an outbound map needs `target: {format: x12, set: "850", version: "004010"}`', mark, "target"
        )
        return None
    for bad in sorted(set(spec) - {"format", "set", "version"}):
        problems.add("MAP-603", f"target takes format, set and version, not {bad!r}", key_mark(spec, bad), "target")
    set_id, version = str(spec.get("set", "")), str(spec.get("version", ""))
    definition = catalog.definition(version, set_id)
    if definition is None:
        known = ", ".join(f"{v}/{s}" for v in catalog.versions for s in catalog.set_ids(v))
        problems.add(
            "MAP-603", f"no definition for set {set_id!r} version {version!r} (known: {known})", mark, "target"
        )
    return definition
