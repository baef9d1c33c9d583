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

from gateway.errors import ConfigError
from gateway.x12.findings import Finding, Level
from gateway.x12.segment import Delimiters
from gateway.x12.validate.report import ACK_CODES, GroupReport, InterchangeReport, Outcome, SetReport
from gateway.x12.writer import ControlSequence, OutGroup, OutInterchange, OutSet, Party, Serialized, write_interchange

if TYPE_CHECKING:
    from gateway.x12.ack.answers import Answers, GroupAnswers

#: GS08 of the acknowledgment group by kind.
ACK_VERSIONS = {"997": "004010", "999": "005010X231A1"}
DEFAULT_DELIMITERS = Delimiters("*", ":", "^", "~", "\n")


class TA1Policy(StrEnum):
    """When to send a TA1."""

    NEVER = "never"
    ON_ERROR = "on_error"  # on envelope errors or when ISA14 asks
    ALWAYS = "always"


def ack_kind(group_version: str) -> str:
    """``997`` for groups before 005010, ``999`` from 005010 on."""
    return "999" if group_version[:6] >= "005010" else "997"


def _clean(value: str, delimiters: Delimiters) -> str:
    """A copy of bad data safe to embed (AK404): delimiters removed, 99 characters at most."""
    return "".join(ch for ch in value if ch not in delimiters.chars())[:99]


def _interchange_error(ic: InterchangeReport) -> Finding | None:
    return next((f for f in ic.findings if f.is_error and f.rule.level is Level.INTERCHANGE), None)


def ta1_segment(ic: InterchangeReport, *, duplicate: bool = False) -> list[str]:
    """The TA1 for an interchange: accepted, accepted with errors or rejected, with a note code.
    ``duplicate``: rejected with note 025 (duplicate interchange control number)."""
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
    h = ic.header
    return ["TA1", h.control_number, h.date, h.time, code, note]


def _set_ack(report: SetReport, kind: str, delimiters: Delimiters) -> list[list[str]]:
    h = report.header
    prefix3, prefix4, prefix5 = ("IK3", "IK4", "IK5") if kind == "999" else ("AK3", "AK4", "AK5")
    ak2 = ["AK2", h.set_id, h.control_number]
    if kind == "999" and h.implementation:
        ak2.append(h.implementation)
    out = [ak2]
    errors = [f for f in report.findings if f.is_error]
    by_segment: dict[tuple[int, str], list[Finding]] = {}
    set_codes: list[str] = []
    for f in errors:
        level = f.rule.level
        if level is Level.SET:
            code = f.rule.ack or "5"
            if code not in set_codes:
                set_codes.append(code)
        elif level in (Level.SEGMENT, Level.ELEMENT) and f.location.segment_index is not None:
            seg_id = f.location.segment_id or ""
            by_segment.setdefault((f.location.segment_index, seg_id), []).append(f)
    for (position, seg_id), found in sorted(by_segment.items()):
        seg_level = [f for f in found if f.rule.level is Level.SEGMENT]
        first = seg_level[0] if seg_level else None
        code = _code(first, kind) if first else "8"
        loop = (found[0].location.loop or "").rsplit("/", 1)[-1]
        # AK301 is an ID of 2-3 characters: an unrecognised id is echoed as far as it fits
        out.append([prefix3, _clean(seg_id, delimiters)[:3], str(position), loop, code])
        for f in found:
            if f.rule.level is not Level.ELEMENT or f.location.element is None:
                continue
            where = str(f.location.element)
            if f.location.component is not None:
                where += delimiters.component + str(f.location.component)
            ak4 = [prefix4, where, f.element_ref or "", _code(f, kind)]
            if f.value:
                ak4.append(_clean(f.value, delimiters))
            out.append(ak4)
    if by_segment and "5" not in set_codes:
        set_codes.append("5")
    status = "R" if errors else "A"
    out.append([prefix5, status, *set_codes[:5]])
    return out


def _code(f: Finding, kind: str) -> str:
    rule = f.rule
    if kind == "999" and rule.ack999:
        return rule.ack999
    return f.ack_code or rule.ack or "8"


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
        set_errors = any(f.is_error for s in group.sets for f in s.findings)
    group_codes = [f.rule.ack or "" for f in group.findings if f.is_error and f.rule.level is Level.GROUP]
    outcome = group.outcome
    if outcome is Outcome.ACCEPTED_WITH_ERRORS and not set_errors:
        outcome = Outcome.ACCEPTED  # warnings are ours, not the partner's errors
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
            *[c for c in group_codes if c][:5],
        ]
    )
    return OutSet(kind, body, "005010X231A1" if kind == "999" else None)


def _outbound_delimiters(inbound: Delimiters) -> Delimiters:
    chars = [inbound.element, inbound.component, inbound.segment, inbound.repetition or "^"]
    if all(len(c) == 1 and c.isascii() for c in chars):
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
