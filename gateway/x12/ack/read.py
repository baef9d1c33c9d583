"""Reading inbound 997, 999 and TA1 into structured results.

For reconciling what we sent: which group and sets the partner accepted or
rejected, and with which codes. Works on any readable interchange; sets
other than 997/999 are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

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


#: Transaction sets that are acknowledgments: never acknowledged, never translated.
ACK_SETS = frozenset({"997", "999"})


def is_acknowledgment(set_id: str) -> bool:
    """True for a 997 or 999 (an acknowledgment is never itself acknowledged)."""
    return set_id in ACK_SETS


def read_set(
    kind: str, control_number: str, segments: Iterable[Segment], *, interchange: str = "", component: str = ":"
) -> FunctionalAck:
    """One 997/999 set from its segments (after ST, before SE), e.g. those the reader collected."""
    ack = FunctionalAck(kind, interchange, control_number)
    for seg in segments:
        _apply(ack, seg, component)
    return ack


def read_ta1(segment: Segment, interchange: str = "") -> TA1Ack:
    """A TA1 segment (``interchange``: the ISA13 of the interchange carrying it)."""
    el = segment.element
    return TA1Ack(interchange, el(1), el(2), el(3), el(4), el(5))


def ack_dict(ack: FunctionalAck | TA1Ack) -> dict[str, Any]:
    """A read acknowledgment as plain data (for the ledger and ``--json``), with its verdict spelt out."""
    data = asdict(ack)
    if isinstance(ack, TA1Ack):
        data["kind"] = "TA1"
    data["summary"] = describe(ack)
    return data


_VERDICTS = {"A": "accepted", "E": "accepted with errors", "P": "partially accepted", "R": "rejected"}


def describe(ack: FunctionalAck | TA1Ack) -> str:
    """One line saying what the acknowledgment accepts or rejects."""
    if isinstance(ack, TA1Ack):
        verdict = _VERDICTS.get(ack.code, f"code {ack.code!r}")
        return f"TA1: interchange {ack.control_number} {verdict} (note {ack.note_code})"
    verdict = _VERDICTS.get(ack.code, f"code {ack.code!r}")
    counts = ""
    if ack.received is not None and ack.accepted_count is not None:
        counts = f", {ack.accepted_count} of {ack.received} sets accepted"
    codes = f", errors {' '.join(ack.error_codes)}" if ack.error_codes else ""
    parts = [f"{ack.kind}: group {ack.functional_id} {ack.group_control} {verdict}{counts}{codes}"]
    for st in ack.sets:
        line = f"set {st.set_id} {st.control_number} {_VERDICTS.get(st.code, repr(st.code))}"
        if st.error_codes:
            line += f" ({' '.join(st.error_codes)})"
        for seg in st.segments:
            line += f"; {seg.segment_id} #{seg.position} error {seg.code}"
            line += "".join(f", element {e.element} error {e.code}" for e in seg.elements)
        parts.append(line)
    return "; ".join(parts)


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
            yield read_ta1(ev.segment, interchange)
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
