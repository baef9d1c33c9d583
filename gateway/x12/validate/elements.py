"""Element-level checks (SNIP 1-2): presence, length, type, code values, syntax notes."""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.x12.isa import valid_month_day
from gateway.x12.schema.compiled import ElementSpec, SegmentSpec, SyntaxRule
from gateway.x12.segment import Delimiters

#: One problem: (code, element position, component position or None, message, value, element ref).
ElementProblem = tuple[str, int, int | None, str, str | None, str | None]

_NUMERIC = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:E-?\d+)?")


def _digits(value: str) -> int:
    """Length as X12 counts it for numbers: sign and decimal point excluded."""
    return len(value) - value.count("-") - value.count(".")


def _valid_date(value: str) -> bool:
    if not value.isdigit():
        return False
    if len(value) == 8:
        return valid_month_day(int(value[4:6]), int(value[6:]), int(value[:4]))
    if len(value) == 6:
        return valid_month_day(int(value[2:4]), int(value[4:]), None)
    return False


def _valid_time(value: str) -> bool:
    if not value.isdigit() or len(value) < 4:
        return False
    if int(value[:2]) > 23 or int(value[2:4]) > 59:
        return False
    return len(value) < 6 or int(value[4:6]) <= 59


def check_value(value: str, spec: ElementSpec) -> tuple[str, str] | None:
    """The first problem with one simple element's value, as (code, message)."""
    kind = spec.type
    if kind[0] == "N" or kind == "R":
        if kind == "R":
            if not _DECIMAL.fullmatch(value):
                return "X12-V206", f"{value!r} is not a decimal number (type R)"
        elif not _NUMERIC.fullmatch(value):
            return "X12-V206", f"{value!r} is not a whole number with implied decimals (type {kind})"
        size = _digits(value)
    else:
        size = len(value)
    if size < spec.min:
        return "X12-V204", f"{size} characters, at least {spec.min} required"
    if size > spec.max:
        return "X12-V205", f"{size} characters, at most {spec.max} allowed"
    if kind == "ID":
        if spec.codes is not None and value not in spec.codes:
            return "X12-V207", f"{value!r} is not a valid code for element {spec.ref} ({spec.name})"
    elif kind == "DT":
        if not _valid_date(value):
            return "X12-V208", f"{value!r} is not a valid date (CCYYMMDD or YYMMDD)"
    elif kind == "TM":
        if not _valid_time(value):
            return "X12-V209", f"{value!r} is not a valid time (HHMM[SS[d..]])"
    elif kind == "AN" and not value.isprintable():
        return "X12-V206", "contains a control character"
    return None


def check_syntax(values: list[str], rules: tuple[SyntaxRule, ...]) -> list[tuple[str, int, str]]:
    """Syntax-note violations as (code, position, message); ``values[0]`` is position 1."""
    found: list[tuple[str, int, str]] = []

    def present(pos: int) -> bool:
        return pos <= len(values) and values[pos - 1] != ""

    for rule in rules:
        have = [p for p in rule.positions if present(p)]
        names = "/".join(f"{p:02d}" for p in rule.positions)
        first, rest = rule.positions[0], rule.positions[1:]
        if rule.kind == "P" and have and len(have) != len(rule.positions):
            missing = next(p for p in rule.positions if not present(p))
            found.append(("X12-V202", missing, f"{rule.text}: elements {names} are used together or not at all"))
        elif rule.kind == "R" and not have:
            found.append(("X12-V202", first, f"{rule.text}: at least one of elements {names} is required"))
        elif rule.kind == "E" and len(have) > 1:
            found.append(("X12-V210", have[1], f"{rule.text}: only one of elements {names} may be used"))
        elif rule.kind == "C" and present(first):
            missing_c = [p for p in rest if not present(p)]
            if missing_c:
                found.append(("X12-V202", missing_c[0], f"{rule.text}: element {first:02d} requires {names[3:]}"))
        elif rule.kind == "L" and present(first) and not any(present(p) for p in rest):
            found.append(("X12-V202", rest[0], f"{rule.text}: element {first:02d} requires one of {names[3:]}"))
    return found


def check_segment(elements: list[str], spec: SegmentSpec, delimiters: Delimiters) -> list[ElementProblem]:
    """Every element problem of one segment (``elements[0]`` is the id)."""
    problems: list[ElementProblem] = []
    add = problems.append
    defined = spec.elements
    count = len(elements) - 1
    if count > len(defined):
        extra = elements[len(defined) + 1 :]
        if any(extra):
            pos = len(defined) + 1
            add(("X12-V203", pos, None, f"{spec.id} has {len(defined)} elements; found {count}", extra[0], None))
    for pos, es in enumerate(defined, 1):
        value = elements[pos] if pos <= count else ""
        if not value:
            if es.req == "M":
                add(("X12-V201", pos, None, f"{spec.id}{pos:02d} ({es.name}) is mandatory", None, es.ref))
            continue
        if not es.used:
            add(("X12-V220", pos, None, f"{spec.id}{pos:02d} is never sent under this partner's guide", value, es.ref))
            continue
        values = [value]
        if delimiters.repetition and delimiters.repetition in value:
            values = value.split(delimiters.repetition)
            if len(values) > es.repeat:
                add(
                    (
                        "X12-V212",
                        pos,
                        None,
                        f"{spec.id}{pos:02d} repeats {len(values)} times, at most {es.repeat}",
                        value,
                        es.ref,
                    )
                )
                values = values[: es.repeat]
        for one in values:
            if es.components:
                _check_composite(one, es, pos, spec.id, delimiters, add)
            else:
                _check_simple(one, es, pos, None, spec.id, add)
    if spec.syntax:
        for code, pos, message in check_syntax(elements[1:], spec.syntax):
            ref = defined[pos - 1].ref if pos <= len(defined) else None
            add((code, pos, None, message, None, ref))
    return problems


def _check_simple(
    value: str, es: ElementSpec, pos: int, comp: int | None, seg_id: str, add: Callable[[ElementProblem], None]
) -> None:
    bad = check_value(value, es)
    if bad is not None:
        where = f"{seg_id}{pos:02d}" + (f"-{comp}" if comp else "")
        add((bad[0], pos, comp, f"{where} ({es.name}): {bad[1]}", value, es.ref))
    elif es.common is not None and value not in es.common:
        where = f"{seg_id}{pos:02d}" + (f"-{comp}" if comp else "")
        add(("X12-V214", pos, comp, f"{where}: {value!r} is not a usual code for {es.name}", value, es.ref))


def _check_composite(
    value: str, es: ElementSpec, pos: int, seg_id: str, delimiters: Delimiters, add: Callable[[ElementProblem], None]
) -> None:
    parts = value.split(delimiters.component)
    if len(parts) > len(es.components) and any(parts[len(es.components) :]):
        add(
            (
                "X12-V213",
                pos,
                len(es.components) + 1,
                f"{seg_id}{pos:02d} ({es.name}) has {len(parts)} components, at most {len(es.components)}",
                value,
                es.ref,
            )
        )
    for n, cs in enumerate(es.components, 1):
        part = parts[n - 1] if n <= len(parts) else ""
        if not part:
            if cs.req == "M":
                add(("X12-V201", pos, n, f"{seg_id}{pos:02d}-{n} ({cs.name}) is mandatory", None, cs.ref))
            continue
        _check_simple(part, cs, pos, n, seg_id, add)
    if es.syntax:
        for code, cpos, message in check_syntax(parts, es.syntax):
            add((code, pos, cpos, message, None, es.ref))
