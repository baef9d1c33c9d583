"""997, 999 and TA1 acknowledgments built from validation reports.

997 answers 004010 groups, 999 answers 005010 groups; one acknowledgment
set per inbound group, each in an FA group of its own version. A TA1 goes
right after the ISA when ISA14 asks for one or the envelope has errors; an
interchange rejected at the envelope gets the TA1 alone. The envelope
mirrors the inbound one: sender and receiver swapped, same ISA12 and
delimiters.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from gateway.errors import ConfigError, DocumentError, Location
from gateway.x12.findings import Finding, Level
from gateway.x12.isa import valid_hhmm, valid_yymmdd
from gateway.x12.segment import Delimiters, is_digits
from gateway.x12.validate.report import ACK_CODES, GroupReport, InterchangeReport, Outcome, SetReport
from gateway.x12.writer import ControlSequence, OutGroup, OutInterchange, OutSet, Party, Serialized, write_interchange

if TYPE_CHECKING:
    from gateway.x12.ack.answers import Answers, GroupAnswers

#: GS08 of the acknowledgment group by kind.
ACK_VERSIONS = {"997": "004010", "999": "005010X231A1"}
DEFAULT_DELIMITERS = Delimiters("*", ":", "^", "~", "\n")

_4010_716 = ("1", "2", "3", "4", "5", "6", "10", "11", "12", "13", "14", "15", "16", "17", "18", "23", "24", "25", "26")
_4010_718 = (*(str(n) for n in range(1, 14)), "15", "16", "17", "23", "24", "25", "26", "27")
#: Codes each acknowledgment element may carry, from the code lists of its version (997: 004010, elements
#: 720, 723, 718, 716; 999: 005010, elements 620, 621, 618, 716; TA1: I18). tests/x12/test_ack.py checks
#: them against gateway/x12/definitions, and that every finding's code maps into them.
VALID_CODES: dict[str, frozenset[str]] = {
    "AK304": frozenset(str(n) for n in range(1, 9)),
    "AK403": frozenset(str(n) for n in range(1, 11)),
    "AK502": frozenset(_4010_718),
    "AK905": frozenset(_4010_716),
    "IK304": frozenset([*(str(n) for n in range(1, 9)), "I4", "I6", "I7", "I8", "I9"]),
    "IK403": frozenset([*(str(n) for n in range(1, 14)), "I6", "I9", "I10", "I11", "I12", "I13"]),
    "IK502": frozenset([*_4010_718, "18", "19", "I5", "I6"]),
    "999/AK905": frozenset([*_4010_716, "19"]),
    "TA105": frozenset(f"{n:03d}" for n in range(32)),
}
#: 005010 codes (and 999 I-codes) that 004010 lacks, written in a 997 as the nearest 004010 code.
NEAREST_4010: dict[str, dict[str, str]] = {
    # set not in this functional group; bad implementation reference: the set identifier is wrong here
    "AK502": {"18": "6", "19": "6", "I5": "6", "I6": "5"},
    # group control number not unique within the interchange: the control number is wrong
    "AK905": {"19": "6"},
    # too many repetitions / components (004010 has neither): too many data elements
    "AK403": {"12": "3", "13": "3", "I6": "7", "I9": "1", "I10": "3", "I11": "3", "I12": "7", "I13": "2"},
    # segments a partner's guide requires or excludes: mandatory segment missing / unexpected segment
    "AK304": {"I4": "2", "I6": "3", "I7": "2", "I8": "2", "I9": "3"},
}
#: What a code no list knows becomes (optional positions without a fallback drop the code).
_FALLBACK = {"AK304": "8", "IK304": "8", "AK403": "7", "IK403": "7", "TA105": "024"}


class TA1Policy(StrEnum):
    """When to send a TA1."""

    NEVER = "never"
    ON_ERROR = "on_error"  # on envelope errors or when ISA14 asks
    ALWAYS = "always"


def ack_kind(group_version: str) -> str:
    """``997`` for groups before 005010, ``999`` from 005010 on."""
    return "999" if group_version[:6] >= "005010" else "997"


def ack_code(kind: str, where: str, code: str) -> str | None:
    """``code`` as acknowledgment ``kind`` (``997``, ``999``, ``TA1``) may write it at ``where``.

    ``where`` is the 997 name of the position (``AK304``, ``AK403``, ``AK502``, ``AK905``, ``TA105``). A
    code valid for the acknowledgment's version is kept; a 005010 code in a 997 becomes the nearest
    004010 code (``AK502=18`` → ``6``, ``AK905=19`` → ``6``); an unknown code becomes the position's
    generic code, or None (left out) where the position is optional and has none.
    """
    key = where
    if kind == "999":
        key = "999/AK905" if where == "AK905" else "IK" + where[2:] if where.startswith("AK") else where
    valid = VALID_CODES[key]
    if code in valid:
        return code
    if kind == "997":
        nearest = NEAREST_4010.get(where, {}).get(code)
        if nearest is not None:
            return nearest
    return _FALLBACK.get(key)


def _codes(kind: str, where: str, codes: Iterable[str]) -> list[str]:
    """Valid codes for ``where`` (AK502..AK506, AK905..AK909), each once, at most five."""
    out: list[str] = []
    for code in codes:
        valid = ack_code(kind, where, code)
        if valid is not None and valid not in out:
            out.append(valid)
    return out[:5]


def _clean(value: str, delimiters: Delimiters) -> str:
    """A copy of bad data safe to embed (AK404): delimiters removed, 99 characters at most."""
    return "".join(ch for ch in value if ch not in delimiters.chars())[:99]


def _interchange_error(ic: InterchangeReport) -> Finding | None:
    return next((f for f in ic.findings if f.is_error and f.rule.level is Level.INTERCHANGE), None)


def ta1_segment(ic: InterchangeReport, *, duplicate: bool = False) -> list[str]:
    """The TA1 for an interchange: accepted, accepted with errors or rejected, with a note code.
    ``duplicate``: rejected with note 025 (duplicate interchange control number).

    TA101-TA103 echo ISA13, ISA09 and ISA10; raises :class:`DocumentError` (``X12-A002``) when one of
    them cannot be echoed validly (not 9 digits, not a date or time): no valid TA1 can name the
    interchange, and the caller records why none was sent."""
    error = _interchange_error(ic)
    noted = next((f for f in ic.findings if f.rule.level is Level.INTERCHANGE), None)
    if duplicate:
        code, note = "R", "025"
    elif error is not None:
        code, note = "R", error.ack_code or error.rule.ack or "024"
    elif noted is not None:
        code, note = "E", noted.ack_code or noted.rule.ack or "000"
    else:
        code, note = "A", "000"
    blocker = ta1_blocker(ic)
    if blocker is not None:
        raise blocker
    h = ic.header
    return ["TA1", h.control_number, h.date, h.time, code, ack_code("TA1", "TA105", note) or "024"]


def ta1_blocker(ic: InterchangeReport) -> DocumentError | None:
    """Why no valid TA1 can answer ``ic`` (``X12-A002``: its ISA13, ISA09 or ISA10 cannot be echoed
    in TA101-TA103), or None when one can."""
    h = ic.header
    echo = [(13, h.control_number, is_control), (9, h.date, valid_yymmdd), (10, h.time, valid_hhmm)]
    for n, value, check in echo:
        if not check(value):
            need = "9 digits" if n == 13 else "a date YYMMDD" if n == 9 else "a time HHMM"
            return DocumentError(
                f"no valid TA1 can be written for this interchange: ISA{n:02d} {value!r} cannot be echoed "
                f"in the TA1 (TA1 needs {need})",
                "X12-A002",
                Location(segment_id="ISA", element=n, interchange=h.control_number),
            )
    return None


def is_control(value: str) -> bool:
    """True for a 9-digit interchange control number."""
    return len(value) == 9 and is_digits(value)


def _set_ack(report: SetReport, kind: str, delimiters: Delimiters) -> list[list[str]]:
    h = report.header
    prefix3, prefix4, prefix5 = ("IK3", "IK4", "IK5") if kind == "999" else ("AK3", "AK4", "AK5")
    ak2 = ["AK2", h.set_id, h.control_number]
    if kind == "999" and h.implementation:
        ak2.append(h.implementation)
    out = [ak2]
    errors = [f for f in report.findings if f.is_error]
    # A finding the partner's profile accepts is still reported (AK5/IK5 E), so the partner sees it.
    noted = [f for f in report.findings if f.is_error or f.waived is not None]
    by_segment: dict[tuple[int, str], list[Finding]] = {}
    set_codes: list[str] = []
    for f in noted:
        level = f.rule.level
        if level is Level.SET:
            set_codes.append(f.rule.ack or "5")
        elif level in (Level.SEGMENT, Level.ELEMENT) and f.location.segment_index is not None:
            seg_id = f.location.segment_id or ""
            by_segment.setdefault((f.location.segment_index, seg_id), []).append(f)
    for (position, seg_id), found in sorted(by_segment.items()):
        seg_level = [f for f in found if f.rule.level is Level.SEGMENT]
        first = seg_level[0] if seg_level else None
        code = _code(first, kind, "AK304") if first else "8"
        loop = (found[0].location.loop or "").rsplit("/", 1)[-1]
        # AK301 is an ID of 2-3 characters: an unrecognised id is echoed as far as it fits
        out.append([prefix3, _clean(seg_id, delimiters)[:3], str(position), loop, code])
        for f in found:
            if f.rule.level is not Level.ELEMENT or f.location.element is None:
                continue
            where = str(f.location.element)
            if f.location.component is not None:
                where += delimiters.component + str(f.location.component)
            ak4 = [prefix4, where, f.element_ref or "", _code(f, kind, "AK403")]
            if f.value:
                ak4.append(_clean(f.value, delimiters))
            out.append(ak4)
    if by_segment:
        set_codes.append("5")
    status = "R" if errors else "E" if noted else "A"
    out.append([prefix5, status, *_codes(kind, "AK502", set_codes)])
    return out


def _code(f: Finding, kind: str, where: str) -> str:
    """The AK304/AK403 (IK304/IK403) code of ``f``, valid for ``kind``'s version."""
    rule = f.rule
    code = rule.ack999 if kind == "999" and rule.ack999 else f.ack_code or rule.ack or _FALLBACK[where]
    return ack_code(kind, where, code) or _FALLBACK[where]


def functional_ack(
    group: GroupReport, kind: str, delimiters: Delimiters, answers: GroupAnswers | None = None
) -> OutSet:
    """The 997/999 transaction set acknowledging one group (from its set reports, or from ``answers``
    written as its sets ended when the reports were not kept)."""
    h = group.header
    ak1 = ["AK1", h.functional_id, h.control_number]
    if kind == "999":
        ak1.append(h.version)
    body: list[list[str] | Serialized] = [ak1]
    if answers is not None:
        body.append(answers.serialized())
        set_errors = answers.errors
    else:
        for report in group.sets:
            body.extend(_set_ack(report, kind, delimiters))
        set_errors = any(f.is_error or f.waived is not None for s in group.sets for f in s.findings)
    group_codes = [f.rule.ack or "" for f in group.findings if f.is_error and f.rule.level is Level.GROUP]
    outcome = group.outcome
    if (
        outcome is Outcome.ACCEPTED_WITH_ERRORS
        and not set_errors
        and not any(f.waived is not None for f in group.findings)
    ):
        outcome = Outcome.ACCEPTED  # warnings are ours, not the partner's errors (accepted ones are theirs)
    included = (
        group.trailer.element(1) if group.trailer is not None and group.trailer.element(1) else str(group.set_count)
    )
    body.append(
        [
            "AK9",
            ACK_CODES[outcome],
            included,
            str(group.received),
            str(group.accepted_count),
            *_codes(kind, "AK905", [c for c in group_codes if c]),
        ]
    )
    return OutSet(kind, body, "005010X231A1" if kind == "999" else None)


def _outbound_delimiters(inbound: Delimiters) -> Delimiters:
    """The inbound delimiters when we can write with them, else :data:`DEFAULT_DELIMITERS`.

    A letter, digit or space (or a multi-byte or repeated character) cannot delimit what we write:
    ISA fields are space-padded and values hold letters and digits. The acknowledgment of such an
    interchange (a TA1 rejecting it) is written with the defaults instead."""
    chars = [inbound.element, inbound.component, inbound.segment, *([inbound.repetition] if inbound.repetition else [])]
    usable = all(len(c) == 1 and c.isascii() and not c.isalnum() and c != " " for c in chars)
    if usable and len(set(chars)) == len(chars) and inbound.element not in "\r\n":
        return inbound
    return DEFAULT_DELIMITERS


def build_acks(
    ic: InterchangeReport,
    next_control: ControlSequence,
    when: datetime,
    *,
    functional: bool = True,
    ta1: TA1Policy = TA1Policy.ON_ERROR,
    duplicate: bool = False,
    answers: Answers | None = None,
) -> bytes | None:
    """The acknowledgment interchange for ``ic``, or None when nothing is to be sent.

    ``duplicate``: the interchange repeats one already received (same sender and ISA13); unless TA1s
    are off it gets a TA1 rejecting it with note 025 and nothing else (its sets were not processed).
    ``answers``: the sets' answers written as they ended, for groups whose reports were not kept."""
    h = ic.header
    for group in ic.groups:
        if group.received != len(group.sets) and (answers is None or answers.get(group.header) is None):
            raise ConfigError("acknowledgments need every set report: validate with keep_sets=True", "X12-A001")
    delimiters = _outbound_delimiters(h.delimiters)
    send_ta1 = ta1 is TA1Policy.ALWAYS or (
        ta1 is TA1Policy.ON_ERROR and (duplicate or h.ack_requested or _interchange_error(ic) is not None)
    )
    out = OutInterchange(
        # an over-long inbound id (read leniently) must not stop the TA1 that rejects it
        sender=Party(h.receiver_qualifier[:2], h.receiver_id[:15]),
        receiver=Party(h.sender_qualifier[:2], h.sender_id[:15]),
        version=h.version if len(h.version) == 5 and h.version.isdigit() else "00401",
        usage=h.usage if h.usage in ("P", "T", "I") else "P",
    )
    if send_ta1:
        out.service_segments.append(ta1_segment(ic, duplicate=duplicate))
    if functional and ic.accepted and not duplicate:
        out.groups.extend(_fa_groups(ic.groups, delimiters, answers))
    if not out.groups and not out.service_segments:
        return None
    return write_interchange(out, delimiters, next_control, when)


def _fa_groups(groups: Iterable[GroupReport], delimiters: Delimiters, answers: Answers | None) -> list[OutGroup]:
    by_kind: dict[tuple[str, str, str], OutGroup] = {}
    for group in groups:
        kind = ack_kind(group.header.version)
        key = (kind, group.header.receiver_id, group.header.sender_id)
        if key not in by_kind:
            by_kind[key] = OutGroup("FA", group.header.receiver_id, group.header.sender_id, ACK_VERSIONS[kind])
        kept = answers.get(group.header) if answers is not None and group.received != len(group.sets) else None
        by_kind[key].sets.append(functional_ack(group, kind, delimiters, kept))
    return list(by_kind.values())
