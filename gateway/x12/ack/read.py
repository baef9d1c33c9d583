"""Reading inbound 997, 999 and TA1 into structured results.

For reconciling what we sent: which group and sets the partner accepted or
rejected, and with which codes. Works on any readable interchange; sets
other than 997/999 are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.x12.model import InterchangeStart, ServiceSegment, SetEnd, SetStart
from gateway.x12.reader import Source, read_events
from gateway.x12.segment import Segment, is_digits


@dataclass(slots=True)
class ElementError:
    """An AK4/IK4: element (and component) position, element ref, error code, bad data."""

    element: int | None
    component: int | None
    element_ref: str
    code: str
    value: str


@dataclass(slots=True)
class SegmentError:
    """An AK3/IK3 with its AK4/IK4s."""

    segment_id: str
    position: int | None
    loop: str
    code: str
    elements: list[ElementError] = field(default_factory=list)


@dataclass(slots=True)
class SetAck:
    """An AK2/IK5 pair: one acknowledged transaction set."""

    set_id: str
    control_number: str
    code: str = ""
    error_codes: list[str] = field(default_factory=list)
    segments: list[SegmentError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """A or E."""
        return self.code in ("A", "E")


@dataclass(slots=True)
class FunctionalAck:
    """One 997 or 999 set: the acknowledged group (AK1) and its verdict (AK9)."""

    kind: str
    interchange: str
    control_number: str
    functional_id: str = ""
    group_control: str = ""
    group_version: str = ""
    code: str = ""
    included: int | None = None
    received: int | None = None
    accepted_count: int | None = None
    error_codes: list[str] = field(default_factory=list)
    sets: list[SetAck] = field(default_factory=list)


@dataclass(slots=True)
class TA1Ack:
    """A TA1: the acknowledged interchange and its verdict."""

    interchange: str  # the ISA13 of the interchange carrying the TA1
    control_number: str  # TA101, the acknowledged ISA13
    date: str
    time: str
    code: str  # A, E or R
    note_code: str

    @property
    def accepted(self) -> bool:
        """A or E."""
        return self.code in ("A", "E")


def _int(value: str) -> int | None:
    return int(value) if is_digits(value) else None


def _position(value: str, component: str) -> tuple[int | None, int | None]:
    parts = value.split(component)
    element = _int(parts[0]) if parts else None
    comp = _int(parts[1]) if len(parts) > 1 else None
    return element, comp


def read_acks(source: Source) -> Iterator[FunctionalAck | TA1Ack]:
    """Every 997/999 set and TA1 segment in ``source``, in file order."""
    current: FunctionalAck | None = None
    component = ":"
    interchange = ""
    for ev in read_events(source):
        if type(ev) is Segment:
            if current is not None:
                _apply(current, ev, component)
        elif isinstance(ev, InterchangeStart):
            interchange = ev.header.control_number
            component = ev.header.delimiters.component
        elif isinstance(ev, ServiceSegment) and ev.segment.id == "TA1":
            el = ev.segment.element
            yield TA1Ack(interchange, el(1), el(2), el(3), el(4), el(5))
        elif isinstance(ev, SetStart) and ev.header.set_id in ("997", "999"):
            current = FunctionalAck(ev.header.set_id, interchange, ev.header.control_number)
        elif isinstance(ev, SetEnd) and current is not None:
            yield current
            current = None


def _apply(ack: FunctionalAck, seg: Segment, component: str) -> None:
    sid = seg.id
    el = seg.element
    if sid == "AK1":
        ack.functional_id, ack.group_control, ack.group_version = el(1), el(2), el(3)
    elif sid == "AK2":
        ack.sets.append(SetAck(el(1), el(2)))
    elif sid in ("AK3", "IK3") and ack.sets:
        ack.sets[-1].segments.append(SegmentError(el(1), _int(el(2)), el(3), el(4)))
    elif sid in ("AK4", "IK4") and ack.sets and ack.sets[-1].segments:
        element, comp = _position(el(1), component)
        ack.sets[-1].segments[-1].elements.append(ElementError(element, comp, el(2), el(3), el(4)))
    elif sid in ("AK5", "IK5") and ack.sets:
        ack.sets[-1].code = el(1)
        ack.sets[-1].error_codes = [v for v in seg.elements[2:7] if v]
    elif sid == "AK9":
        ack.code = el(1)
        ack.included, ack.received, ack.accepted_count = _int(el(2)), _int(el(3)), _int(el(4))
        ack.error_codes = [v for v in seg.elements[5:10] if v]
