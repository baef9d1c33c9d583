"""Element-level checks (SNIP 1-2): presence, length, type, code values, syntax notes."""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.x12.isa import valid_month_day
from gateway.x12.schema.compiled import ElementSpec, SegmentSpec, SyntaxRule
from gateway.x12.segment import Delimiters, is_digits

#: One problem: (code, element position, component position or None, message, value, element ref).
ElementProblem = tuple[str, int, int | None, str, str | None, str | None]

_NUMERIC = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:E-?\d+)?")


def _digits(value: str) -> int:
    """Length as X12 counts it for numbers: sign and decimal point excluded."""
    return len(value) - value.count("-") - value.count(".")


_VALID_DATES: set[str] = set()
"""Dates found valid (at most a few thousand): a big file repeats the same dates on every line."""


def _valid_date(value: str) -> bool:
    if value in _VALID_DATES:
        return True
    if not is_digits(value):
        return False
    if len(value) == 8:
        valid = valid_month_day(int(value[4:6]), int(value[6:]), int(value[:4]))
    elif len(value) == 6:
        valid = valid_month_day(int(value[2:4]), int(value[4:]), None)
    else:
        return False
    if valid:
        if len(_VALID_DATES) >= 4096:
            _VALID_DATES.clear()
        _VALID_DATES.add(value)
    return valid


def _valid_time(value: str) -> bool:
    if not is_digits(value) or len(value) < 4:
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


def _names(rule: SyntaxRule) -> str:
    return "/".join(f"{p:02d}" for p in rule.positions)


def check_syntax(values: list[str], rules: tuple[SyntaxRule, ...]) -> list[tuple[str, int, str]]:
    """Syntax-note violations as (code, position, message); ``values[0]`` is position 1.

    Messages are only built for violations: this runs for most segments.
    """
    found: list[tuple[str, int, str]] = []
    n = len(values)
    for rule in rules:
        kind = rule.kind
        if rule.positions[0] > n and kind != "R":
            continue  # none of its elements is present: only R can be violated
        have = [p for p in rule.positions if p <= n and values[p - 1]]
        if kind == "C" or kind == "L":
            if rule.positions[0] not in have:
                continue
            rest = rule.positions[1:]
            if kind == "C" and len(have) <= len(rest):
                missing = next(p for p in rest if p not in have)
                found.append(
                    ("X12-V202", missing, f"{rule.text}: element {rule.positions[0]:02d} requires {_names(rule)[3:]}")
                )
            elif kind == "L" and len(have) == 1:
                found.append(
                    (
                        "X12-V202",
                        rest[0],
                        f"{rule.text}: element {rule.positions[0]:02d} requires one of {_names(rule)[3:]}",
                    )
                )
        elif kind == "P":
            if have and len(have) != len(rule.positions):
                missing = next(p for p in rule.positions if p not in have)
                found.append(
                    ("X12-V202", missing, f"{rule.text}: elements {_names(rule)} are used together or not at all")
                )
        elif kind == "R":
            if not have:
                found.append(
                    ("X12-V202", rule.positions[0], f"{rule.text}: at least one of elements {_names(rule)} is required")
                )
        elif kind == "E" and len(have) > 1:
            found.append(("X12-V210", have[1], f"{rule.text}: only one of elements {_names(rule)} may be used"))
    return found


def check_segment(  # noqa: C901 - the inline fast checks are the point of this function
    elements: list[str], spec: SegmentSpec, delimiters: Delimiters, common: bool = False
) -> list[ElementProblem]:
    """Every element problem of one segment (``elements[0]`` is the id).

    Valid elements of the common kinds pass an inline check; anything else
    (a failure, a composite, a repeat, a guide restriction) takes the full
    path, which says exactly what is wrong. ``common`` also warns about
    codes outside the usual lists.
    """
    problems: list[ElementProblem] = []
    defined = spec.elements
    ndef = len(defined)
    count = len(elements) - 1
    if count > ndef and any(elements[ndef + 1 :]):
        add_extra = (f"{spec.id} has {ndef} elements; found {count}", elements[ndef + 1])
        problems.append(("X12-V203", ndef + 1, None, add_extra[0], add_extra[1], None))
    rep = delimiters.repetition
    for pos in range(1, (count if count < ndef else ndef) + 1):
        v = elements[pos]
        if not v:
            continue
        es = defined[pos - 1]
        fast = es.fast
        if fast and (rep is None or rep not in v):
            size = len(v)
            if fast == "AN":
                if es.min <= size <= es.max and v.isprintable():
                    continue
            elif fast == "ID":
                if (
                    es.min <= size <= es.max
                    and (es.codes is None or v in es.codes)
                    and (not common or es.common is None or v in es.common)
                ):
                    continue
            elif fast == "N":
                if is_digits(v) and es.min <= size <= es.max:
                    continue
            elif fast == "R":
                digits = v.replace(".", "", 1)
                if is_digits(digits) and es.min <= len(digits) <= es.max:
                    continue
            elif fast == "DT":
                if es.min <= size <= es.max and _valid_date(v):
                    continue
            elif fast == "TM" and es.min <= size <= es.max and _valid_time(v):
                continue
        _check_element(v, es, pos, spec.id, delimiters, problems.append, common)
    for pos in spec.mandatory:
        if pos > count or not elements[pos]:
            es = defined[pos - 1]
            problems.append(("X12-V201", pos, None, f"{spec.id}{pos:02d} ({es.name}) is mandatory", None, es.ref))
    if spec.syntax:
        for code, pos, message in check_syntax(elements[1:], spec.syntax):
            ref = defined[pos - 1].ref if pos <= ndef else None
            problems.append((code, pos, None, message, None, ref))
    return problems


def _check_element(
    value: str,
    es: ElementSpec,
    pos: int,
    seg_id: str,
    delimiters: Delimiters,
    add: Callable[[ElementProblem], None],
    common: bool,
) -> None:
    """The full check of one present element: guide usage, repeats, composites, value."""
    if not es.used:
        add(("X12-V220", pos, None, f"{seg_id}{pos:02d} is never sent under this partner's guide", value, es.ref))
        return
    values = [value]
    if delimiters.repetition and delimiters.repetition in value:
        values = value.split(delimiters.repetition)
        if len(values) > es.repeat:
            add(
                (
                    "X12-V212",
                    pos,
                    None,
                    f"{seg_id}{pos:02d} repeats {len(values)} times, at most {es.repeat}",
                    value,
                    es.ref,
                )
            )
            values = values[: es.repeat]
    for one in values:
        if es.components:
            _check_composite(one, es, pos, seg_id, delimiters, add, common)
        else:
            _check_simple(one, es, pos, None, seg_id, add, common)


def _check_simple(
    value: str,
    es: ElementSpec,
    pos: int,
    comp: int | None,
    seg_id: str,
    add: Callable[[ElementProblem], None],
    common: bool = False,
) -> None:
    bad = check_value(value, es)
    if bad is not None:
        where = f"{seg_id}{pos:02d}" + (f"-{comp}" if comp else "")
        add((bad[0], pos, comp, f"{where} ({es.name}): {bad[1]}", value, es.ref))
    elif common and es.common is not None and value not in es.common:
        where = f"{seg_id}{pos:02d}" + (f"-{comp}" if comp else "")
        add(("X12-V214", pos, comp, f"{where}: {value!r} is not a usual code for {es.name}", value, es.ref))


def _check_composite(
    value: str,
    es: ElementSpec,
    pos: int,
    seg_id: str,
    delimiters: Delimiters,
    add: Callable[[ElementProblem], None],
    common: bool = False,
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
        _check_simple(part, cs, pos, n, seg_id, add, common)
    if es.syntax:
        for code, cpos, message in check_syntax(parts, es.syntax):
            add((code, pos, cpos, message, None, es.ref))
