"""Source adapters: how a map's paths are parsed, checked and evaluated for X12, XML and CSV.

Each adapter turns path text into getters and selectors at load time, so a
misspelt segment, element position, XPath or column is reported with its
place before any document is read, and evaluation is a closure call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lxml import etree

from gateway.formats.csv import Row
from gateway.mapping.marked import Mark, MDict
from gateway.mapping.nodes import Env, EvalFailure, Getter, Selector
from gateway.mapping.plan import ID_PAIR_X12
from gateway.mapping.problems import Problems, did_you_mean
from gateway.mapping.x12scope import (
    ElementRef,
    Step,
    X12Scope,
    find_all,
    make_getter,
    parse_element,
    parse_step,
    resolve,
)
from gateway.x12.schema.compiled import SegmentSpec, SetDefinition
from gateway.x12.segment import Segment


class Adapter(Protocol):
    """What the compiler needs from a source format."""

    specials: frozenset[str]

    def getter(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Getter | None:
        """A compiled path that reads one value, or None after recording a problem."""

    def selector(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Selector | None:
        """A compiled path that yields the scopes ``each`` iterates."""

    def special(self, kind: str, spec: MDict, problems: Problems, key: str) -> Getter | None:
        """A format-specific extractor (``kind`` is one of ``specials``)."""


# --- X12 ------------------------------------------------------------------------------------

#: Where qualifier/id pairs start in the segments that carry item ids (first qualifier position).
PAIR_START = {"PO1": 6, "IT1": 6, "ACK": 7, "LIN": 2, "SLN": 9, "PO4": 0, "CTP": 0, "SN1": 0}


def _pairs_end(segspec: SegmentSpec, start: int) -> int:
    """The position after the last qualifier/id pair that starts at ``start`` (ACK27-29 are not pairs)."""
    elements = segspec.elements
    qual, ident = elements[start - 1].ref, elements[start].ref
    stop = start
    while stop < len(elements) and elements[stop - 1].ref == qual and elements[stop].ref == ident:
        stop += 2
    return stop


class X12Adapter:
    """X12 paths checked against the set definition and the version's segment specs."""

    specials = frozenset({"id_pair", "id_pairs", "item_ids"})

    def __init__(self, definition: SetDefinition, segments: dict[str, SegmentSpec]) -> None:
        self.definition = definition
        self.segments = segments

    def _check_element(self, ref: ElementRef, mark: Mark | None, problems: Problems, key: str) -> bool:
        spec = self.segments.get(ref.segment)
        if ref.segment not in self.definition.segment_ids or spec is None:
            hint = did_you_mean(ref.segment, self.definition.segment_ids)
            problems.add(
                "MAP-101",
                f"segment {ref.segment} is not used in {self.definition.id} {self.definition.version}{hint}",
                mark,
                key,
            )
            return False
        if not 1 <= ref.position <= len(spec.elements):
            problems.add(
                "MAP-102",
                f"{ref}: {ref.segment} has elements 01 to {len(spec.elements):02d}",
                mark,
                key,
            )
            return False
        element = spec.elements[ref.position - 1]
        if ref.component is not None and not 1 <= ref.component <= max(len(element.components), 0):
            what = f"has components 1 to {len(element.components)}" if element.components else "is not a composite"
            problems.add("MAP-103", f"{ref}: {element.ref} {what}", mark, key)
            return False
        return True

    def _steps(self, parts: Sequence[str], mark: Mark | None, problems: Problems, key: str) -> tuple[Step, ...] | None:
        steps = []
        for part in parts:
            step = parse_step(part)
            if step is None:
                problems.add("MAP-104", f"{part!r} is not a path step like REF or REF[REF01=DP]", mark, key)
                return None
            if step.segment not in self.definition.segment_ids:
                hint = did_you_mean(step.segment, self.definition.segment_ids)
                problems.add(
                    "MAP-101",
                    f"segment {step.segment} is not used in {self.definition.id} {self.definition.version}{hint}",
                    mark,
                    key,
                )
                return None
            if step.filter is not None and not self._check_element(step.filter.element, mark, problems, key):
                return None
            steps.append(step)
        return tuple(steps)

    def getter(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Getter | None:
        parts = [p.strip() for p in text.split("/")]
        ref = parse_element(parts[-1])
        if ref is None:
            problems.add(
                "MAP-105", f"{text!r}: a path ends with an element such as BEG03 or REF[REF01=DP]/REF02", mark, key
            )
            return None
        steps = self._steps(parts[:-1], mark, problems, key)
        if steps is None or not self._check_element(ref, mark, problems, key):
            return None
        return make_getter(steps, ref)

    def selector(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Selector | None:
        parts = [p.strip() for p in text.split("/")]
        steps = self._steps(parts, mark, problems, key)
        if steps is None:
            return None
        head, last = steps[:-1], steps[-1]

        def select(scope: X12Scope, env: Env) -> list[Any]:
            base = resolve(scope, head, env.sep) if head else scope
            if not isinstance(base, X12Scope):
                return []
            return find_all(base, last, env.sep)  # (a new list each time)

        return select

    def special(self, kind: str, spec: MDict, problems: Problems, key: str) -> Getter | None:  # noqa: C901 - checks, then one closure per extractor kind
        seg_id = str(spec[kind])
        mark = spec.key_marks.get(kind, spec.mark)
        unknown = set(spec) - {kind, "start", "qualifiers", "except", "table", "when", "description"}
        for name in sorted(unknown):
            problems.add("MAP-106", f"{kind} takes start, qualifiers, except, table; not {name!r}", mark, key)
        segspec = self.segments.get(seg_id)
        if seg_id not in self.definition.segment_ids or segspec is None:
            hint = did_you_mean(seg_id, self.definition.segment_ids)
            problems.add("MAP-101", f"segment {seg_id} is not used in {self.definition.id}{hint}", mark, key)
            return None
        start = int(spec.get("start", PAIR_START.get(seg_id, 0)))
        if start < 1 or start >= len(segspec.elements):
            problems.add("MAP-107", f"{kind}: give `start`, the position of the first qualifier in {seg_id}", mark, key)
            return None
        wanted = [str(q) for q in spec.get("qualifiers", [])]
        skip = {str(q) for q in spec.get("except", [])}
        if kind == "id_pair" and not wanted:
            problems.add("MAP-107", "id_pair needs `qualifiers`, in order of preference", mark, key)
            return None
        table = str(spec.get("table", "item_qualifiers"))
        step = Step(seg_id)
        stop = _pairs_end(segspec, start)
        where_ref = ElementRef(seg_id, start)

        def segment(scope: X12Scope, env: Env) -> Segment | None:
            own = scope.own.get(seg_id)  # the usual place: the item's own LIN/PO1/IT1
            if own is not None and (seg_id != "HL" or not scope.hierarchical):
                return own[0]
            found = resolve(scope, (step,), env.sep)
            return found.trigger if isinstance(found, X12Scope) else found

        def pairs_of(seg: Segment, env: Env) -> list[tuple[str, str]]:
            key = (id(seg), start)
            found_pairs: list[tuple[str, str]] | None = env.cache.get(key)
            if found_pairs is None:
                els = seg[0]
                end = min(stop, len(els) - 1)
                found_pairs = [(els[i], els[i + 1]) for i in range(start, end, 2) if els[i] and els[i + 1]]
                env.cache[key] = found_pairs
            return found_pairs

        def pairs(scope: X12Scope, env: Env) -> list[tuple[str, str]]:
            seg = segment(scope, env)
            if seg is None:
                return []
            env.where = (seg, where_ref)
            return pairs_of(seg, env)

        if kind == "id_pair":
            firsts_key = f"first ids {seg_id} {start}"  # this extractor's memo in env.cache, by id(segment)
            hl = seg_id == "HL"

            def firsts_of(seg: Segment, env: Env) -> dict[str, str]:
                """The first id of each qualifier, per segment and document: several fields read it."""
                memo = env.cache.get(firsts_key)
                if memo is None:
                    memo = env.cache[firsts_key] = {}
                firsts: dict[str, str] | None = memo.get(id(seg))
                if firsts is None:
                    firsts = memo[id(seg)] = {}
                    els = seg[0]  # the pairs as pairs_of reads them, without building their list
                    for i in range(start, min(stop, len(els) - 1), 2):
                        q, v = els[i], els[i + 1]
                        if q and v and q not in firsts:
                            firsts[q] = v
                return firsts

            def one(scope: X12Scope, env: Env) -> str | None:
                own = scope.own.get(seg_id)
                found = own[0] if own is not None and (not hl or not scope.hierarchical) else segment(scope, env)
                if found is None:
                    return None
                seg: Segment = found
                env.where = (seg, where_ref)
                firsts = firsts_of(seg, env)
                for want in wanted:  # qualifiers in order of preference; the first pair with it wins
                    value = firsts.get(want)
                    if value is not None:
                        return value
                return None

            if not hl:  # generated object functions read it in line (gateway.mapping.plan)
                setattr(one, ID_PAIR_X12, (seg_id, where_ref, firsts_key, firsts_of, tuple(wanted)))
            return one
        if kind == "id_pairs":

            def many(scope: X12Scope, env: Env) -> list[dict[str, str]] | None:
                out = [{"qualifier": q, "value": v} for q, v in pairs(scope, env) if q not in skip]
                return out or None

            return many

        def item_ids(scope: X12Scope, env: Env) -> dict[str, Any] | None:
            codes = env.ctx.tables.get(table)
            mapping = codes.codes if codes is not None else {}
            out: dict[str, Any] = {}
            other: list[dict[str, str]] = []
            for q, v in pairs(scope, env):
                if q in skip:
                    continue
                name = mapping.get(q)
                if name and name not in out:
                    out[name] = v
                else:
                    other.append({"qualifier": q, "value": v})
            if other:
                out["other"] = other
            return out or None

        return item_ids


# --- XML ------------------------------------------------------------------------------------


def _text_of(item: Any) -> str | None:
    if isinstance(item, etree._Element):
        text = "".join(item.itertext()).strip()
    elif isinstance(item, bool):
        text = "true" if item else "false"
    elif isinstance(item, float):
        text = str(int(item)) if item.is_integer() else repr(item)
    else:
        text = str(item).strip()
    return text or None


def _element_of(item: Any, scope: Any) -> Any:
    """The element a result came from (an attribute's or text's owner), for error locations."""
    if isinstance(item, etree._Element):
        return item
    owner = item.getparent() if hasattr(item, "getparent") else None
    return owner if owner is not None else scope


class XmlAdapter:
    """XPath 1.0 paths (lxml), relative to the current element, with the map's namespace prefixes."""

    specials: frozenset[str] = frozenset()

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.namespaces = namespaces

    def _compile(
        self, text: str, mark: Mark | None, problems: Problems, key: str, smart: bool = False
    ) -> etree.XPath | None:
        try:
            return etree.XPath(text, namespaces=self.namespaces, smart_strings=smart)
        except etree.XPathSyntaxError as exc:
            problems.add("MAP-201", f"{text!r} is not a valid XPath: {exc}", mark, key)
            return None

    def getter(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Getter | None:
        # smart strings: an attribute or text result knows its element, so an error names its line
        xp = self._compile(text, mark, problems, key, smart=True)
        if xp is None:
            return None

        def get(scope: Any, env: Env) -> str | None:
            try:
                result = xp(scope)
            except etree.XPathEvalError as exc:
                raise EvalFailure(f"XPath {text!r} failed: {exc}", scope, text) from exc
            if isinstance(result, list):
                first = result[0] if result else None
                env.where = _element_of(first, scope)
                return _text_of(first) if result else None
            env.where = scope
            return _text_of(result)

        return get

    def selector(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Selector | None:
        xp = self._compile(text, mark, problems, key)
        if xp is None:
            return None

        def select(scope: Any, env: Env) -> list[Any]:
            try:
                result = xp(scope)
            except etree.XPathEvalError as exc:  # e.g. an undeclared prefix: compiles, fails on use
                raise EvalFailure(f"XPath {text!r} failed: {exc}", scope, text) from exc
            return [r for r in result if isinstance(r, etree._Element)] if isinstance(result, list) else []

        return select

    def special(self, kind: str, spec: MDict, problems: Problems, key: str) -> Getter | None:
        return None


# --- CSV ------------------------------------------------------------------------------------


@dataclass(slots=True)
class CsvScope:
    """The rows of one document (or one row, inside ``each: rows``)."""

    rows: list[Row]


def _row_filter(text: str) -> tuple[str, frozenset[str]] | None:
    """``rows[Type=L|LN]`` → ("Type", {"L", "LN"}); ``rows`` → ("", ∅)."""
    if text == "rows":
        return "", frozenset()
    if text.startswith("rows[") and text.endswith("]") and "=" in text:
        column, _, codes = text[5:-1].partition("=")
        return column.strip(), frozenset(c.strip() for c in codes.split("|"))
    return None


class CsvAdapter:
    """Column names (checked when the dialect names its columns); ``rows[col=v]/column`` picks a row."""

    specials: frozenset[str] = frozenset()

    def __init__(self, columns: list[str] | None) -> None:
        self.columns = columns

    def _check_column(self, column: str, mark: Mark | None, problems: Problems, key: str) -> bool:
        if self.columns is not None and column not in self.columns:
            problems.add(
                "MAP-301",
                f"no column {column!r} in the dialect's columns{did_you_mean(column, self.columns)}",
                mark,
                key,
            )
            return False
        return True

    def getter(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Getter | None:
        head, sep, column = text.rpartition("/")
        wanted = _row_filter(head) if sep else ("", frozenset())
        if wanted is None:
            problems.add("MAP-302", f"{head!r}: a row filter is written rows[column=value]", mark, key)
            return None
        if not self._check_column(column, mark, problems, key) or (
            wanted[0] and not self._check_column(wanted[0], mark, problems, key)
        ):
            return None
        fcol, codes = wanted

        def get(scope: CsvScope, env: Env) -> str | None:
            for row in scope.rows:
                if not fcol or row.values.get(fcol) in codes:
                    env.where = (row, column)
                    value = row.values.get(column)
                    return value or None
            return None

        return get

    def selector(self, text: str, mark: Mark | None, problems: Problems, key: str) -> Selector | None:
        wanted = _row_filter(text)
        if wanted is None:
            problems.add("MAP-302", f"{text!r}: `each` takes rows or rows[column=value]", mark, key)
            return None
        fcol, codes = wanted
        if fcol and not self._check_column(fcol, mark, problems, key):
            return None

        def select(scope: CsvScope, env: Env) -> list[Any]:
            return [CsvScope([r]) for r in scope.rows if not fcol or r.values.get(fcol) in codes]

        return select

    def special(self, kind: str, spec: MDict, problems: Problems, key: str) -> Getter | None:
        return None
