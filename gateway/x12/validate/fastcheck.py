"""Straight-line validity checks generated from segment definitions.

For a segment that is valid, which is nearly every segment, the question
is only *whether* it is valid; :func:`compile_check` turns a
:class:`SegmentSpec` into a small Python function with no loops over the
definition (lengths, numeric and code checks, mandatory elements and syntax
notes written out per position). It answers True or False; on False the
validator runs :func:`~gateway.x12.validate.elements.check_segment`, which
says exactly what is wrong. The generated source comes only from our own
definition data (element positions, lengths and type names), never from
the documents being checked. Measured in ``docs/performance.md``.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.x12.schema.compiled import ElementSpec, SegmentSpec
from gateway.x12.validate.elements import _valid_date, _valid_time

FastCheck = Callable[[list[str]], bool]


def _length(var: str, lo: int, hi: int) -> str:
    """``lo <= len(var) <= hi`` for a non-empty ``var`` (every test here runs on one only), in its cheapest form."""
    if lo == hi:
        return f"len({var}) == {lo}"
    if lo <= 1:
        return f"len({var}) <= {hi}"
    return f"{lo} <= len({var}) <= {hi}"


def _value_test(es: ElementSpec, var: str, consts: dict[str, object], key: str) -> str | None:
    """A boolean expression true when ``var`` (non-empty) is valid, or None to defer to the full check."""
    lo, hi = es.min, es.max
    if es.fast == "AN":
        return f"{_length(var, lo, hi)} and {var}.isprintable()"
    if es.fast == "ID":
        if es.codes is None:
            return _length(var, lo, hi)
        consts[key] = es.codes
        if all(lo <= len(code) <= hi for code in es.codes):  # (a listed code has a valid length)
            return f"{var} in {key}"
        return f"{_length(var, lo, hi)} and {var} in {key}"
    if es.fast == "N":
        return f"{var}.isascii() and {var}.isdigit() and {_length(var, lo, hi)}"
    if es.fast == "R":
        # (once the point is out, digits only: at least one, so a minimum of 1 needs no test)
        count = f"len({var}) - ('.' in {var})"
        bound = f"{count} <= {hi}" if lo <= 1 else f"{lo} <= {count} <= {hi}"
        return f"{var}.isascii() and {var}.replace('.', '', 1).isdigit() and {bound}"
    if es.fast == "DT":
        return f"{_length(var, lo, hi)} and _valid_date({var})"
    if es.fast == "TM":
        return f"{_length(var, lo, hi)} and _valid_time({var})"
    return None


def compile_check(spec: SegmentSpec, repetition: str | None) -> FastCheck:
    """A fast validity test for ``spec``: True means valid; False means run the full check.

    Element tests are nested by position (``if n > 1: ... if n > 2: ...``) so a
    segment carrying 7 of its 31 elements costs 7 tests, not 31; syntax notes
    whose elements are all absent are skipped the same way.
    """
    consts: dict[str, object] = {"_valid_date": _valid_date, "_valid_time": _valid_time}
    lines = ["def check(e):", "    n = len(e)", f"    if n > {len(spec.elements) + 1}:", "        return False"]
    lines += _element_block(spec, 1, "    ", repetition, consts)
    for rule in spec.syntax:
        present = [f"(n > {p} and e[{p}] != '')" for p in rule.positions]
        guard = f"n > {min(rule.positions)}"
        if rule.kind == "P" and len(present) == 2:
            cond = f"{guard} and {present[0]} != {present[1]}"
        elif rule.kind == "P":
            cond = f"{guard} and len({{{', '.join(present)}}}) > 1"
        elif rule.kind == "R":
            cond = f"not ({' or '.join(present)})"
        elif rule.kind == "E":
            cond = f"{guard} and sum(({', '.join(present)},)) > 1"
        elif rule.kind == "C":
            cond = f"{present[0]} and not ({' and '.join(present[1:])})"
        else:  # L
            cond = f"{present[0]} and not ({' or '.join(present[1:])})"
        lines += [f"    if {cond}:", "        return False"]
    lines.append("    return True")
    namespace: dict[str, object] = dict(consts)
    exec("\n".join(lines), namespace)  # source built from our definitions only
    check = namespace["check"]
    assert callable(check)
    return check


def _element_block(
    spec: SegmentSpec, pos: int, indent: str, repetition: str | None, consts: dict[str, object]
) -> list[str]:
    """``if n > pos: <check pos> <block for pos+1>`` / ``else: <False if anything later is mandatory>``."""
    if pos > len(spec.elements):
        return []
    es = spec.elements[pos - 1]
    inner = indent + "    "
    lines = [f"{indent}if n > {pos}:"]
    test = _value_test(es, "v", consts, f"_codes{pos}")
    if test is None:
        # composites, repeats, elements a guide never uses: the full check decides
        lines += [f"{inner}if e[{pos}]:", f"{inner}    return False"]
        if es.req == "M":
            lines += [f"{inner}else:", f"{inner}    return False"]
    else:
        if repetition is not None:
            test = f"{repetition!r} not in v and {test}"
        lines.append(f"{inner}v = e[{pos}]")
        guard = "not v or not" if es.req == "M" else "v and not"
        lines += [f"{inner}if {guard} ({test}):", f"{inner}    return False"]
    lines += _element_block(spec, pos + 1, inner, repetition, consts)
    if _mandatory_from(spec, pos):
        lines += [f"{indent}else:", f"{indent}    return False"]
    return lines


def _mandatory_from(spec: SegmentSpec, pos: int) -> bool:
    """True when an element at ``pos`` or later is mandatory (so a segment ending before it is invalid)."""
    return any(e.req == "M" for e in spec.elements[pos - 1 :])
