"""A compiled object node as one generated function: the map's per-document hot path.

Why: an 856 item has a dozen fields, each a getter call, often a function call, in a loop over the
object's fields; evaluating the map was about a quarter of ``gateway translate``'s CPU, most of it
the interpreter's dispatch between those small calls (the loop, ``Value.evaluate``'s frame, the
getter's and the element read's frames). :func:`object_function` writes one Python function per
:class:`~gateway.mapping.nodes.Obj` with its fields in line: a plain X12 element read
(``LIN01``) becomes a dictionary lookup and an index, a value's functions are called directly.
Each segment id's own list is looked up once, at the function's top, and an ``id_pair``'s first
ids once per function, however many fields read them.

The semantics are :class:`~gateway.mapping.nodes.Obj`'s, exactly: the same values, absent fields
dropped the same way, ``env.where`` set by every read as the getter sets it, an
:class:`~gateway.mapping.nodes.EvalFailure` carrying the same message, place and key trail. Any
node the generator has no shape for is called as before. ``tests/mapping/test_plan.py`` checks the
generated function against the node-by-node evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.mapping.functions import FunctionFailed

if TYPE_CHECKING:
    from gateway.mapping.nodes import Env, Node, Obj, Value

ObjectFunction = Callable[[Any, "Env"], "dict[str, Any] | None"]

#: A getter made by :func:`gateway.mapping.x12scope.make_getter` for a plain ``SEG01`` path carries
#: this attribute: ``(segment id, element position, element reference)``.
PLAIN_X12 = "plain_x12"
#: ... and one for a ``REF[REF01=DP]/REF02`` path (the filter on a plain element, the segment not HL):
#: ``(segment id, element position, element reference, filter position, codes, negate)``.
FILTERED_X12 = "filtered_x12"
#: ... and :meth:`gateway.mapping.adapters.X12Adapter.special`'s ``id_pair`` on a segment other than HL:
#: ``(segment id, element reference, memo key in env.cache, firsts function, qualifiers)``.
ID_PAIR_X12 = "id_pair_x12"
#: A ``when`` condition made by :meth:`gateway.mapping.compiler.MapCompiler.condition` carries this
#: attribute: ``(getter, test, codes, exists)``, test one of equals, not_equals, in, not_in, exists.
CONDITION = "condition"


class _Hoisted:
    """What a generated function reads once at its top: each segment id's own list (``scope.own``
    does not change while an object is evaluated) and, per ``id_pair`` memo, the first ids of that
    segment (the same first segment every time)."""

    def __init__(self) -> None:
        self.segments: dict[str, str] = {}  # segment id -> local name of its own list
        self.memos: dict[str, str] = {}  # memo key -> local name of the first ids, None until read

    def segs(self, sid: str) -> str:
        return self.segments.setdefault(sid, f"s{len(self.segments)}")

    def memo(self, key: str) -> str:
        return self.memos.setdefault(key, f"m{len(self.memos)}")

    def header(self) -> list[str]:
        lines = ["    own = scope.own"] if self.segments else []
        lines += [f"    {name} = own.get({sid!r})" for sid, name in self.segments.items()]
        return lines + [f"    {name} = None" for name in self.memos.values()]


INLINE_DEPTH = 3
"""How deep nested objects are written into their parent's function (deeper ones are called): Python
allows 20 statically nested blocks, and each level adds a ``try`` and perhaps a loop."""


def object_function(obj: Obj, direct: Callable[[Node], Callable[[Any, Env], Any]]) -> ObjectFunction:
    """``obj``'s fields as one function ``(scope, env) -> dict or None`` (``direct``: the cheapest
    callable for a field this generator does not write in line)."""
    from gateway.mapping.nodes import EvalFailure

    names: dict[str, Any] = {"EvalFailure": EvalFailure, "FunctionFailed": FunctionFailed}
    hoisted = _Hoisted()

    def bind(value: Any) -> str:
        name = f"k{len(names)}"
        names[name] = value
        return name

    lines = [f"    {line}" for line in _object_lines(obj, bind, hoisted, direct, 0)]
    source = "def evaluate(scope, env):\n" + "\n".join([*hoisted.header(), *lines, "    return value"]) + "\n"
    exec(compile(source, f"<map object {id(obj):x}>", "exec"), names)  # our own generated text, from the compiled nodes
    fn: ObjectFunction = names["evaluate"]
    fn.source = source  # type: ignore[attr-defined]  # for tests and for reading a profile
    return fn


def _object_lines(
    obj: Obj, bind: Callable[[Any], str], hoisted: _Hoisted, direct: Callable[[Node], Any], depth: int
) -> list[str]:
    """Lines that leave ``obj``'s value in ``value``, as :meth:`Obj.evaluate_fields` computes it: a nested
    object (within :data:`INLINE_DEPTH`) written in place, its dict and flag named by its depth."""
    from gateway.mapping.nodes import Obj, Special, Value

    out, found = f"out{depth}", f"found{depth}"
    lines = [f"{out} = {{}}", f"{found} = False"]
    for name, node in obj.fields.items():
        if node.__class__ is Value:
            body = _value_lines(node, bind, hoisted)
        elif node.__class__ is Special and node.when is None and hasattr(node.fn, ID_PAIR_X12):
            body = _read_lines(node.fn, "value", bind, hoisted)
        elif node.__class__ is Obj and depth < INLINE_DEPTH:
            body = _object_lines(node, bind, hoisted, direct, depth + 1)
        else:
            body = [f"value = {bind(direct(node))}(scope, env)"]
        lines += ["try:", *(f"    {line}" for line in body), "except EvalFailure as exc:"]
        lines += [f"    exc.trail.append({name!r})", "    raise"]
        if _never_a_list(node):  # (the empty-list test is not needed)
            lines.append("if value is not None:")
        else:
            lines.append("if value is not None and (value.__class__ is not list or value):")
        lines.append(f"    {out}[{name!r}] = value")
        if not node.constant:
            lines.append(f"    {found} = True")
    lines.append(f"value = {out} if {found} else None")
    if obj.when is not None:
        return [*_test_lines(obj.when, bind, hoisted), "    value = None", "else:", *(f"    {x}" for x in lines)]
    return lines


def _never_a_list(node: Node) -> bool:
    """Whether ``node``'s value is never a list: an object (a dict or None), or an element's text or None
    (one getter of a shape read in line, no calls)."""
    from gateway.mapping.nodes import Obj, Special, Value

    if node.__class__ is Obj:
        return True
    if node.__class__ is Special:
        return node.when is None and hasattr(node.fn, ID_PAIR_X12)
    if not isinstance(node, Value) or node.many or node.calls or len(node.getters) != 1:
        return False
    getter = node.getters[0]
    return hasattr(getter, PLAIN_X12) or hasattr(getter, FILTERED_X12) or hasattr(getter, ID_PAIR_X12)


def _read_lines(getter: Any, var: str, bind: Callable[[Any], str], hoisted: _Hoisted) -> list[str]:
    """Lines that leave ``getter``'s value in ``var``: the getter's own lines in place for the shapes
    :func:`gateway.mapping.x12scope.make_getter` marks, a call otherwise (and where the shape's quick
    case does not hold, e.g. the segment is a loop's trigger)."""
    call = f"{var} = {bind(getter)}(scope, env)"
    plain = getattr(getter, PLAIN_X12, None)
    if plain is not None:  # SEG01
        sid, pos, ref = plain
        return [
            f"if {hoisted.segs(sid)} is not None:",
            f"    seg = {hoisted.segs(sid)}[0]",
            f"    env.where = (seg, {bind(ref)})",
            "    els = seg[0]",
            f"    {var} = (els[{pos}] if {pos} < len(els) else '') or None",
            "else:",  # not an own segment: the getter looks at the loops it triggers, if any
            f"    {call} if {sid!r} in scope.loops else None",
        ]
    filtered = getattr(getter, FILTERED_X12, None)
    if filtered is not None:  # REF[REF01=DP]/REF02: the first own segment the filter keeps
        sid, pos, ref, fpos, codes, negate = filtered
        test = "not in" if negate else "in"
        return [
            f"if {hoisted.segs(sid)} is not None:",
            f"    for seg in {hoisted.segs(sid)}:",
            "        els = seg[0]",
            f"        if (els[{fpos}] if {fpos} < len(els) else '') {test} {bind(codes)}:",
            f"            env.where = (seg, {bind(ref)})",
            f"            {var} = (els[{pos}] if {pos} < len(els) else '') or None",
            "            break",
            "    else:",
            f"        {call} if {sid!r} in scope.loops else None",
            "else:",
            f"    {call} if {sid!r} in scope.loops else None",
        ]
    pair = getattr(getter, ID_PAIR_X12, None)
    if pair is not None:  # {id_pair: LIN, qualifiers: [...]}: the segment's first ids, memoized per document
        sid, ref, memo_key, firsts, wanted = pair
        ids = hoisted.memo(memo_key)  # this function's copy: the same first segment each time
        lines = [
            f"if {hoisted.segs(sid)} is not None:",
            f"    seg = {hoisted.segs(sid)}[0]",
            f"    env.where = (seg, {bind(ref)})",
            f"    if {ids} is None:",
            f"        memo = env.cache.get({memo_key!r})",
            f"        {ids} = memo.get(id(seg)) if memo is not None else None",
            f"        if {ids} is None:",
            f"            {ids} = {bind(firsts)}(seg, env)",
            f"    {var} = {ids}.get({wanted[0]!r})",
        ]
        for want in wanted[1:]:  # qualifiers in order of preference
            lines += [f"    if {var} is None:", f"        {var} = {ids}.get({want!r})"]
        return [*lines, "else:", f"    {call}"]
    return [call]


def _value_lines(node: Value, bind: Callable[[Any], str], hoisted: _Hoisted) -> list[str]:
    """Lines that leave ``node``'s value in ``value``, as :meth:`Value.evaluate` computes it."""
    lines: list[str] = []
    if node.many:
        names = [f"part{i}" for i in range(len(node.getters))]
        for getter, name in zip(node.getters, names, strict=True):
            lines += _read_lines(getter, name, bind, hoisted)
        lines.append(f"value = [{', '.join(names)}]")
    elif node.getters:
        lines += _read_lines(node.getters[0], "value", bind, hoisted)
    else:
        lines.append(f"value = {bind(node.const)}")
    if node.calls:
        lines.append("ctx = env.ctx")
    for call in node.calls:
        fn, params, failed = bind(call.spec.fn), bind(call.params), bind(f"{call.spec.name}: ")
        guard = [] if call.spec.takes_none else ["if value is not None:"]
        pad = "    " * len(guard)
        lines += [
            *guard,
            f"{pad}try:",
            f"{pad}    value = {fn}(value, {params}, ctx)",
            f"{pad}except FunctionFailed as exc:",
            f"{pad}    raise EvalFailure({failed} + str(exc), env.where, {bind(node.source)}) from exc",
        ]
    if node.when is not None:
        return [*_test_lines(node.when, bind, hoisted), "    value = None", "else:"] + [f"    {x}" for x in lines]
    return lines


def _test_lines(when: Any, bind: Callable[[Any], str], hoisted: _Hoisted) -> list[str]:
    """Lines ending in an ``if`` whose body runs when ``when`` does not hold: its getter read in line
    (as :func:`_read_lines` reads a value, ``env.where`` set alike) and its test written out, for a
    condition of a shape :func:`_read_lines` writes in line; a call otherwise."""
    shape = getattr(when, CONDITION, None)
    if shape is None:
        return [f"if not {bind(when)}(scope, env):"]
    getter, test, codes, exists = shape
    lines = _read_lines(getter, "cond", bind, hoisted)
    if len(lines) == 1:  # (a getter called anyway: the condition's own call is as cheap)
        return [f"if not {bind(when)}(scope, env):"]
    if test == "exists":
        fails = "cond is None" if exists else "cond is not None"
    else:
        fails = f"cond {'not in' if test in ('equals', 'in') else 'in'} {bind(codes)}"
    return [*lines, f"if {fails}:"]


__all__ = ["CONDITION", "FILTERED_X12", "ID_PAIR_X12", "PLAIN_X12", "ObjectFunction", "object_function"]
