"""Business-level checks on a translated document: warnings a buyer expects, never rejections.

A set that passed validation and mapping may still disagree with itself: a
``CTT02`` hash total that is not the sum of the line quantities, a ``CTT01``
line count that is not the number of lines, an ``AMT*TT``/``TDS``/cXML
``Total`` that is not the sum of the lines (and charges), two lines with one
line number, a cXML item without a ``lineNumber``. Each is reported as a
:class:`DocumentWarning` located on the segment (or XML element) it concerns;
the document is still delivered.

Also here: :func:`default_currency`, which puts a partner's *declared*
currency on a document that carries amounts but states no currency, and
nothing on any other document (a currency is never invented).

Pure: the checks read the canonical document and the source scope
(:class:`~gateway.mapping.x12scope.X12Scope` or an lxml element) and return
values; the translator turns each ``found`` into a :class:`~gateway.errors.Location`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from lxml import etree
from pydantic import BaseModel

from gateway.canonical import Invoice, PurchaseOrder, PurchaseOrderAcknowledgment
from gateway.errors import Location
from gateway.mapping.x12scope import ElementRef, Step, X12Scope, find
from gateway.x12.segment import Segment

CENT = Decimal("0.01")

#: code → what it means (docs/maps.md lists them)
WARNINGS = {
    "BIZ-001": "CTT01 line count differs from the lines in the set",
    "BIZ-002": "CTT02 hash total differs from the sum of the line quantities",
    "BIZ-003": "stated total differs from the sum of the lines (and charges)",
    "BIZ-004": "two lines of one document carry the same line number",
    "BIZ-005": "a cXML item has no lineNumber: it cannot be matched to its order line",
}


@dataclass(frozen=True, slots=True)
class DocumentWarning:
    """A located business-level warning on a translated document (the document is still delivered)."""

    code: str
    message: str
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Check:
    """A warning before it is located: ``found`` is a segment and element, or an XML element."""

    code: str
    message: str
    found: Any = None


# --- currency ---------------------------------------------------------------------------------


def has_amounts(values: Any) -> bool:
    """True when the mapped values hold any amount of money (a ``Money``-shaped ``{"amount": ...}``)."""
    if isinstance(values, dict):
        if values.get("amount") is not None:
            return True
        return any(has_amounts(v) for v in values.values())
    if isinstance(values, list):
        return any(has_amounts(v) for v in values)
    return False


def default_currency(values: dict[str, Any], currency: str | None) -> None:
    """Give ``values`` the partner's declared ``currency`` when it states none and carries amounts."""
    if currency and values.get("currency") is None and has_amounts(values):
        values["currency"] = currency


# --- checks -----------------------------------------------------------------------------------


def check_document(document: BaseModel, scope: Any) -> list[Check]:
    """Every business-level warning for ``document``, translated from ``scope``."""
    out: list[Check] = []
    if isinstance(scope, X12Scope):
        locate: _Locator = _X12Locator(scope)
        out.extend(_ctt_checks(document, scope))
    elif isinstance(scope, etree._Element):
        locate = _XmlLocator(scope, document)
        out.extend(_cxml_line_numbers(scope))
    else:
        locate = _Locator()
    out.extend(_duplicate_lines(document, locate))
    out.extend(_total_checks(document, scope, locate))
    return out


class _Locator:
    """Where a line or the stated total sits in the source (nothing known: the set itself)."""

    def line(self, index: int) -> Any:
        return None

    def total(self) -> Any:
        return None


class _X12Locator(_Locator):
    def __init__(self, root: X12Scope) -> None:
        self.root = root

    def line(self, index: int) -> Any:
        for trigger in ("PO1", "IT1"):
            loops = self.root.loops.get(trigger)
            seg = loops[index].trigger if loops and index < len(loops) else None
            if seg is not None:
                return (seg, ElementRef(seg.id, 1))
        return None

    def total(self) -> Any:
        tds = _segment(self.root, "TDS")
        if tds is not None:
            return (tds, ElementRef("TDS", 1))
        amt = _amt_tt(self.root)
        return (amt, ElementRef("AMT", 2)) if amt is not None else None


_XML_LINES = {
    "purchase_order": "ItemOut",
    "po_acknowledgment": "ConfirmationItem",
    "invoice": "InvoiceDetailOrder/InvoiceDetailItem",
}


class _XmlLocator(_Locator):
    def __init__(self, element: Any, document: BaseModel) -> None:
        self.element = element
        self.path = _XML_LINES.get(str(getattr(document, "document_type", "")))

    def line(self, index: int) -> Any:
        if self.path is None:
            return None
        found = self.element.xpath(self.path)
        return found[index] if index < len(found) else None

    def total(self) -> Any:
        found = self.element.xpath("OrderRequestHeader/Total/Money")
        return found[0] if found else self.element


def _segment(scope: X12Scope, sid: str) -> Segment | None:
    found = find(scope, Step(sid), "")
    if isinstance(found, X12Scope):
        return found.trigger
    return found


def _amt_tt(root: X12Scope) -> Segment | None:
    """The ``AMT*TT`` of the CTT loop (the 850's order total)."""
    for ctt in root.loops.get("CTT", ())[:1]:
        for seg in ctt.own.get("AMT", ()):
            if seg.element(1) == "TT":
                return seg
    return None


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _all_hls(scope: X12Scope, out: list[X12Scope] | None = None) -> list[X12Scope]:
    """Every HL scope under ``scope``, depth first in file order (a list: nested generators cost a
    frame per level per HL, and an 856 has thousands)."""
    if out is None:
        out = []
    for hl in scope.loops.get("HL", ()):
        out.append(hl)
        if hl.loops:
            _all_hls(hl, out)
    return out


def _ctt_checks(document: BaseModel, root: X12Scope) -> list[Check]:
    """CTT01 (the number of line items) and CTT02 (the hash of the quantities).

    Partners count in more than one way, and both ways are accepted: in an 856, CTT01 is the
    number of HL segments (the standard's note) or of item levels (as many suppliers send it);
    in an 855, CTT02 sums the PO1 quantities or the ACK quantities.
    """
    ctt = _segment(root, "CTT")
    if ctt is None:
        return []
    hash_sources: list[list[str]]
    if "HL" in root.loops:
        hls = _all_hls(root)
        items = 0
        quantities: list[str] = []
        for hl in hls:  # (one pass, elements read in line: once per HL of a big 856)
            hl_els = hl.trigger[0] if hl.trigger is not None else []
            if len(hl_els) > 3 and hl_els[3] == "I":
                items += 1
            for seg in hl.own.get("SN1", ()):
                els = seg[0]
                quantities.append(els[2] if len(els) > 2 else "")
        counts = {len(hls), items}
        what = f"{len(hls)} HL segments ({items} item levels)"
        hash_sources = [quantities]
    else:
        trigger = "IT1" if "IT1" in root.loops else "PO1"
        lines = root.loops.get(trigger, [])
        counts = {len(lines)}
        what = f"{len(lines)} {trigger} lines"
        hash_sources = [[s.trigger.element(2) for s in lines if s.trigger is not None]]
        acks = [seg.element(2) for s in lines for ack in s.loops.get("ACK", ()) for seg in ack.own.get("ACK", ())]
        if acks:
            hash_sources.append(acks)
    out: list[Check] = []
    stated = _number(ctt.element(1))
    if stated is not None and stated not in counts:
        out.append(Check("BIZ-001", f"CTT01 says {ctt.element(1)} but the set has {what}", _at(ctt, 1)))
    hash_text = ctt.element(2)
    stated_hash = _number(hash_text) if hash_text else None
    if stated_hash is not None:
        sums = [_sum(source) for source in hash_sources]
        known = [total for total in sums if total is not None]
        if known and not any(_hash_matches(stated_hash, total) for total in known):
            out.append(
                Check(
                    "BIZ-002",
                    f"CTT02 hash total {hash_text} differs from the sum of the line quantities ({_plain(known[0])})",
                    _at(ctt, 2),
                )
            )
    return out


def _element(seg: Segment, position: int) -> str:
    els = seg[0]
    return els[position] if position < len(els) else ""


def _sum(texts: list[str]) -> Decimal | None:
    """The sum of the non-empty numbers (None when one is not a number)."""
    total = Decimal(0)
    numbers: dict[str, Decimal | None] = {}  # a big 856 repeats the same few quantities
    for text in texts:
        if not text:
            continue
        value = numbers.get(text, _UNSEEN)
        if value is _UNSEEN:
            value = numbers[text] = _number(text)
        if value is None:
            return None
        total += value
    return total


_UNSEEN: Any = object()


def _hash_matches(stated: Decimal, total: Decimal) -> bool:
    """Equal, or the sum's rightmost digits when it is too long for CTT02 (R, at most 10 digits):
    hash totals are truncated from the left."""
    if stated == total:
        return True
    digits = _plain(abs(total)).replace(".", "")
    return len(digits) > 10 and digits.endswith(_plain(abs(stated)).replace(".", ""))


def _at(seg: Segment, position: int) -> tuple[Segment, ElementRef]:
    return (seg, ElementRef(seg.id, position))


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _duplicate_lines(document: BaseModel, locate: _Locator) -> list[Check]:
    if not isinstance(document, PurchaseOrder | PurchaseOrderAcknowledgment | Invoice):
        return []
    seen: dict[tuple[str | None, str], int] = {}
    out: list[Check] = []
    numbers = [(line.line_number, getattr(line, "po_number", None)) for line in document.lines]
    for index, (number, po) in enumerate(numbers):
        if number is None:
            continue
        key = (po, number)
        if key in seen:
            of = f" of PO {po}" if po else ""
            out.append(
                Check(
                    "BIZ-004",
                    f"line number {number}{of} appears again (lines {seen[key] + 1} and {index + 1})",
                    locate.line(index),
                )
            )
        else:
            seen[key] = index
    return out


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _signed(charge: Any) -> Decimal:
    amount: Decimal = charge.amount.amount
    return -abs(amount) if charge.kind == "allowance" else amount


def _total_checks(document: BaseModel, scope: Any, locate: _Locator) -> list[Check]:
    """PO: the stated total against the lines; X12 810: TDS against lines, charges and taxes."""
    total = getattr(document, "total", None)
    if total is None:
        return []
    if isinstance(document, PurchaseOrder):
        if not document.lines or any(line.unit_price is None for line in document.lines):
            return []
        parts = [_cents(line.quantity.value * line.unit_price.amount) for line in document.lines if line.unit_price]
        candidates = [sum(parts, Decimal(0))]
        what = "the sum of the lines"
    elif isinstance(document, Invoice) and isinstance(scope, X12Scope):
        candidates = _invoice_sums(document)
        what = "the lines, charges, allowances and taxes add up to"
    else:
        return []
    # each line's extension may have been rounded to the cent on the partner's side
    tolerance = max(CENT, Decimal("0.005") * (len(document.lines) + 1))
    stated: Decimal = total.amount
    if any(abs(abs(stated) - abs(expected)) < tolerance for expected in candidates):
        return []
    if isinstance(document, Invoice):
        message = f"TDS01 states {_plain(stated)} but {what} {_plain(candidates[0])}"
    else:
        message = f"the total states {_plain(stated)} but {what} is {_plain(candidates[0])}"
    return [Check("BIZ-003", message, locate.total())]


def _invoice_sums(document: Invoice) -> list[Decimal]:
    """What TDS01 may be, first the plain reading (lines + every charge and allowance + taxes).

    Partners differ, and each reading is accepted: summary SACs and TXIs after TDS may repeat the
    line ones (an invoice's tax total) or add to them (freight); an allowance may be information
    only. The summary TXI is taken as the tax total; line TXIs count only without one.
    """
    lines = sum((_cents(line.quantity.value * line.unit_price.amount) for line in document.lines), Decimal(0))
    taxes_list = document.taxes or [t for line in document.lines for t in line.taxes]
    taxes = sum((t.amount.amount for t in taxes_list), Decimal(0))
    line_charges = [c for line in document.lines for c in line.charges]
    out: list[Decimal] = []
    for with_allowances in (True, False):

        def total(charges: list[Any], allowed: bool = with_allowances) -> Decimal:
            return sum((_signed(c) for c in charges if allowed or c.kind != "allowance"), Decimal(0))

        for line_part, summary_part in ((line_charges, document.charges), ([], document.charges), (line_charges, [])):
            out.append(lines + total(line_part) + total(summary_part) + taxes)
    return out


_LINE_ELEMENTS = ("ItemOut", "ConfirmationItem", "ShipNoticeItem", "InvoiceDetailItemReference")


def _cxml_line_numbers(element: Any) -> list[Check]:
    out: list[Check] = []
    for item in element.iter(*_LINE_ELEMENTS):
        if not (item.get("lineNumber") or "").strip():
            name = etree.QName(item).localname
            out.append(
                Check("BIZ-005", f"<{name}> has no lineNumber: its line cannot be matched to the order line", item)
            )
    return out


__all__ = ["WARNINGS", "Check", "DocumentWarning", "check_document", "default_currency", "has_amounts"]
