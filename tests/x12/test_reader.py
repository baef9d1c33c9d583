"""The streaming reader: delimiters, tolerance of real-world layouts, positions, envelopes."""

from __future__ import annotations

import io

import pytest
from conftest import ISA_4010, PO_850, interchange

from gateway.x12.model import InterchangeEnd, InterchangeStart, Problem, SetEnd, SetStart
from gateway.x12.reader import X12Reader, read_events
from gateway.x12.segment import Segment


def segments(data: bytes, **kw: int) -> list[Segment]:
    return [ev for ev in read_events(data, **kw) if isinstance(ev, Segment)]


def findings(data: bytes) -> list[str]:
    codes = []
    for ev in read_events(data):
        if isinstance(ev, Problem):
            codes.append(ev.finding.code)
        codes.extend(f.code for f in getattr(ev, "findings", []))
    return codes


def test_reads_sets_and_delimiters() -> None:
    events = list(read_events(interchange([PO_850])))
    start = events[0]
    assert isinstance(start, InterchangeStart)
    d = start.header.delimiters
    assert (d.element, d.component, d.segment, d.suffix, d.repetition) == ("*", ">", "~", "\n", None)
    assert start.header.control_number == "000000905"
    body = [ev for ev in events if isinstance(ev, Segment)]
    assert [s.id for s in body] == ["BEG", "REF", "N1", "PO1", "PID", "PO1", "CTT"]
    assert body[3].element(7) == "GLV-NIT-M"
    assert body[0].element(99) == ""
    assert findings(interchange([PO_850])) == []


def test_positions_are_byte_offsets_and_indexes() -> None:
    data = interchange([PO_850])
    for seg in segments(data):
        raw = data[seg.offset : seg.offset + 3].decode()
        assert raw.startswith(seg.id)
    body = segments(data)
    assert body[0].index == 4  # ISA=1, GS=2, ST=3, BEG=4


@pytest.mark.parametrize(
    "term",
    ["~", "~\n", "~\r\n", "\n", "\r\n", "~ ", "\x1c", "'\r\n"],
)
def test_terminator_layouts(term: str) -> None:
    data = interchange([PO_850], term=term)
    assert [s.id for s in segments(data)] == ["BEG", "REF", "N1", "PO1", "PID", "PO1", "CTT"]
    assert findings(data) == []


def test_bom_blank_lines_indentation_and_ctrl_z() -> None:
    text = interchange([PO_850]).decode().replace("~\nREF", "~\n\n   REF").replace("~\nN1", "~\r\n\tN1")
    data = b"\xef\xbb\xbf" + text.encode() + b"\x1a"
    assert [s.id for s in segments(data)] == ["BEG", "REF", "N1", "PO1", "PID", "PO1", "CTT"]
    assert findings(data) == []
    # offsets still point at the segment ids, BOM included
    for seg in segments(data):
        assert data[seg.offset : seg.offset + len(seg.id)].decode() == seg.id


def test_lines_wrapped_at_fixed_width() -> None:
    flat = interchange([PO_850], term="~").decode()
    wrapped = "\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80)).encode()
    assert [s.id for s in segments(wrapped)] == ["BEG", "REF", "N1", "PO1", "PID", "PO1", "CTT"]
    assert segments(wrapped)[0].elements == ["BEG", "00", "SA", "4500012345", "", "20261123"]
    assert findings(wrapped) == []


def test_several_interchanges_each_with_own_delimiters() -> None:
    first = interchange([PO_850])
    second = interchange([PO_850], term="\n").decode().replace("*", "|").replace("|>\n", "|^\n").encode()
    events = list(read_events(first + b"\r\n" + second))
    starts = [ev for ev in events if isinstance(ev, InterchangeStart)]
    assert [s.header.delimiters.element for s in starts] == ["*", "|"]
    assert len([ev for ev in events if isinstance(ev, SetEnd)]) == 2
    assert findings(first + b"\r\n" + second) == []


def test_ebcdic() -> None:
    text = interchange([PO_850], term="\x85").decode()  # NEL is EBCDIC's newline
    data = text.encode("cp037")
    assert [s.id for s in segments(data)] == ["BEG", "REF", "N1", "PO1", "PID", "PO1", "CTT"]


def test_utf8_content_is_decoded() -> None:
    body = [*PO_850[:2], "N1*ST*HÔPITAL SAINT-LUC*92*HSL", *PO_850[3:]]
    seg = next(s for s in segments(interchange([body])) if s.id == "N1")
    assert seg.element(2) == "HÔPITAL SAINT-LUC"


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_chunk_boundaries_do_not_matter(chunk: int) -> None:
    data = interchange([PO_850, PO_850], term="~\r\n")
    expected = [(s.elements, s.offset, s.index) for s in segments(data)]
    got = [(s.elements, s.offset, s.index) for s in segments(data, chunk_size=chunk)]
    assert got == expected


def test_stream_source_and_reader_locator() -> None:
    data = interchange([PO_850])
    reader = X12Reader(io.BytesIO(data), chunk_size=16)
    offsets = []
    for item in reader:
        if type(item) is list:
            offsets.append((item[0], reader.offset))
    assert offsets[0] == ("BEG", data.index(b"BEG"))


def test_control_numbers_kept_verbatim() -> None:
    events = list(read_events(interchange([PO_850])))
    st = next(ev for ev in events if isinstance(ev, SetStart))
    assert st.header.control_number == "0001"
    assert events[0].header.control_number == "000000905"


def test_not_x12_is_one_problem() -> None:
    events = list(read_events(b"PO_NUMBER,QTY\n4500012345,10\n"))
    assert len(events) == 1 and isinstance(events[0], Problem)
    assert events[0].finding.code == "X12-R001"
    assert events[0].finding.location.byte_offset == 0


def test_empty_input() -> None:
    assert [ev.finding.code for ev in read_events(b"")] == ["X12-R009"]  # type: ignore[union-attr]


def test_truncated_file_reports_missing_trailers() -> None:
    data = interchange([PO_850])
    cut = data[: data.index(b"PID")]
    codes = findings(cut)
    assert "X12-S001" in codes and "X12-G001" in codes and "X12-R007" in codes


def test_non_fixed_width_isa_is_read_and_reported() -> None:
    isa = ISA_4010.replace("SENDER         ", "SENDER")
    data = interchange([PO_850], isa=isa)
    assert next(s.id for s in segments(data)) == "BEG"
    start = next(ev for ev in read_events(data) if isinstance(ev, InterchangeStart))
    problem = start.findings[0]
    assert problem.code == "X12-R002" and problem.location.element == 6 and problem.ack_code == "006"


def test_garbage_between_interchanges_is_reported() -> None:
    data = interchange([PO_850]) + b"garbage here\n" + interchange([PO_850])
    codes = findings(data)
    assert codes == ["X12-R006"]
    assert len([ev for ev in read_events(data) if isinstance(ev, InterchangeEnd)]) == 2


def test_segment_outside_a_set_is_located() -> None:
    data = interchange([PO_850]).replace(b"ST*850*0001~\n", b"REF*ZZ*X~\nST*850*0001~\n")
    problem = next(ev for ev in read_events(data) if isinstance(ev, Problem))
    assert problem.finding.code == "X12-R008"
    assert problem.finding.location.segment_id == "REF"
    assert problem.finding.location.byte_offset == data.index(b"REF*ZZ")


def _stream_peak(mib: int) -> tuple[int, int]:
    """Validate ``mib`` MiB of 850s fed as a generator; returns (sets accepted, peak traced bytes)."""
    import tracemalloc

    from conftest import ISA_4010

    from gateway.resources import load_catalog
    from gateway.x12.validate.validator import Validator

    sets_per_chunk = 20
    lines = [*PO_850[:3], *[f"PO1*{i}*10*BX*42.50**VN*GLV-{i:05d}*IN*{i:06d}" for i in range(1, 61)], "CTT*60"]
    one = "~\n".join(lines)
    chunk_len = len(("ST*850*000000001~\n" + one + "~\nSE*9*000000001~\n").encode()) * sets_per_chunk
    chunks = mib * (1 << 20) // chunk_len

    def source():  # type: ignore[no-untyped-def]
        yield (ISA_4010 + "~\nGS*PO*SENDER*RECEIVER*20261123*1200*77*X*004010~\n").encode()
        n = 0
        for _ in range(chunks):
            parts = []
            for _ in range(sets_per_chunk):
                n += 1
                parts.append(f"ST*850*{n:09d}~\n{one}~\nSE*{len(lines) + 2}*{n:09d}~\n")
            yield "".join(parts).encode()
        yield f"GE*{n}*77~\nIEA*1*000000905~\n".encode()

    validator = Validator(load_catalog(), keep_sets=False)
    tracemalloc.start()
    try:
        report = validator.validate(source())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.valid
    group = report.interchanges[0].groups[0]
    assert group.received == chunks * sets_per_chunk
    return group.accepted_count, peak


def test_memory_stays_flat_on_a_large_stream() -> None:
    """Four times the input, about the same peak: the reader and validator hold no more than a buffer."""
    small_sets, small = _stream_peak(1)  # one and four of the reader's 1 MiB buffers (tracemalloc is slow)
    large_sets, large = _stream_peak(4)
    assert large_sets >= 4 * small_sets - 200
    assert large < small * 1.25 + (1 << 20), (
        f"peak {small / (1 << 20):.1f} MiB for 1 MiB, {large / (1 << 20):.1f} for 4"
    )
    assert large < 48 * (1 << 20)


def test_a_set_too_big_to_collect_is_dropped_per_buffer_and_flagged_until_the_next_st() -> None:
    body = "".join(f"REF*ZZ*{n}~" for n in range(2000))
    data = (
        "ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        f"GS*PO*A*B*20261123*0930*1*X*004010~ST*850*0001~{body}SE*2002*0001~ST*850*0002~REF*ZZ*1~SE*3*0002~"
        "GE*2*1~IEA*1*000000001~"
    ).encode()
    collected: list[Segment] = []
    reader = X12Reader(data, chunk_size=4096, collect=collected, max_collect=100)
    seen: list[tuple[str, bool, int]] = []
    for ev in reader:
        if isinstance(ev, SetEnd):
            seen.append((ev.header.control_number, reader.overflowed, len(collected)))
    assert seen[0][1] and seen[0][2] < 2000, "the big set was not kept whole"
    assert seen[1] == ("0002", False, 1)


def _tricky_inputs() -> list[bytes]:
    """Layouts that take the reader's slow paths too: blank lines and indentation, wrapped lines,
    several interchanges with their own delimiters, junk between them, a stray segment, no trailer."""
    plain = interchange([PO_850, PO_850], term="~\r\n")
    text = interchange([PO_850]).decode().replace("~\nREF", "~\n\n   REF").replace("~\nN1", "~\r\n\tN1")
    flat = interchange([PO_850], term="~").decode()
    wrapped = "\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80)).encode()
    other = interchange([PO_850], term="\n").decode().replace("*", "|").replace("|>\n", "|^\n").encode()
    stray = interchange([PO_850]).replace(b"ST*850", b"REF*ZZ*X~\nST*850", 1)
    bad_count = interchange([PO_850]).replace(b"SE*9*", b"SE*7*")
    return [
        plain,
        b"\xef\xbb\xbf" + text.encode() + b"\x1a",
        wrapped,
        plain + b"\r\n" + other,
        plain + b"garbage here\n" + plain,
        stray,
        bad_count,
        plain[: plain.rfind(b"GE*")],
        interchange([["BEG*00*SA*1**20261123"] * 5, ["REF*DP*1"] + [" "] * 3]),
    ]


@pytest.mark.parametrize("chunk", [7, 64, 333, 1 << 20])
@pytest.mark.parametrize("case", range(9))
def test_envelopes_only_reader_gives_the_same_envelope_events(case: int, chunk: int) -> None:
    """``body=False`` (the quick first pass over a big file) skips set bodies, nothing else."""
    data = _tricky_inputs()[case]
    full = [repr(ev) for ev in X12Reader(data, chunk_size=chunk) if type(ev) is not list]
    quick = list(X12Reader(data, chunk_size=chunk, body=False))
    assert all(type(ev) is not list for ev in quick)
    assert [repr(ev) for ev in quick] == full
