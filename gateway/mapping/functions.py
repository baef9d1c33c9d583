"""The named pure functions a map may apply, registered on a :class:`FunctionRegistry` object.

This module is the reference for adding a function: a pydantic params model
(``extra="forbid"``, so a misspelt parameter fails at load time), a pure
function ``(value, params, context) -> value`` and one ``registry.add`` line
in :func:`standard_functions`. Functions never see files or the clock; code
tables and cross-reference tables reach them through :class:`EvalContext`.

Values: ``None`` means absent (an empty X12 element is absent). Functions
with ``takes_none=False`` are skipped for absent values, so a chain such as
``[strip, date]`` on a missing element gives ``None`` rather than an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class FunctionFailed(ValueError):
    """A function could not convert its value; the evaluator adds partner, map, set and path."""


class Params(BaseModel):
    """Base of every function's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """A function without parameters."""


@dataclass(frozen=True, slots=True)
class CodeTable:
    """A code list: partner code → canonical value, with an optional default for unknown codes."""

    name: str
    codes: Mapping[str, Any]
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What functions may consult: code tables and cross-reference tables, by name (partner first);
    ``currency``: the partner profile's declared default currency (None: nothing is assumed)."""

    tables: Mapping[str, CodeTable] = field(default_factory=dict)
    xrefs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    currency: str | None = None


Fn = Callable[[Any, Any, EvalContext], Any]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A registered function: its params model, whether it runs on absent values, its doc."""

    name: str
    fn: Fn
    params: type[Params] = NoParams
    takes_none: bool = False
    doc: str = ""


class FunctionRegistry:
    """Functions by name. Build one with :func:`standard_functions`; tests may build their own."""

    def __init__(self) -> None:
        self._specs: dict[str, FunctionSpec] = {}

    def add(self, spec: FunctionSpec) -> None:
        """Register ``spec``; a name can be registered once."""
        if spec.name in self._specs:
            raise ValueError(f"function {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def get(self, name: str) -> FunctionSpec | None:
        """The function called ``name``, or None."""
        return self._specs.get(name)

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._specs)

    def copy(self) -> FunctionRegistry:
        """An independent registry with the same functions."""
        clone = FunctionRegistry()
        clone._specs = dict(self._specs)
        return clone


# --- dates and times ------------------------------------------------------------------------

_TOKENS = (("CCYY", "%Y"), ("YYYY", "%Y"), ("YY", "%y"), ("MM", "%m"), ("DD", "%d"), ("HH", "%H"), ("SS", "%S"))


def _strptime_format(fmt: str) -> str:
    out = fmt
    for token, directive in _TOKENS:
        out = out.replace(token, directive)
    return out.replace("mm", "%M")


class DateParams(Params):
    """``format``: ``auto`` (CCYYMMDD, YYMMDD, ISO 8601 date or date-time) or tokens like ``DD-MM-CCYY``."""

    format: str = "auto"


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")


_PARSED_LIMIT = 4096
"""Distinct texts remembered by :func:`_date` and :func:`_decimal`: a big file repeats the same few
dates and quantities thousands of times, and both results are immutable."""
_AUTO_DATES: dict[str, date] = {}


def _date(value: Any, params: DateParams, ctx: EvalContext) -> date:
    auto = params.format == "auto"
    if auto and value.__class__ is str:  # (a text seen before is its own stripped text: the memo's key)
        known = _AUTO_DATES.get(value)
        if known is not None:
            return known
    text = str(value).strip()
    try:
        if auto:
            if len(text) == 8 and text.isdigit():
                known = _AUTO_DATES.get(text)
                if known is None:
                    known = date(int(text[:4]), int(text[4:6]), int(text[6:]))
                    if len(_AUTO_DATES) >= _PARSED_LIMIT:
                        _AUTO_DATES.clear()
                    _AUTO_DATES[text] = known
                return known
            if len(text) == 6 and text.isdigit():
                return datetime.strptime(text, "%y%m%d").date()
            if m := _ISO_DATE.match(text):
                return date(int(m[1]), int(m[2]), int(m[3]))
            raise FunctionFailed(f"{text!r} is not a date (CCYYMMDD, YYMMDD or ISO 8601)")
        return datetime.strptime(text, _strptime_format(params.format)).date()
    except ValueError as exc:
        if isinstance(exc, FunctionFailed):
            raise
        raise FunctionFailed(f"{text!r} is not a valid date ({params.format}): {exc}") from exc


class DateTimeParams(Params):
    """Combine a date and a time: ``from`` gives ``[date, time]``, or one ISO 8601 date-time."""


def _datetime(value: Any, params: DateTimeParams, ctx: EvalContext) -> datetime:
    if isinstance(value, list):
        day = value[0] if value else None
        clock = value[1] if len(value) > 1 else None
        if day is None:
            raise FunctionFailed("no date to combine with the time")
        return datetime.combine(_date(day, DateParams(), ctx), _time(clock, NoParams(), ctx) if clock else time())
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise FunctionFailed(f"{text!r} is not an ISO 8601 date-time") from exc


def _time(value: Any, params: Params, ctx: EvalContext) -> time:
    text = str(value).strip()
    if text.isdigit() and len(text) in (4, 6, 7, 8):
        try:
            return time(int(text[:2]), int(text[2:4]), int(text[4:6]) if len(text) >= 6 else 0)
        except ValueError as exc:
            raise FunctionFailed(f"{text!r} is not a valid HHMM[SS] time") from exc
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise FunctionFailed(f"{text!r} is not a time (HHMM, HHMMSS or ISO)") from exc


# --- numbers --------------------------------------------------------------------------------


_DECIMALS: dict[str, Decimal] = {}


def _decimal(value: Any, params: Params, ctx: EvalContext) -> Decimal:
    if value.__class__ is str:  # (a text seen before is its own stripped text: the memo's key)
        result = _DECIMALS.get(value)
        if result is not None:
            return result
    text = str(value).strip()
    result = _DECIMALS.get(text)
    if result is not None:
        return result
    try:
        result = Decimal(text)
    except InvalidOperation as exc:
        raise FunctionFailed(f"{text!r} is not a decimal number") from exc
    if not result.is_finite():
        raise FunctionFailed(f"{text!r} is not a finite number")
    if len(_DECIMALS) >= _PARSED_LIMIT:
        _DECIMALS.clear()
    _DECIMALS[text] = result
    return result


#: 1.234,56 / 1 234,56 / 1234,56 / -12,5 / 12,50- (SAP's trailing minus); thousands groups of three,
#: so a stray decimal point ("12.40") fails instead of silently becoming 1240.
_DECIMAL_COMMA = re.compile(r"^([+-]?)(\d{1,3}(?:[. \u00a0]\d{3})+|\d+)(?:,(\d+))?(-?)$")


def _decimal_comma(value: Any, params: Params, ctx: EvalContext) -> Decimal:
    text = str(value).strip()
    found = _DECIMAL_COMMA.match(text)
    if found is None or (found[1] and found[4]):
        raise FunctionFailed(f"{text!r} is not a decimal-comma number (like 1.234,56)")
    sign = "-" if "-" in (found[1], found[4]) else ""
    digits = found[2].replace(".", "").replace(" ", "").replace("\u00a0", "")
    return Decimal(f"{sign}{digits}.{found[3]}" if found[3] else f"{sign}{digits}")


class ImpliedParams(Params):
    """``places``: how many implied decimal places (N2: 2)."""

    places: int = 2


def _implied_decimal(value: Any, params: ImpliedParams, ctx: EvalContext) -> Decimal:
    text = str(value).strip()
    if not re.fullmatch(r"-?\d+", text):
        raise FunctionFailed(f"{text!r} is not an implied-decimal number (digits, optional minus)")
    return Decimal(text).scaleb(-params.places)


def _integer(value: Any, params: Params, ctx: EvalContext) -> int:
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise FunctionFailed(f"{text!r} is not a whole number") from exc
    if number != number.to_integral_value():
        raise FunctionFailed(f"{text!r} is not a whole number")
    return int(number)


class ScaleParams(Params):
    """``by``: multiply a decimal, e.g. ``-1`` to sign a credit amount."""

    by: Decimal


def _multiply(value: Any, params: ScaleParams, ctx: EvalContext) -> Decimal:
    base = value if isinstance(value, Decimal) else _decimal(value, NoParams(), ctx)
    return base * params.by


# --- codes and lookups ----------------------------------------------------------------------


class TableParams(Params):
    """``table``: a code table by name (the partner's own tables first); ``missing``: for a code
    the table does not list, ``default`` (the table's default, else an error) or ``keep`` (the code
    as sent, e.g. a UOM table that only rewrites a partner's odd codes)."""

    table: str
    missing: Literal["default", "keep"] = "default"


def _table(value: Any, params: TableParams, ctx: EvalContext) -> Any:
    table = ctx.tables.get(params.table)
    if table is None:
        raise FunctionFailed(f"no code table named {params.table!r}")
    key = str(value).strip()
    if key in table.codes:
        return table.codes[key]
    if params.missing == "keep":
        return value
    if table.has_default:
        return table.default
    raise FunctionFailed(f"code {key!r} is not in table {params.table!r} (and the table has no default)")


class XrefParams(Params):
    """``xref``: a cross-reference table; ``missing``: ``keep`` the value, ``none``, or ``error``."""

    xref: str
    missing: str = "keep"


def _xref(value: Any, params: XrefParams, ctx: EvalContext) -> Any:
    table = ctx.xrefs.get(params.xref)
    if table is None:
        raise FunctionFailed(f"no cross-reference table named {params.xref!r}")
    key = str(value).strip()
    if key in table:
        return table[key]
    if params.missing == "keep":
        return value
    if params.missing == "none":
        return None
    raise FunctionFailed(f"{key!r} is not in cross-reference {params.xref!r}")


class DefaultParams(Params):
    """``value``: used when the source is absent or empty."""

    value: Any


def _default(value: Any, params: DefaultParams, ctx: EvalContext) -> Any:
    return params.value if value is None or value == "" else value


class ConcatParams(Params):
    """``separator`` between the non-empty parts (default one space)."""

    separator: str = " "


def _concat(value: Any, params: ConcatParams, ctx: EvalContext) -> Any:
    parts = value if isinstance(value, list) else [value]
    text = params.separator.join(str(p) for p in parts if p not in (None, ""))
    return text or None


def _first(value: Any, params: Params, ctx: EvalContext) -> Any:
    if isinstance(value, list):
        for v in value:  # (a loop, not next() over a generator: once per first_of field per item)
            if v not in (None, ""):
                return v
        return None
    return value


class InParams(Params):
    """``values``: true when the value is one of them."""

    values: list[str]


def _is_in(value: Any, params: InParams, ctx: EvalContext) -> bool:
    return value is not None and str(value).strip() in params.values


def _strip(value: Any, params: Params, ctx: EvalContext) -> Any:
    text = str(value).strip()
    return text or None


def _upper(value: Any, params: Params, ctx: EvalContext) -> str:
    return str(value).upper()


def _lower(value: Any, params: Params, ctx: EvalContext) -> str:
    return str(value).lower()


class SliceParams(Params):
    """``start``/``end``: a substring (0-based, end exclusive), e.g. the first 10 characters."""

    start: int = 0
    end: int | None = None


def _substring(value: Any, params: SliceParams, ctx: EvalContext) -> str:
    return str(value)[params.start : params.end]


def standard_functions() -> FunctionRegistry:
    """A registry with every function the shipped maps use."""
    reg = FunctionRegistry()
    for spec in (
        FunctionSpec("date", _date, DateParams, doc="A date from CCYYMMDD, YYMMDD, ISO 8601 or a token format."),
        FunctionSpec("datetime", _datetime, DateTimeParams, doc="A date-time from [date, time] or ISO 8601."),
        FunctionSpec("time", _time, doc="A time from HHMM, HHMMSS or ISO."),
        FunctionSpec("decimal", _decimal, doc="An exact Decimal from R/N text."),
        FunctionSpec("decimal_comma", _decimal_comma, doc="A Decimal from 1.234,56 style text."),
        FunctionSpec("implied_decimal", _implied_decimal, ImpliedParams, doc="N2-style digits to a Decimal."),
        FunctionSpec("integer", _integer, doc="A whole number."),
        FunctionSpec("multiply", _multiply, ScaleParams, doc="A Decimal multiplied by `by`."),
        FunctionSpec("table", _table, TableParams, doc="A code table lookup; the table's default for unknowns."),
        FunctionSpec("xref", _xref, XrefParams, doc="A cross-reference lookup (item ids, cost centers)."),
        FunctionSpec("default", _default, DefaultParams, takes_none=True, doc="A value when absent."),
        FunctionSpec("concat", _concat, ConcatParams, takes_none=True, doc="Join the non-empty parts."),
        FunctionSpec("first", _first, takes_none=True, doc="The first non-empty part."),
        FunctionSpec("in", _is_in, InParams, takes_none=True, doc="True when the value is one of `values`."),
        FunctionSpec("strip", _strip, doc="Trim spaces; empty becomes absent."),
        FunctionSpec("upper", _upper, doc="Upper case."),
        FunctionSpec("lower", _lower, doc="Lower case."),
        FunctionSpec("substring", _substring, SliceParams, doc="Part of the text."),
    ):
        reg.add(spec)
    return reg
