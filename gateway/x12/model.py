"""Envelope headers and the events the streaming reader produces.

The reader (:func:`gateway.x12.reader.read_events`) yields, in file order,
the events below and, for every segment inside a transaction set, the
:class:`~gateway.x12.segment.Segment` itself (no wrapper: there are
millions of those). Start events come before a unit's segments, end events
after its trailer, each with the findings that belong to that unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.x12.findings import Finding
from gateway.x12.segment import Delimiters, Segment


@dataclass(slots=True)
class InterchangeHeader:
    """The ISA, read. ``control_number`` is ISA13 verbatim (leading zeros kept)."""

    segment: Segment
    delimiters: Delimiters
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    date: str
    time: str
    version: str
    control_number: str
    ack_requested: bool
    usage: str

    @classmethod
    def from_segment(cls, segment: Segment, delimiters: Delimiters) -> InterchangeHeader:
        """Build from an ISA segment (ids stripped of their padding)."""
        e = segment.elements
        return cls(
            segment=segment,
            delimiters=delimiters,
            sender_qualifier=e[5].strip(),
            sender_id=e[6].strip(),
            receiver_qualifier=e[7].strip(),
            receiver_id=e[8].strip(),
            date=e[9],
            time=e[10],
            version=e[12],
            control_number=e[13],
            ack_requested=e[14] == "1",
            usage=e[15],
        )

    @property
    def is_test(self) -> bool:
        """ISA15 is T (test)."""
        return self.usage == "T"


@dataclass(slots=True)
class GroupHeader:
    """The GS, read. ``version`` is GS08 as sent (e.g. ``004010VICS``)."""

    segment: Segment
    functional_id: str
    sender_id: str
    receiver_id: str
    date: str
    time: str
    control_number: str
    agency: str
    version: str

    @classmethod
    def from_segment(cls, segment: Segment) -> GroupHeader:
        """Build from a GS segment."""
        el = segment.element
        return cls(segment, el(1), el(2), el(3), el(4), el(5), el(6), el(7), el(8))


@dataclass(slots=True)
class SetHeader:
    """The ST, read, with the envelopes it sits in (``group`` is None when orphaned)."""

    segment: Segment
    set_id: str
    control_number: str
    implementation: str | None
    group: GroupHeader | None
    interchange: InterchangeHeader

    @classmethod
    def from_segment(cls, segment: Segment, group: GroupHeader | None, interchange: InterchangeHeader) -> SetHeader:
        """Build from an ST segment."""
        return cls(segment, segment.element(1), segment.element(2), segment.element(3) or None, group, interchange)


@dataclass(slots=True)
class InterchangeStart:
    """An ISA was read."""

    header: InterchangeHeader
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class InterchangeEnd:
    """The interchange is over (``trailer`` is the IEA, None when missing)."""

    header: InterchangeHeader
    trailer: Segment | None
    group_count: int
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class GroupStart:
    """A GS was read."""

    header: GroupHeader
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class GroupEnd:
    """The group is over (``trailer`` is the GE, None when missing)."""

    header: GroupHeader
    trailer: Segment | None
    set_count: int
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class SetStart:
    """An ST was read."""

    header: SetHeader
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class SetEnd:
    """The set is over (``trailer`` is the SE, None when missing)."""

    header: SetHeader
    trailer: Segment | None
    segment_count: int
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class ServiceSegment:
    """A TA1, ISB or ISE between the ISA and the first GS."""

    segment: Segment
    interchange: InterchangeHeader


@dataclass(slots=True)
class Problem:
    """A finding that belongs to no interchange (e.g. data before the first ISA)."""

    finding: Finding


Event = InterchangeStart | InterchangeEnd | GroupStart | GroupEnd | SetStart | SetEnd | ServiceSegment | Problem
