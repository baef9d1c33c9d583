"""Writing X12: segments to a complete interchange with correct envelopes.

Pure: the caller passes the time (``when``) and a control-number sequence
(``next_control(kind)`` for ``"interchange"``, ``"group"``, ``"set"``); the
store that persists those sequences lives at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.errors import DocumentError, Location
from gateway.x12.segment import Delimiters

ControlSequence = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class Party:
    """An ISA qualifier + id pair (``ZZ`` / ``ACMEHOSP``)."""

    qualifier: str
    id: str


@dataclass(frozen=True, slots=True)
class Serialized:
    """Body segments already written (``count`` of them, each with its terminator), kept as bytes: a big
    acknowledgment's per-set answers take a few bytes each this way instead of a list per segment."""

    data: bytes
    count: int


Body = list[str] | Serialized


@dataclass(slots=True)
class OutSet:
    """A transaction set to write: its id and body segments (without ST/SE)."""

    set_id: str
    segments: Sequence[Body]
    implementation: str | None = None  # ST03 (005010 on)


@dataclass(slots=True)
class OutGroup:
    """A functional group to write."""

    functional_id: str
    sender: str
    receiver: str
    version: str  # GS08, e.g. 004010 or 005010X231A1
    sets: list[OutSet] = field(default_factory=list)


@dataclass(slots=True)
class OutInterchange:
    """An interchange to write. ``version`` is ISA12 (``00401``, ``00501``)."""

    sender: Party
    receiver: Party
    version: str = "00401"
    usage: str = "P"
    ack_requested: bool = False
    groups: list[OutGroup] = field(default_factory=list)
    service_segments: list[list[str]] = field(default_factory=list)  # TA1s, right after the ISA
    auth: tuple[str, str] = ("00", "")
    security: tuple[str, str] = ("00", "")


def _pad(value: str, width: int) -> str:
    if len(value) > width:
        raise DocumentError(f"{value!r} is longer than the ISA field width {width}", "X12-W002")
    return value.ljust(width)


def interchange_segments(
    ic: OutInterchange, delimiters: Delimiters, next_control: ControlSequence, when: datetime
) -> list[Body]:
    """The interchange as a list of segments (element lists), counts and controls filled in."""
    isa13 = f"{next_control('interchange'):09d}"
    if len(isa13) > 9:
        raise DocumentError("interchange control number exceeds 9 digits", "X12-W003")
    isa11 = delimiters.repetition if ic.version >= "00402" and delimiters.repetition else "U"
    out: list[Body] = [
        [
            "ISA",
            _pad(ic.auth[0], 2),
            _pad(ic.auth[1], 10),
            _pad(ic.security[0], 2),
            _pad(ic.security[1], 10),
            _pad(ic.sender.qualifier, 2),
            _pad(ic.sender.id, 15),
            _pad(ic.receiver.qualifier, 2),
            _pad(ic.receiver.id, 15),
            when.strftime("%y%m%d"),
            when.strftime("%H%M"),
            isa11,
            ic.version,
            isa13,
            "1" if ic.ack_requested else "0",
            ic.usage,
            delimiters.component,
        ]
    ]
    out.extend(list(s) for s in ic.service_segments)
    for group in ic.groups:
        gs06 = str(next_control("group"))
        out.append(
            [
                "GS",
                group.functional_id,
                group.sender,
                group.receiver,
                when.strftime("%Y%m%d"),
                when.strftime("%H%M"),
                gs06,
                "X",
                group.version,
            ]
        )
        for out_set in group.sets:
            st02 = f"{next_control('set'):04d}"
            st = ["ST", out_set.set_id, st02] + ([out_set.implementation] if out_set.implementation else [])
            out.append(st)
            out.extend(s if isinstance(s, Serialized) else list(s) for s in out_set.segments)
            count = sum(s.count if isinstance(s, Serialized) else 1 for s in out_set.segments)
            out.append(["SE", str(count + 2), st02])
        out.append(["GE", str(len(group.sets)), gs06])
    out.append(["IEA", str(len(ic.groups)), isa13])
    return out


def serialize(segments: Sequence[Sequence[str] | Serialized], delimiters: Delimiters) -> bytes:
    """Segments to bytes; trailing empty elements are trimmed, delimiters in data refused.
    :class:`Serialized` segments (written by this function before) are copied as they are."""
    forbidden = set(delimiters.chars())
    term = delimiters.segment + delimiters.suffix
    lines: list[str] = []
    for n, seg in enumerate(segments, 1):
        if isinstance(seg, Serialized):
            if seg.count:
                lines.append(seg.data.decode("utf-8").removesuffix(term))
            continue
        elements = list(seg)
        if elements[0] != "ISA":
            while len(elements) > 1 and elements[-1] == "":
                elements.pop()
        for pos, value in enumerate(elements):
            if pos == 16 and elements[0] == "ISA":
                continue
            if not forbidden.isdisjoint(value) and not _composite_ok(value, delimiters):  # (C, not a generator)
                raise DocumentError(
                    f"{elements[0]}{pos:02d} value {value!r} contains a delimiter character",
                    "X12-W001",
                    Location(segment_id=elements[0], element=pos, interchange_index=n),
                )
        lines.append(delimiters.element.join(elements))
    return (term.join(lines) + term).encode("utf-8")


def _composite_ok(value: str, delimiters: Delimiters) -> bool:
    """Composite and repeated values legitimately carry the component/repetition separators."""
    hard = {delimiters.element, delimiters.segment}
    return not any(ch in hard for ch in value)


def write_interchange(
    ic: OutInterchange, delimiters: Delimiters, next_control: ControlSequence, when: datetime
) -> bytes:
    """A complete interchange as bytes."""
    return serialize(interchange_segments(ic, delimiters, next_control, when), delimiters)
