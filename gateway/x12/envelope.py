"""The envelope state machine: ISA/GS/ST nesting, trailers, counts, control numbers.

The reader hands it only control segments (ISA, IEA, GS, GE, ST, SE, TA1,
ISB, ISE) and segments found outside any set; everything else bypasses it,
which keeps the per-segment cost of reading low. Each method returns the
events the segment closes or opens.
"""

from __future__ import annotations

from bisect import bisect_right

from gateway.errors import Location
from gateway.x12.findings import Finding
from gateway.x12.isa import IsaScan, check_isa_values
from gateway.x12.model import (
    Event,
    GroupEnd,
    GroupHeader,
    GroupStart,
    InterchangeEnd,
    InterchangeHeader,
    InterchangeStart,
    Problem,
    ServiceSegment,
    SetEnd,
    SetHeader,
    SetStart,
)
from gateway.x12.segment import Segment, is_digits

SERVICE_SEGMENTS = frozenset({"TA1", "ISB", "ISE"})


def _count_matches(value: str, count: int) -> bool:
    """True when a trailer's count element equals ``count`` (leading zeros allowed)."""
    return is_digits(value) and int(value) == count


def _loc(
    seg: Segment, element: int | None = None, *, group: str | None = None, transaction_set: str | None = None
) -> Location:
    return Location(
        segment_id=seg.id,
        interchange_index=seg.index,
        byte_offset=seg.offset,
        element=element,
        group=group,
        transaction_set=transaction_set,
    )


class ControlNumbers:
    """The control numbers seen so far (ST02 in a group), compact: a batch of 100,000 sets numbered in
    sequence is a few ranges, not 100,000 strings. Digit strings are kept as ranges of integers per
    width (``0001`` and ``1`` stay different, as written); anything else in a set."""

    __slots__ = ("other", "ranges")

    def __init__(self) -> None:
        self.ranges: dict[int, tuple[list[int], list[int]]] = {}  # width → sorted starts, their ends
        self.other: set[str] = set()

    def __contains__(self, value: str) -> bool:
        if not is_digits(value):
            return value in self.other
        found = self.ranges.get(len(value))
        if found is None:
            return False
        starts, ends = found
        n = int(value)
        i = bisect_right(starts, n) - 1
        return i >= 0 and n <= ends[i]

    def add(self, value: str) -> None:
        """Remember ``value`` (one already in is left as it is)."""
        if not is_digits(value):
            self.other.add(value)
            return
        if value in self:
            return
        starts, ends = self.ranges.setdefault(len(value), ([], []))
        n = int(value)
        i = bisect_right(starts, n)  # the range after n starts at starts[i]; the one before is i - 1
        joins_before = i > 0 and ends[i - 1] == n - 1
        joins_after = i < len(starts) and starts[i] == n + 1
        if joins_before and joins_after:
            ends[i - 1] = ends[i]
            del starts[i], ends[i]
        elif joins_before:
            ends[i - 1] = n
        elif joins_after:
            starts[i] = n
        else:
            starts.insert(i, n)
            ends.insert(i, n)


class Envelope:
    """Tracks one interchange's open group and set while the reader streams it."""

    def __init__(self, scan: IsaScan, isa: Segment) -> None:
        self.interchange = InterchangeHeader.from_segment(isa, scan.delimiters)
        self.group: GroupHeader | None = None
        self.set: SetHeader | None = None
        self.group_count = 0
        self.set_count = 0
        self.group_controls: set[str] = set()
        self.set_controls = ControlNumbers()
        self.start_findings = scan.findings + check_isa_values(isa.elements, isa.offset)

    def start(self) -> InterchangeStart:
        """The event for the ISA itself."""
        return InterchangeStart(self.interchange, self.start_findings)

    # -- transaction sets -------------------------------------------------
    def st(self, seg: Segment) -> list[Event]:
        """An ST opens a set (closing an unterminated one first)."""
        events = self._close_set(None)
        findings: list[Finding] = []
        group_loc = self.group.control_number if self.group else None
        if self.group is None:
            findings.append(Finding("X12-R008", "ST outside a functional group (no GS before it)", _loc(seg)))
        header = SetHeader.from_segment(seg, self.group, self.interchange)
        control = header.control_number
        bad_id = not (len(header.set_id) == 3 and header.set_id.isdigit())
        bad_control = not (4 <= len(control) <= 9)
        repeated = not bad_control and control in self.set_controls
        if bad_id or bad_control or repeated:  # the location only when there is a finding (once a set otherwise)
            loc = _loc(seg, transaction_set=control, group=group_loc)
            if bad_id:
                findings.append(
                    Finding("X12-S005", "ST01 must be a 3-digit transaction set id", loc, value=header.set_id)
                )
            if bad_control:
                findings.append(
                    Finding("X12-S006", "ST02 control number must be 4 to 9 characters", loc, value=control)
                )
            elif repeated:
                findings.append(
                    Finding("X12-S008", "ST02 repeats a control number already used in this group", loc, value=control)
                )
        self.set_controls.add(header.control_number)
        self.set = header
        self.set_count += 1
        events.append(SetStart(header, findings))
        return events

    def se(self, seg: Segment) -> list[Event]:
        """An SE closes the open set, checking its count and control number."""
        if self.set is None:
            return [Problem(Finding("X12-R008", "SE without an ST before it", _loc(seg)))]
        return self._close_set(seg)

    def _close_set(self, trailer: Segment | None) -> list[Event]:
        header = self.set
        if header is None:
            return []
        self.set = None
        findings: list[Finding] = []
        st = header.segment
        if trailer is None:
            count = 0
            findings.append(Finding("X12-S001", f"transaction set {header.control_number} has no SE trailer", _loc(st)))
        else:
            count = trailer.index - st.index + 1
            if not _count_matches(trailer.element(1), count):
                findings.append(
                    Finding(
                        "X12-S003",
                        f"SE01 says {trailer.element(1) or 'nothing'}, the set has {count} segments",
                        _loc(trailer, 1, transaction_set=header.control_number),
                        value=trailer.element(1),
                    )
                )
            if trailer.element(2) != header.control_number:
                findings.append(
                    Finding(
                        "X12-S002",
                        f"SE02 does not match ST02 {header.control_number!r}",
                        _loc(trailer, 2, transaction_set=header.control_number),
                        value=trailer.element(2),
                    )
                )
        return [SetEnd(header, trailer, count, findings)]

    # -- functional groups ------------------------------------------------
    def gs(self, seg: Segment) -> list[Event]:
        """A GS opens a group (closing an unterminated set and group first)."""
        events = self._close_group(None)
        header = GroupHeader.from_segment(seg)
        findings: list[Finding] = []
        loc = _loc(seg, element=6, group=header.control_number)
        if not (is_digits(header.control_number) and 1 <= len(header.control_number) <= 9):
            findings.append(Finding("X12-G006", "GS06 must be 1 to 9 digits", loc, value=header.control_number))
        elif header.control_number in self.group_controls:
            findings.append(
                Finding(
                    "X12-G007",
                    "GS06 repeats a group control number of this interchange",
                    loc,
                    value=header.control_number,
                )
            )
        self.group_controls.add(header.control_number)
        self.group = header
        self.group_count += 1
        self.set_count = 0
        self.set_controls = ControlNumbers()
        events.append(GroupStart(header, findings))
        return events

    def ge(self, seg: Segment) -> list[Event]:
        """A GE closes the open group, checking its count and control number."""
        if self.group is None:
            events = self._close_set(None)
            events.append(Problem(Finding("X12-R008", "GE without a GS before it", _loc(seg))))
            return events
        return self._close_group(seg)

    def _close_group(self, trailer: Segment | None) -> list[Event]:
        events = self._close_set(None)
        header = self.group
        if header is None:
            return events
        self.group = None
        findings: list[Finding] = []
        if trailer is None:
            findings.append(
                Finding("X12-G001", f"group {header.control_number} has no GE trailer", _loc(header.segment))
            )
        else:
            group = header.control_number
            if not _count_matches(trailer.element(1), self.set_count):
                findings.append(
                    Finding(
                        "X12-G003",
                        f"GE01 says {trailer.element(1) or 'nothing'}, the group has {self.set_count} transaction sets",
                        _loc(trailer, 1, group=group),
                        value=trailer.element(1),
                    )
                )
            if trailer.element(2) != header.control_number:
                findings.append(
                    Finding(
                        "X12-G002",
                        f"GE02 does not match GS06 {header.control_number!r}",
                        _loc(trailer, 2, group=group),
                        value=trailer.element(2),
                    )
                )
        events.append(GroupEnd(header, trailer, self.set_count, findings))
        return events

    # -- interchange ------------------------------------------------------
    def iea(self, trailer: Segment | None, reason: str | None = None) -> list[Event]:
        """Close everything; ``trailer`` None means the IEA is missing (``reason`` says why)."""
        events = self._close_group(None)
        findings: list[Finding] = []
        control = self.interchange.control_number
        if trailer is None:
            isa = self.interchange.segment
            findings.append(Finding("X12-R007", reason or f"interchange {control} has no IEA trailer", _loc(isa)))
        else:
            if not _count_matches(trailer.element(1), self.group_count):
                findings.append(
                    Finding(
                        "X12-I002",
                        f"IEA01 says {trailer.element(1) or 'nothing'}, the interchange has "
                        f"{self.group_count} functional groups",
                        _loc(trailer, 1),
                        value=trailer.element(1),
                    )
                )
            if trailer.element(2) != control:
                findings.append(
                    Finding(
                        "X12-I001",
                        f"IEA02 does not match ISA13 {control!r}",
                        _loc(trailer, 2),
                        value=trailer.element(2),
                    )
                )
        events.append(InterchangeEnd(self.interchange, trailer, self.group_count, findings))
        return events

    def service(self, seg: Segment) -> list[Event]:
        """TA1/ISB/ISE: valid between the ISA and the first GS only."""
        if self.group is not None:
            return [Problem(Finding("X12-R008", f"{seg.id} inside a functional group", _loc(seg)))]
        return [ServiceSegment(seg, self.interchange)]

    def stray(self, seg: Segment) -> Problem:
        """A segment outside any transaction set."""
        where = "inside a group but outside any transaction set" if self.group else "outside any functional group"
        return Problem(Finding("X12-R008", f"segment {seg.id} {where}", _loc(seg)))
