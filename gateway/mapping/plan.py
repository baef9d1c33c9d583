"""A compiled object node as one generated function: the map's per-document hot path.

Why: an 856 item has a dozen fields, each a getter call, often a function call, in a loop over the
object's fields; evaluating the map was about a quarter of ``gateway translate``'s CPU, most of it
the interpreter's dispatch between those small calls (the loop, ``Value.evaluate``'s frame, the
getter's and the element read's frames). :func:`object_function` writes one Python function per
:class:`~gateway.mapping.nodes.Obj` with its fields in line: a plain X12 element read
(``LIN01``) becomes a dictionary lookup and an index, a value's functions are called directly.

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


def object_function(obj: Obj, direct: Callable[[Node], Callable[[Any, Env], Any]]) -> ObjectFunction:
    """``obj``'s fields as one function ``(scope, env) -> dict or None`` (``direct``: the cheapest
    callable for a field this generator does not write in line)."""
    from gateway.mapping.nodes import EvalFailure, Value

    names: dict[str, Any] = {"EvalFailure": EvalFailure, "FunctionFailed": FunctionFailed}
    lines: list[str] = []
    add = lines.append
    hoisted = False

    def bind(value: Any) -> str:
        name = f"k{len(names)}"
        names[name] = value
        return name

    if obj.when is not None:
        add(f"    if not {bind(obj.when)}(scope, env):")
        add("        return None")
    add("    out = {}")
    add("    found = False")
    for name, node in obj.fields.items():
        body: list[str] = []
        if node.__class__ is Value:
            if not hoisted and _reads_plain_x12(node):
                add("    own = scope.own")
                hoisted = True
            body = _value_lines(node, bind)
        else:
            body.append(f"value = {bind(direct(node))}(scope, env)")
        add("    try:")
        lines.extend(f"        {line}" for line in body)
        add("    except EvalFailure as exc:")
        add(f"        exc.trail.append({name!r})")
        add("        raise")
        add("    if value is not None and (value.__class__ is not list or value):")
        add(f"        out[{name!r}] = value")
        if not node.constant:
            add("        found = True")
    add("    return out if found else None")
    source = "def evaluate(scope, env):\n" + "\n".join(lines) + "\n"
    exec(compile(source, f"<map object {id(obj):x}>", "exec"), names)  # our own generated text, from the compiled nodes
    fn: ObjectFunction = names["evaluate"]
    fn.source = source  # type: ignore[attr-defined]  # for tests and for reading a profile
    return fn


def _reads_plain_x12(node: Value) -> bool:
    return not node.many and len(node.getters) == 1 and hasattr(node.getters[0], PLAIN_X12)


def _value_lines(node: Value, bind: Callable[[Any], str]) -> list[str]:
    """Lines that leave ``node``'s value in ``value``, as :meth:`Value.evaluate` computes it."""
    lines: list[str] = []
    if node.many:
        lines.append("value = [" + ", ".join(f"{bind(g)}(scope, env)" for g in node.getters) + "]")
    elif node.getters:
        getter = node.getters[0]
        shape = getattr(getter, PLAIN_X12, None)
        if shape is None:
            lines.append(f"value = {bind(getter)}(scope, env)")
        else:  # the getter's own lines, in place (x12scope.make_getter, a plain SEG01 path)
            sid, pos, ref = shape
            lines += [
                f"segs = own.get({sid!r})",
                "if segs is not None:",
                "    seg = segs[0]",
                f"    env.where = (seg, {bind(ref)})",
                "    els = seg[0]",
                f"    value = (els[{pos}] if {pos} < len(els) else '') or None",
                "else:",
                f"    value = {bind(getter)}(scope, env)",
            ]
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
        return [f"if not {bind(node.when)}(scope, env):", "    value = None", "else:"] + [f"    {x}" for x in lines]
    return lines


__all__ = ["PLAIN_X12", "ObjectFunction", "object_function"]
