"""Property-based tests for the X12 writer and streaming reader.

Two properties:

* **Round trip.** Any interchange the writer produces (random groups, sets,
  body segments, delimiters, line-break suffix and ISA version) reads back
  through :func:`read_events` as exactly the same segments, with the same
  envelope counts and control numbers, the same delimiters, and without a
  single finding.
* **Robustness.** Random byte mutations of a valid 004010 850 never make the
  reader or the validator raise anything but the gateway's own
  :class:`~gateway.errors.GatewayError` tree (in practice: nothing at all,
  since both report problems as findings).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.x12.model import (
    GroupEnd,
    GroupStart,
    InterchangeEnd,
    InterchangeStart,
    Problem,
    ServiceSegment,
    SetEnd,
    SetStart,
)
from gateway.x12.reader import read_events
from gateway.x12.segment import Delimiters, Segment
from gateway.x12.writer import OutGroup, OutInterchange, OutSet, Party, write_interchange

# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

#: Printable, non-alphanumeric ASCII usable as delimiters, plus GS/FS controls.
DELIMITER_POOL = "*|^~!+:>{}"
CONTROL_DELIMITERS = "\x1d\x1c"
#: Element data never contains any character of the delimiter pool (or CR/LF).
SAFE_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + " -./#&(),?=%@$'"
assert not set(SAFE_ALPHABET) & set(DELIMITER_POOL + CONTROL_DELIMITERS)

#: Envelope and service segment ids a body segment must never use.
RESERVED_IDS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE", "TA1", "ISB", "ISE"})
ID_CHARS = string.ascii_uppercase + string.digits

segment_ids = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_uppercase),
    st.text(ID_CHARS, min_size=1, max_size=2),
).filter(lambda sid: sid not in RESERVED_IDS)

element_values = st.text(SAFE_ALPHABET, max_size=12)
body_segments = st.builds(
    lambda sid, els: [sid, *els],
    segment_ids,
    st.lists(element_values, max_size=8),
)


@st.composite
def delimiter_sets(draw: st.DrawFn) -> tuple[str, Delimiters]:
    """``(isa_version, delimiters)``: distinct element/component/terminator (and repetition on 00501)."""
    version = draw(st.sampled_from(["00401", "00501"]))
    pool = DELIMITER_POOL + (CONTROL_DELIMITERS if draw(st.booleans()) else "")
    count = 4 if version == "00501" else 3
    chosen = draw(st.permutations(pool))[:count]
    element, component, segment = chosen[0], chosen[1], chosen[2]
    repetition = chosen[3] if version == "00501" else None
    suffix = draw(st.sampled_from(["", "\n", "\r\n"]))
    return version, Delimiters(element, component, repetition, segment, suffix)


@st.composite
def interchanges(draw: st.DrawFn) -> OutInterchange:
    """An interchange with 1-3 groups of 1-4 sets, each with 0-6 random body segments."""
    id_text = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=15)
    groups = []
    for _ in range(draw(st.integers(1, 3))):
        sets = [
            OutSet(
                set_id=draw(st.text(string.digits, min_size=3, max_size=3)),
                segments=draw(st.lists(body_segments, max_size=6)),
                implementation=draw(st.none() | st.text(ID_CHARS, min_size=1, max_size=12)),
            )
            for _ in range(draw(st.integers(1, 4)))
        ]
        groups.append(
            OutGroup(
                functional_id=draw(st.sampled_from(["PO", "PR", "SH", "IN", "FA"])),
                sender=draw(id_text),
                receiver=draw(id_text),
                version=draw(st.sampled_from(["004010", "005010", "004010VICS", "005010X231A1"])),
                sets=sets,
            )
        )
    return OutInterchange(
        sender=Party(draw(st.sampled_from(["ZZ", "01", "12"])), draw(id_text)),
        receiver=Party(draw(st.sampled_from(["ZZ", "01", "08"])), draw(id_text)),
        usage=draw(st.sampled_from("PTI")),
        ack_requested=draw(st.booleans()),
        groups=groups,
    )


@dataclass
class Counter:
    """A control-number sequence per kind, starting at random values."""

    values: dict[str, int]

    def __call__(self, kind: str) -> int:
        self.values[kind] += 1
        return self.values[kind]


def _trim(elements: list[str]) -> list[str]:
    """What the writer puts on the wire: trailing empty elements removed."""
    out = list(elements)
    while len(out) > 1 and out[-1] == "":
        out.pop()
    return out


# --------------------------------------------------------------------------
# Round trip
# --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ic=interchanges(),
    delims=delimiter_sets(),
    when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59)),
    starts=st.tuples(st.integers(0, 999_999_000), st.integers(0, 999_999_000), st.integers(0, 99_999_000)),
    chunk_size=st.sampled_from([1 << 20, 7, 64, 200]),
)
def test_written_interchange_reads_back_identically(
    ic: OutInterchange,
    delims: tuple[str, Delimiters],
    when: datetime,
    starts: tuple[int, int, int],
    chunk_size: int,
) -> None:
    version, delimiters = delims
    ic.version = version
    counter = Counter({"interchange": starts[0], "group": starts[1], "set": starts[2]})
    data = write_interchange(ic, delimiters, counter, when)

    # What the writer was asked to write, with the control numbers it must have used.
    isa13 = f"{starts[0] + 1:09d}"
    expected_groups = []
    gs06, st02 = starts[1], starts[2]
    for group in ic.groups:
        gs06 += 1
        sets = []
        for out_set in group.sets:
            st02 += 1
            sets.append((out_set, f"{st02:04d}"))
        expected_groups.append((group, str(gs06), sets))

    events = list(read_events(data, chunk_size=chunk_size))

    # No finding anywhere, no Problem, no service segment.
    for ev in events:
        assert not isinstance(ev, (Problem, ServiceSegment)), ev
        if isinstance(ev, (InterchangeStart, InterchangeEnd, GroupStart, GroupEnd, SetStart, SetEnd)):
            assert ev.findings == [], [str(f) for f in ev.findings]

    # Exactly one interchange with the written delimiters and header values.
    starts_ = [e for e in events if isinstance(e, InterchangeStart)]
    ends = [e for e in events if isinstance(e, InterchangeEnd)]
    assert len(starts_) == 1 and len(ends) == 1
    assert isinstance(events[0], InterchangeStart) and isinstance(events[-1], InterchangeEnd)
    header = starts_[0].header
    assert header.delimiters == delimiters
    assert header.control_number == isa13
    assert header.version == version
    assert header.sender_qualifier == ic.sender.qualifier and header.sender_id == ic.sender.id
    assert header.receiver_qualifier == ic.receiver.qualifier and header.receiver_id == ic.receiver.id
    assert header.date == when.strftime("%y%m%d") and header.time == when.strftime("%H%M")
    assert header.usage == ic.usage and header.ack_requested == ic.ack_requested
    end = ends[0]
    assert end.trailer is not None and end.trailer.elements == ["IEA", str(len(ic.groups)), isa13]
    assert end.group_count == len(ic.groups)

    # Walk the events against the expected structure.
    it = iter(events[1:-1])
    for group, gs06_text, sets in expected_groups:
        gs = next(it)
        assert isinstance(gs, GroupStart), gs
        assert gs.header.control_number == gs06_text
        assert gs.header.functional_id == group.functional_id
        assert gs.header.sender_id == group.sender and gs.header.receiver_id == group.receiver
        assert gs.header.version == group.version
        for out_set, st02_text in sets:
            st_ev = next(it)
            assert isinstance(st_ev, SetStart), st_ev
            assert st_ev.header.set_id == out_set.set_id
            assert st_ev.header.control_number == st02_text
            assert st_ev.header.implementation == out_set.implementation
            assert st_ev.header.group is gs.header
            read_body: list[list[str]] = []
            while isinstance(item := next(it), Segment):
                read_body.append(list(item.elements))
            assert read_body == [_trim(s) for s in out_set.segments]
            assert isinstance(item, SetEnd), item
            n = len(out_set.segments) + 2
            assert item.segment_count == n
            assert item.trailer is not None and item.trailer.elements == ["SE", str(n), st02_text]
        ge = next(it)
        assert isinstance(ge, GroupEnd), ge
        assert ge.set_count == len(sets)
        assert ge.trailer is not None and ge.trailer.elements == ["GE", str(len(sets)), gs06_text]
    assert next(it, None) is None


def test_round_trip_example_with_control_delimiters() -> None:
    """A fixed example of the property (0x1D element separator, 00501, CRLF suffix)."""
    ic = OutInterchange(
        Party("ZZ", "SENDER"),
        Party("ZZ", "RECEIVER"),
        version="00501",
        groups=[OutGroup("PO", "S", "R", "005010", [OutSet("850", [["BEG", "00", "SA", "PO1", "", "20240101", ""]])])],
    )
    delimiters = Delimiters("\x1d", "\x1c", "^", "~", "\r\n")
    data = write_interchange(ic, delimiters, Counter({"interchange": 0, "group": 0, "set": 0}), datetime(2024, 2, 29))
    segments = [list(e.elements) for e in read_events(data) if isinstance(e, Segment)]
    assert segments == [["BEG", "00", "SA", "PO1", "", "20240101"]]


# --------------------------------------------------------------------------
# Robustness under byte mutations
# --------------------------------------------------------------------------

VALID_850 = (
    b"ISA*00*          *00*          *ZZ*ACMEHOSP       *ZZ*MEDSUPPLY      "
    b"*240115*1030*U*00401*000000123*0*P*>~\n"
    b"GS*PO*ACMEHOSP*MEDSUPPLY*20240115*1030*123*X*004010~\n"
    b"ST*850*0001~\n"
    b"BEG*00*SA*PO-4471**20240115~\n"
    b"REF*DP*ORTHO~\n"
    b"N1*ST*ACME GENERAL HOSPITAL*92*1001~\n"
    b"PO1*1*10*BX*24.5**VC*GL-2231*IN*4471-1~\n"
    b"PO1*2*4*CA*112**VC*SY-1050>A*IN*4471-2~\n"
    b"CTT*2~\n"
    b"SE*8*0001~\n"
    b"GE*1*123~\n"
    b"IEA*1*000000123~\n"
)


@lru_cache(maxsize=1)
def _validator() -> Any:
    from gateway.resources import load_catalog
    from gateway.x12.validate.validator import Validator

    return Validator(load_catalog())


def test_valid_850_is_clean() -> None:
    """The mutation seed itself reads without findings and validates."""
    events = list(read_events(VALID_850))
    for ev in events:
        assert not isinstance(ev, Problem)
        if hasattr(ev, "findings"):
            assert ev.findings == [], [str(f) for f in ev.findings]
    assert sum(isinstance(e, Segment) for e in events) == 6
    report = _validator().validate(VALID_850)
    assert report.findings == []
    assert len(report.interchanges) == 1
    ic = report.interchanges[0]
    assert ic.findings == [] and len(ic.groups) == 1
    assert ic.groups[0].findings == [] and len(ic.groups[0].sets) == 1
    assert ic.groups[0].sets[0].findings == [], [str(f) for f in ic.groups[0].sets[0].findings]


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10_000), st.sampled_from(b"*>~\n\r ISAGSTE0123456789\x00\x1a\xff")),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=4)),
    st.tuples(
        st.just("insert"), st.integers(0, 10_000), st.sampled_from([b"ISA", b"~", b"*", b"~ISA*", b"SE*", b"~GS*"])
    ),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def _mutate(data: bytes, ops: list[tuple[str, int, Any]]) -> bytes:
    buf = bytearray(data)
    for kind, at, arg in ops:
        if not buf:
            break
        at %= len(buf)
        if kind == "flip":
            buf[at] ^= arg
        elif kind == "set":
            buf[at] = arg
        elif kind == "insert":
            buf[at:at] = arg
        elif kind == "delete":
            del buf[at : at + arg]
        else:
            del buf[at:]
    return bytes(buf)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(mutation, min_size=1, max_size=4), chunk_size=st.sampled_from([1 << 20, 16, 101]))
def test_mutated_850_only_raises_gateway_errors(ops: list[tuple[str, int, Any]], chunk_size: int) -> None:
    data = _mutate(VALID_850, ops)
    assume(data != VALID_850)
    _only_gateway_errors(lambda: list(read_events(data, chunk_size=chunk_size)), data)
    _only_gateway_errors(lambda: _validator().validate(data), data)


def _only_gateway_errors(call: Callable[[], object], data: bytes) -> None:
    """Run ``call``; a GatewayError is an accepted outcome, any other exception fails the test."""
    try:
        call()
    except GatewayError:
        pass
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped for input {data!r}: {exc}") from exc
