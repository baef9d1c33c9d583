"""Reading the fixed-width ISA: delimiters and interchange header values.

The ISA is 106 characters with the element separator at fixed places, the
component separator at ISA16 and the segment terminator right after it.
Files in the wild break this (unpadded fields, lines wrapped at 80 columns,
a multi-byte terminator); :func:`scan_isa` still reads those, and reports
each deviation as a located finding so strictness is the caller's policy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from gateway.errors import Location
from gateway.x12.findings import Finding
from gateway.x12.segment import Delimiters, is_digits

ISA_LENGTH = 106
#: Offsets of the 16 element separators inside a fixed-width ISA.
SEPARATOR_OFFSETS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
#: Width of ISA01..ISA16.
FIELD_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
#: TA1 note code for a malformed ISA field, by field number.
FIELD_TA1 = {
    1: "010",
    2: "011",
    3: "012",
    4: "013",
    5: "005",
    6: "006",
    7: "007",
    8: "008",
    9: "014",
    10: "015",
    11: "016",
    12: "017",
    13: "018",
    14: "019",
    15: "020",
    16: "027",
}
NEWLINES = "\r\n"


@dataclass(slots=True)
class IsaScan:
    """What :func:`scan_isa` read.

    ``length`` is how many characters of the input the ISA took, terminator
    and its suffix included; ``wrapped`` means line breaks inside segments
    are formatting (fixed-width records) and must be removed.
    """

    elements: list[str]
    delimiters: Delimiters
    length: int
    wrapped: bool = False
    findings: list[Finding] = field(default_factory=list)


class NotIsa(Exception):
    """The text at this place is not an ISA segment; ``reason`` says why."""

    def __init__(self, reason: str, need_more: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.need_more = need_more


def _fixed_fields(text: str) -> list[str]:
    """ISA01..ISA16 of a fixed-width ISA."""
    fields = [text[a + 1 : b] for a, b in itertools.pairwise(SEPARATOR_OFFSETS)]
    return [*fields, text[104]]


def _is_fixed(text: str) -> bool:
    if len(text) < ISA_LENGTH or not text.startswith("ISA"):
        return False
    sep = text[3]
    return all(text[i] == sep for i in SEPARATOR_OFFSETS)


def _terminator_at(text: str, i: int, offset: int, findings: list[Finding]) -> str:
    """The terminator starting at ``text[i]``; multi-byte UTF-8 is read whole."""
    if i >= len(text):
        raise NotIsa("the file ends before the ISA segment terminator", need_more=True)
    ch = text[i]
    lead = ord(ch)
    if 0xC2 <= lead <= 0xF4:
        width = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        raw = text[i : i + width]
        try:
            decoded = raw.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            decoded = ""
        if len(decoded) == 1:
            findings.append(
                Finding(
                    "X12-R003",
                    f"segment terminator is the multi-byte character U+{ord(decoded):04X}; "
                    "X12 delimiters are single bytes",
                    Location(segment_id="ISA", byte_offset=offset + i),
                    value=decoded,
                )
            )
            return raw
    return ch


def _suffix_after(text: str, i: int, terminator: str) -> str:
    """Whitespace that follows the terminator (kept to write files back alike)."""
    if terminator in NEWLINES:
        return "\n" if terminator == "\r" and text[i : i + 1] == "\n" else ""
    if text[i : i + 2] == "\r\n":
        return "\r\n"
    if text[i : i + 1] in ("\n", "\r", " "):
        return text[i]
    return ""


def scan_isa(text: str, offset: int = 0) -> IsaScan:
    """Read the ISA at the start of ``text``; ``offset`` is its byte offset in the file.

    Raises :class:`NotIsa` when ``text`` does not start with an ISA, or
    when more input is needed (``need_more``).
    """
    if not text.startswith("ISA"):
        raise NotIsa("no ISA segment here", need_more=len(text) < 3 and "ISA".startswith(text))
    findings: list[Finding] = []
    if _is_fixed(text):
        elements = ["ISA", *_fixed_fields(text)]
        terminator = _terminator_at(text, 105, offset, findings)
        end = 105 + len(terminator)
        suffix = _suffix_after(text, end, terminator)
        return _finish(text[3], elements, terminator, suffix, end + len(suffix), False, findings, offset)
    window = text[:400]
    flat = window.replace("\r", "").replace("\n", "")
    if _is_fixed(flat) and flat[105] not in NEWLINES:
        # Fixed-width records: the ISA is intact once line breaks are removed.
        raw_end = _raw_index(window, 106)
        elements = ["ISA", *_fixed_fields(flat)]
        return _finish(flat[3], elements, flat[105], "", raw_end, True, findings, offset)
    return _scan_lenient(text, offset, findings)


def _raw_index(window: str, flat_count: int) -> int:
    """Index in ``window`` just past its first ``flat_count`` non-newline characters."""
    seen = 0
    for i, ch in enumerate(window):
        if ch not in NEWLINES:
            seen += 1
            if seen == flat_count:
                return i + 1
    raise NotIsa("the file ends inside the ISA segment", need_more=True)


def _scan_lenient(text: str, offset: int, findings: list[Finding]) -> IsaScan:
    """Read an ISA whose fields are not at their fixed places, by separators."""
    if len(text) < 4:
        raise NotIsa("the file ends inside the ISA segment", need_more=True)
    sep = text[3]
    if sep.isalnum() or sep in NEWLINES or sep == " ":
        raise NotIsa(f"character after 'ISA' is {sep!r}, not a data element separator")
    positions = [3]
    i = 3
    while len(positions) < 16:
        i = text.find(sep, i + 1)
        if i < 0 or i > 400:
            raise NotIsa("ISA has fewer than 16 elements", need_more=i < 0 and len(text) < 400)
        positions.append(i)
    comp_at = positions[-1] + 1
    if comp_at >= len(text):
        raise NotIsa("the file ends inside the ISA segment", need_more=True)
    elements = ["ISA"] + [text[a + 1 : b] for a, b in itertools.pairwise(positions)]
    elements.append(text[comp_at])
    terminator = _terminator_at(text, comp_at + 1, offset, findings)
    end = comp_at + 1 + len(terminator)
    suffix = _suffix_after(text, end, terminator)
    for n, (value, width) in enumerate(zip(elements[1:], FIELD_WIDTHS, strict=False), start=1):
        if len(value) != width:
            findings.append(
                Finding(
                    "X12-R002",
                    f"ISA{n:02d} is {len(value)} bytes, the fixed width is {width}",
                    Location(segment_id="ISA", byte_offset=offset, element=n),
                    value=_display(value),
                    ack_code=FIELD_TA1[n],
                )
            )
    return _finish(sep, elements, terminator, suffix, end + len(suffix), False, findings, offset)


def _display(value: str) -> str:
    """Latin-1 decoded bytes shown as the UTF-8 text they most likely are."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _finish(
    sep: str,
    elements: list[str],
    terminator: str,
    suffix: str,
    length: int,
    wrapped: bool,
    findings: list[Finding],
    offset: int,
) -> IsaScan:
    component = elements[16]
    version = elements[12]
    repetition: str | None = None
    isa11 = elements[11]
    if version >= "00402" and len(isa11) == 1 and not isa11.isalnum() and isa11 != " ":
        repetition = isa11
    loc = Location(segment_id="ISA", byte_offset=offset)
    # A letter, digit or space cannot delimit: ISA fields are space-padded and values hold letters and
    # digits, so the data cannot be read reliably (and no acknowledgment could be written with it).
    if _unusable(sep):
        findings.append(
            Finding(
                "X12-R004",
                f"data element separator {sep!r} is a letter, a digit or a space",
                Location(segment_id="ISA", byte_offset=offset + 3),
                value=sep,
            )
        )
    if _unusable(terminator) or terminator in (sep, component):
        findings.append(Finding("X12-R003", f"segment terminator {terminator!r} is not usable", loc, value=terminator))
    if _unusable(component) or component in (sep, terminator):
        findings.append(
            Finding(
                "X12-R005",
                f"component separator (ISA16) {component!r} is a letter, a digit, a space or another delimiter",
                Location(segment_id="ISA", byte_offset=offset, element=16),
                value=component,
            )
        )
    delimiters = Delimiters(sep, component, repetition, terminator, suffix)
    return IsaScan(elements, delimiters, length, wrapped, findings)


def _unusable(delimiter: str) -> bool:
    """True for a letter, a digit or a space: characters that occur in data."""
    return delimiter.isalnum() or delimiter == " "


def check_isa_values(elements: list[str], offset: int) -> list[Finding]:
    """Findings for ISA values that are wrong whatever the partner (TA1 codes)."""
    found: list[Finding] = []

    def bad(code: str, n: int, message: str) -> None:
        found.append(
            Finding(code, message, Location(segment_id="ISA", byte_offset=offset, element=n), value=elements[n])
        )

    if not (len(elements[13]) == 9 and is_digits(elements[13])):
        bad("X12-I004", 13, "ISA13 interchange control number must be 9 digits")
    if elements[14] not in ("0", "1"):
        bad("X12-I005", 14, "ISA14 acknowledgment requested must be 0 or 1")
    if elements[15] not in ("P", "T", "I"):
        bad("X12-I006", 15, "ISA15 usage indicator must be P (production), T (test) or I (information)")
    if not valid_yymmdd(elements[9]):
        bad("X12-I007", 9, "ISA09 interchange date must be YYMMDD")
    if not valid_hhmm(elements[10]):
        bad("X12-I008", 10, "ISA10 interchange time must be HHMM")
    if not (len(elements[12]) == 5 and is_digits(elements[12])):
        bad("X12-I003", 12, "ISA12 interchange version must be 5 digits, e.g. 00401 or 00501")
    if not elements[6].strip():
        bad("X12-I010", 6, "ISA06 interchange sender id is blank")
    if not elements[8].strip():
        bad("X12-I011", 8, "ISA08 interchange receiver id is blank")
    return found


_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def valid_month_day(month: int, day: int, year: int | None) -> bool:
    """True for a real calendar day (29 February only in leap years when known)."""
    if not 1 <= month <= 12 or day < 1 or day > _DAYS[month - 1]:
        return False
    if month == 2 and day == 29 and year is not None:
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


def valid_yymmdd(value: str) -> bool:
    """True for a YYMMDD date."""
    return len(value) == 6 and is_digits(value) and valid_month_day(int(value[2:4]), int(value[4:]), None)


def valid_hhmm(value: str) -> bool:
    """True for an HHMM time."""
    return len(value) == 4 and is_digits(value) and int(value[:2]) < 24 and int(value[2:]) < 60
