"""The formatting functions outbound maps add to the named-function registry.

Inbound functions turn X12 text into typed values; these turn typed values
back into X12 text. Same shape as :mod:`gateway.mapping.functions` (a params
model, a pure function, one registry entry); registered on a copy of the
standard registry so a deployment passes one registry object around.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from gateway.mapping.functions import (
    EvalContext,
    FunctionFailed,
    FunctionRegistry,
    FunctionSpec,
    Params,
    standard_functions,
)

_DATE_TOKENS = (("CCYY", "%Y"), ("YYYY", "%Y"), ("YY", "%y"), ("MM", "%m"), ("DD", "%d"), ("HH", "%H"), ("SS", "%S"))


class FormatDateParams(Params):
    """``format``: X12 date tokens; CCYYMMDD by default (YYMMDD; HHmm for the time of a date-time)."""

    format: str = "CCYYMMDD"


def _format_date(value: Any, params: FormatDateParams, ctx: EvalContext) -> str:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError as exc:
            raise FunctionFailed(f"{value!r} is not an ISO 8601 date") from exc
    if not isinstance(value, date):
        raise FunctionFailed(f"{value!r} is not a date")
    pattern = params.format
    for token, directive in _DATE_TOKENS:
        pattern = pattern.replace(token, directive)
    return value.strftime(pattern.replace("mm", "%M"))


def format_decimal(value: Any) -> str:
    """A number as X12 ``R``: plain digits, no exponent, no trailing zeros, ``-`` for negatives."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError as exc:
        raise FunctionFailed(f"{value!r} is not a number") from exc
    if not number.is_finite():
        raise FunctionFailed(f"{value!r} is not a finite number")
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def _format_decimal(value: Any, params: Params, ctx: EvalContext) -> str:
    return format_decimal(value)


class FormatImpliedParams(Params):
    """``places``: how many implied decimal places the X12 ``N`` element has (N2: 2)."""

    places: int = 2


def _format_implied(value: Any, params: FormatImpliedParams, ctx: EvalContext) -> str:
    """12.5 with N2 → ``1250``; an amount finer than the places allow fails rather than being rounded."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except ArithmeticError as exc:
        raise FunctionFailed(f"{value!r} is not a number") from exc
    if not number.is_finite():
        raise FunctionFailed(f"{value!r} is not a finite number")
    scaled = number.scaleb(params.places)
    if scaled != scaled.to_integral_value():
        raise FunctionFailed(f"{value} has more than {params.places} decimal places (X12 N{params.places})")
    return str(int(scaled))


class FormatNumberParams(Params):
    """``places``: exactly this many decimal places (12.5 with 2: ``12.50``); None: as few as needed."""

    places: int | None = None


def _format_number(value: Any, params: FormatNumberParams, ctx: EvalContext) -> str:
    """A decimal in plain notation with a fixed number of places; a finer value fails rather than rounds."""
    text = format_decimal(value)
    if params.places is None:
        return text
    number = Decimal(text)
    fixed = number.quantize(Decimal(1).scaleb(-params.places))
    if fixed != number:
        raise FunctionFailed(f"{text} has more than {params.places} decimal places")
    return format(fixed, "f")


class FormatBoolParams(Params):
    """What true and false are written as (``Y``/``N`` by default)."""

    true: str = "Y"
    false: str = "N"


def _format_bool(value: Any, params: FormatBoolParams, ctx: EvalContext) -> str:
    if not isinstance(value, bool):
        raise FunctionFailed(f"{value!r} is not true or false")
    return params.true if value else params.false


def _count(value: Any, params: Params, ctx: EvalContext) -> int:
    return len(value) if isinstance(value, list) else (0 if value is None else 1)


def outbound_functions(base: FunctionRegistry | None = None) -> FunctionRegistry:
    """A copy of ``base`` (the standard functions by default) plus the outbound formatting functions."""
    reg = (base or standard_functions()).copy()
    for spec in (
        FunctionSpec("format_date", _format_date, FormatDateParams, doc="A date as X12 text (CCYYMMDD)."),
        FunctionSpec("format_decimal", _format_decimal, doc="A Decimal as X12 R: no exponent or trailing zeros."),
        FunctionSpec(
            "format_implied", _format_implied, FormatImpliedParams, doc="A Decimal as X12 N2 digits (TDS, ITD08)."
        ),
        FunctionSpec("count", _count, takes_none=True, doc="How many items a list has (CTT01)."),
        FunctionSpec(
            "format_number", _format_number, FormatNumberParams, doc="A Decimal with a fixed number of places."
        ),
        FunctionSpec("format_bool", _format_bool, FormatBoolParams, doc="true/false as two codes (Y/N)."),
    ):
        reg.add(spec)
    return reg
