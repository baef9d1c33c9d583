"""A transaction set as a tree of loop scopes, and X12 paths evaluated against it.

The tree comes from the set's compiled definition: each scope holds its own
segments by id and its child loops by trigger id, so a path such as
``N1[N101=ST]/N4/N403`` is two dictionary lookups, not a scan. The 856's HL
loop is flat in the standard; here HL scopes are re-parented by HL02 so
``each: HL[HL03=O]`` iterates the orders of a shipment and an order's
``each: HL[HL03=I]`` its items.

Path grammar (checked against the definition when a map loads)::

    path    := step ("/" step)*         the last step is an element reference
    step    := SEG filter?              a segment, or the loop it triggers
    filter  := "[" ELEM ("="|"!=") code ("|" code)* "]"
    ELEM    := SEG NN ("-" N)?          e.g. PO104, TD503, C04001-2 (component 2)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import Location
from gateway.mapping.plan import FILTERED_X12, PLAIN_X12
from gateway.mapping.problems import MappingError
from gateway.x12.schema.compiled import LoopNode, SetDefinition
from gateway.x12.segment import Segment


@dataclass(slots=True, eq=False)
class X12Scope:
    """A loop iteration (or the whole set): own segments by id, child loops by trigger id."""

    trigger: Segment | None = None
    own: dict[str, list[Segment]] = field(default_factory=dict)
    loops: dict[str, list[X12Scope]] = field(default_factory=dict)
    #: an HL iteration: its own HL is itself, never one of its children (``HL[HL03=P]`` in a tare)
    hierarchical: bool = False

    def add_own(self, seg: Segment) -> None:
        """Record a segment that belongs to this scope directly."""
        bucket = self.own.get(seg.id)
        if bucket is None:
            self.own[seg.id] = [seg]
        else:
            bucket.append(seg)

    def add_loop(self, scope: X12Scope) -> None:
        """Record a child loop iteration."""
        assert scope.trigger is not None
        self.loops.setdefault(scope.trigger.id, []).append(scope)


def build_scopes(segments: list[Segment], definition: SetDefinition | None) -> X12Scope:
    """The scope tree of one set (``segments`` from ST to SE)."""
    root = X12Scope()
    if definition is None:
        for seg in segments:
            root.add_own(seg)
        return root
    stack: list[tuple[X12Scope, LoopNode]] = [(root, definition.root)]
    scope, node = root, definition.root
    table = node.scoping  # node's, kept in step with it: one lookup per segment places it
    for seg in segments:
        sid = seg[0][0]
        while True:
            entry = table.get(sid)
            if entry is not None:
                again, child, kind = entry
                if again and scope is not root:
                    stack.pop()  # the trigger again: a new iteration, started by the parent
                    scope, node = stack[-1]
                    table = node.scoping
                    continue
                if kind == 0:
                    bucket = scope.own.get(sid)
                    if bucket is None:
                        scope.own[sid] = [seg]
                    else:
                        bucket.append(seg)
                    break
                assert isinstance(child, LoopNode)
                inner = X12Scope(seg, {sid: [seg]}, {})
                loops = scope.loops.get(sid)
                if loops is None:
                    scope.loops[sid] = [inner]
                else:
                    loops.append(inner)
                stack.append((inner, child))
                if kind == 2:  # a loop whose first child is itself a loop: its trigger opens both (rare)
                    first = child.children[0]
                    assert isinstance(first, LoopNode)
                    stack.append((inner, first))
                scope, node = stack[-1]
                table = node.scoping
                break
            if len(stack) == 1:
                root.add_own(seg)  # not in the definition: kept where a path can still find it
                break
            stack.pop()
            scope, node = stack[-1]
            table = node.scoping
    _nest_hierarchy(root)
    return root


def _nest_hierarchy(scope: X12Scope) -> None:
    """Re-parent HL loop iterations by HL02 (recursively for every scope holding HL loops).

    Raises :class:`HierarchyTooDeepError` on a chain deeper than :data:`MAX_HL_DEPTH`."""
    for loops in scope.loops.values():
        for child in loops:
            if child.loops:  # (most iterations hold segments only)
                _nest_hierarchy(child)
    hls = scope.loops.get("HL")
    if not hls:
        return
    by_id: dict[str, X12Scope] = {}
    depths: dict[str, int] = {}
    top: list[X12Scope] = []
    for hl in hls:
        trigger = hl.trigger
        assert trigger is not None
        hl.hierarchical = True
        els = trigger[0]
        n = len(els)
        hl_id, parent_id = (els[1] if n > 1 else ""), (els[2] if n > 2 else "")
        by_id[hl_id] = hl
        parent = by_id.get(parent_id) if parent_id else None
        if parent is None or parent is hl:
            top.append(hl)
            depths[hl_id] = 1
            continue
        depth = depths[hl_id] = depths.get(parent_id, 1) + 1
        if depth > MAX_HL_DEPTH:
            raise HierarchyTooDeepError(trigger, depth)
        siblings = parent.loops.get("HL")  # parent.add_loop(hl), in line: once per HL of a big 856
        if siblings is None:
            parent.loops["HL"] = [hl]
        else:
            siblings.append(hl)
    scope.loops["HL"] = top


MAX_HL_DEPTH = 50
"""How deep HL levels may nest. A real 856 uses 3 to 6 (shipment, order, tare, pack, item); a deeper chain
is broken or hostile, and nesting it would cost memory and recursion in every map that walks it."""


class HierarchyTooDeepError(MappingError):
    """An HL chain nests deeper than :data:`MAX_HL_DEPTH`; located on the first HL past the limit."""

    def __init__(self, hl: Segment, depth: int) -> None:
        super().__init__(
            f"HL {hl.element(1)!r} nests {depth} levels deep (HL02 {hl.element(2)!r}): "
            f"more than the {MAX_HL_DEPTH} levels a hierarchy may have",
            "MAP-410",
            Location(segment_id="HL", interchange_index=hl.index, byte_offset=hl.offset, element=2),
        )


# --- paths ----------------------------------------------------------------------------------

_ELEM = re.compile(r"^([A-Z][A-Z0-9]{1,2})(\d{2})(?:-(\d{1,2}))?$")
_STEP = re.compile(r"^([A-Z][A-Z0-9]{1,2})(?:\[([A-Z][A-Z0-9]{1,2}\d{2}(?:-\d{1,2})?)(!?=)([^\]]*)\])?$")


@dataclass(frozen=True, slots=True)
class ElementRef:
    """An element (and optionally component) of a segment, 1-based."""

    segment: str
    position: int
    component: int | None = None

    def __str__(self) -> str:
        text = f"{self.segment}{self.position:02d}"
        return text + (f"-{self.component}" if self.component else "")


@dataclass(frozen=True, slots=True)
class Filter:
    """``[REF01=DP]``: keep segments whose element is (or, with ``!=``, is not) one of ``codes``."""

    element: ElementRef
    codes: frozenset[str]
    negate: bool = False

    def __call__(self, seg: Segment, component_sep: str) -> bool:
        ref = self.element
        if ref.component is None:
            els = seg[0]
            pos = ref.position
            value = els[pos] if pos < len(els) else ""
        else:
            value = element_value(seg, ref, component_sep)
        return (value in self.codes) != self.negate


@dataclass(frozen=True, slots=True)
class Step:
    """One path step: a segment id and an optional filter."""

    segment: str
    filter: Filter | None = None


def parse_element(text: str) -> ElementRef | None:
    """``PO104`` → ElementRef; None when not an element reference."""
    m = _ELEM.match(text)
    if not m:
        return None
    return ElementRef(m[1], int(m[2]), int(m[3]) if m[3] else None)


def parse_step(text: str) -> Step | None:
    """``REF[REF01=DP]`` → Step; None when malformed."""
    m = _STEP.match(text)
    if not m:
        return None
    if m[2] is None:
        return Step(m[1])
    ref = parse_element(m[2])
    assert ref is not None
    codes = frozenset(c.strip() for c in m[4].split("|"))
    return Step(m[1], Filter(ref, codes, m[3] == "!="))


def element_value(seg: Segment, ref: ElementRef, component_sep: str) -> str:
    """The element's (or component's) text; ``""`` when absent."""
    value = seg.element(ref.position)
    if ref.component is not None:
        parts = value.split(component_sep)
        return parts[ref.component - 1] if ref.component <= len(parts) else ""
    return value


Found = Segment | X12Scope


def find(scope: X12Scope, step: Step, sep: str) -> Found | None:
    """The first own segment or child loop matching ``step`` in ``scope``."""
    flt = step.filter
    for seg in scope.own.get(step.segment, ()):
        if scope.hierarchical and seg is scope.trigger:
            continue
        if flt is None or flt(seg, sep):
            return seg
    loops = scope.loops.get(step.segment)
    if not loops:
        return None
    if flt is None:
        return loops[0]
    if flt.element.component is None:  # HL[HL03=S]: the filter in line, as find_all tests it
        pos, codes, negate = flt.element.position, flt.codes, flt.negate
        for loop in loops:
            els = loop.trigger[0]  # type: ignore[index]  # a loop iteration always has its trigger
            if ((els[pos] if pos < len(els) else "") in codes) != negate:
                return loop
        return None
    for loop in loops:
        assert loop.trigger is not None
        if flt(loop.trigger, sep):
            return loop
    return None


def find_all(scope: X12Scope, step: Step, sep: str) -> list[X12Scope]:
    """Every own segment (as a one-segment scope) or child loop matching ``step``, in order."""
    out: list[X12Scope] = []
    for seg in scope.own.get(step.segment, ()):
        if scope.hierarchical and seg is scope.trigger:
            continue
        if step.filter is None or step.filter(seg, sep):
            single = X12Scope(trigger=seg, own={seg.id: [seg]})
            out.append(single)
    owned = len(out)  # (loops are in file order already: only own segments among them need a sort)
    loops = scope.loops.get(step.segment)
    flt = step.filter
    if not loops:
        pass
    elif flt is None:
        out += loops
    elif flt.element.component is None:  # HL[HL03=I]: the filter in line, once per iteration of a big loop
        pos, codes, negate = flt.element.position, flt.codes, flt.negate
        for loop in loops:
            els = loop.trigger[0]  # type: ignore[index]  # a loop iteration always has its trigger
            if ((els[pos] if pos < len(els) else "") in codes) != negate:
                out.append(loop)
    else:
        out += [loop for loop in loops if flt(loop.trigger, sep)]  # type: ignore[arg-type]
    if owned and len(out) > owned:
        out.sort(key=lambda s: s.trigger.index if s.trigger is not None else 0)
    return out


def resolve(scope: X12Scope, steps: tuple[Step, ...], sep: str) -> Found | None:
    """Walk ``steps`` from ``scope``: each step narrows to a child loop, the last may be a segment."""
    current: Found = scope
    for step in steps:
        if not isinstance(current, X12Scope):
            return None
        found = find(current, step, sep)
        if found is None:
            return None
        current = found
    return current


def segment_for(found: Found, ref: ElementRef, sep: str) -> Segment | None:
    """The segment ``ref`` reads from: ``found`` itself, or its first own segment with that id."""
    if isinstance(found, X12Scope):
        segs = found.own.get(ref.segment)
        return segs[0] if segs else None
    return found if found.id == ref.segment else None


GetterFn = Callable[[X12Scope, Any], "str | None"]


def make_getter(steps: tuple[Step, ...], ref: ElementRef) -> GetterFn:  # noqa: C901 - specialised closures on purpose
    """A function ``(scope, env) -> value or None`` for a parsed path; sets ``env.where`` to
    ``(segment, ref)`` for error locations. The shapes maps use most are specialised: they run
    once per field per loop iteration, millions of times on a large file."""
    pos, comp = ref.position, ref.component
    sid = ref.segment
    where = ref

    def read(seg: Segment, env: Any) -> str | None:
        env.where = (seg, where)
        els = seg[0]
        value = els[pos] if pos < len(els) else ""
        if comp is not None:
            parts = value.split(env.sep)
            value = parts[comp - 1] if comp <= len(parts) else ""
        return value or None

    if not steps:

        def simple(scope: X12Scope, env: Any) -> str | None:
            segs = scope.own.get(sid)
            if segs is not None:
                return read(segs[0], env)
            loops = scope.loops.get(sid)
            if not loops:
                return None
            seg = loops[0].trigger
            assert seg is not None
            return read(seg, env)

        if comp is None:  # generated object functions read such an element in line (gateway.mapping.plan)
            setattr(simple, PLAIN_X12, (sid, pos, where))
        return simple

    if len(steps) == 1 and steps[0].segment == sid and steps[0].filter is not None:
        flt = steps[0].filter
        fpos = flt.element.position
        codes, negate = flt.codes, flt.negate
        plain = flt.element.component is None

        def filtered(scope: X12Scope, env: Any) -> str | None:  # REF[REF01=DP]/REF02
            segs = scope.own.get(sid)
            if segs is not None:
                for seg in segs:
                    if scope.hierarchical and seg is scope.trigger:
                        continue
                    if plain:
                        els = seg[0]
                        hit = ((els[fpos] if fpos < len(els) else "") in codes) != negate
                    else:
                        hit = flt(seg, env.sep)
                    if hit:
                        return read(seg, env)
            for loop in scope.loops.get(sid, ()):
                assert loop.trigger is not None
                if flt(loop.trigger, env.sep):
                    return read(loop.trigger, env)
            return None

        if plain and comp is None and sid != "HL":  # generated object functions read it in line (gateway.mapping.plan)
            setattr(filtered, FILTERED_X12, (sid, pos, where, fpos, codes, negate))
        return filtered

    def walk(scope: X12Scope, env: Any) -> str | None:
        found = resolve(scope, steps, env.sep)
        if found is None:
            return None
        seg = segment_for(found, ref, env.sep)
        if seg is None:
            return None
        return read(seg, env)

    return walk
