"""Amounts, quantities and units as a buyer reads them: ``12.40 a box``, ``40 boxes``, ``0.45 over``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

__all__ = ["money", "per_unit", "qty", "units"]

_NAMES = {
    "EA": ("each", "each"),
    "BX": ("box", "boxes"),
    "CA": ("case", "cases"),
    "CS": ("case", "cases"),
    "CT": ("carton", "cartons"),
    "PK": ("pack", "packs"),
    "DZ": ("dozen", "dozen"),
    "BG": ("bag", "bags"),
    "BT": ("bottle", "bottles"),
    "KT": ("kit", "kits"),
    "RL": ("roll", "rolls"),
    "PR": ("pair", "pairs"),
    "TR": ("tray", "trays"),
    "VL": ("vial", "vials"),
}
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """An amount with at least two decimals (more when the document sent more): ``18.00``, ``0.4525``."""
    if value == value.quantize(CENT):
        return str(value.quantize(CENT, rounding=ROUND_HALF_UP))
    return str(value.normalize())


def qty(value: Decimal) -> str:
    """A quantity without trailing zeros: ``40``, ``2.5``."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value.normalize())


def units(value: Decimal, uom: str | None) -> str:
    """``40 boxes``, ``1 box``, ``3 XY`` (an unknown unit kept as its code)."""
    if uom is None:
        return qty(value)
    one, many = _NAMES.get(uom.upper(), (uom, uom))
    return f"{qty(value)} {one if value == 1 else many}"


def per_unit(price: Decimal, uom: str | None) -> str:
    """``12.40 a box``, ``3.10 each``, ``5.00 per XY``."""
    if uom is None:
        return money(price)
    name = _NAMES.get(uom.upper())
    if name is None:
        return f"{money(price)} per {uom}"
    if name[0] == "each":
        return f"{money(price)} each"
    article = "an" if name[0][0] in "aeiou" else "a"
    return f"{money(price)} {article} {name[0]}"
