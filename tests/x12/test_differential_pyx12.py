"""Differential test: our streaming reader against pyx12's ``X12Reader``, over the shared corpus.

For every file under ``../shared/corpus/x12`` that pyx12 reads to the end
without raising, the segments we read (ISA, GS, ST, body segments, SE, GE,
IEA, TA1, in file order) must equal pyx12's: same ids, same element values,
same count. Control segments come from the envelope events
(``header.segment`` / ``trailer``), body segments from the yielded
:class:`~gateway.x12.segment.Segment` values.

pyx12 exposes a segment as ``seg.seg_id`` plus ``seg.elements``, a list of
``Composite`` objects whose ``elements`` are ``Element`` objects with a
``value``; an element's raw text is its components' values joined with the
component separator (``Composite.format`` would trim trailing empty
components, so it is not used). The ISA is split on the element separator
only, so ISA16 comes back as one value.

Where the two readers legitimately differ, the comparison is normalised, each
way documented here:

1. **Input pyx12 cannot take as is.**  pyx12 needs ``ISA`` at character 0 and
   ISA12 in {00401, 00501}. So pyx12 is given: the file without its UTF-8
   BOM (our reader skips it); text decoded as cp037 for EBCDIC files (our
   reader detects EBCDIC), else as UTF-8 when the file is valid UTF-8 (our
   reader re-decodes non-ASCII segments as UTF-8; this also lets pyx12 see a
   multi-byte segment terminator as the one character it is), else latin-1;
   and, when the ISA is strictly fixed width but ISA12 is another version,
   ISA12 replaced by 00401, with the original ISA12 put back into pyx12's
   ISA afterwards. Files pyx12 still cannot read are skipped with its error.
2. **Final segment without a terminator.**  pyx12 silently drops it; our
   reader yields it. pyx12 is given the file with the terminator appended
   when the file (minus trailing whitespace, NUL and Ctrl-Z, which our
   reader ignores) does not end with one.
3. **Line breaks inside a segment.**  Our reader treats CR/LF inside a
   segment as formatting (wrapped fixed-width records) and removes it; pyx12
   keeps it. CR and LF are removed from pyx12's values (only trailing ones
   when the terminator itself is CR or LF, as our reader does).
4. **Segments outside a transaction set.**  Our reader reports them as a
   ``Problem`` (X12-R008) whose location names the segment id but not its
   elements; those positions are compared by segment id only.

A file that differs because of a bug on our side is listed in ``KNOWN_BUGS``
and runs as ``xfail(strict=True)``, so fixing the bug turns it into a failure
that asks for the entry to be removed.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

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
from gateway.x12.segment import Segment

pyx12_x12file = pytest.importorskip("pyx12.x12file", reason="pyx12 is not installed")

CORPUS_X12 = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "x12"
if not CORPUS_X12.is_dir():
    pytest.skip(f"shared X12 corpus not found at {CORPUS_X12}", allow_module_level=True)

FILES = sorted((p for p in CORPUS_X12.rglob("*") if p.is_file()), key=lambda p: p.name)

#: Files that differ from pyx12 because of a bug in our reader: name -> precise reason.
KNOWN_BUGS: dict[str, str] = {}

BOM = b"\xef\xbb\xbf"
EBCDIC_ISA = b"\xc9\xe2\xc1"
#: Offsets of the 16 element separators in a fixed-width ISA.
ISA_SEPARATORS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
PYX12_VERSIONS = ("00401", "00501")
#: What our reader ignores after the last segment (its JUNK set).
TRAILING_JUNK = " \t\r\n\x00\x0b\x0c\x1a\x85"
STRAY = "<stray: compared by id only>"


def _ours(data: bytes) -> tuple[list[list[str]], str | None]:
    """Our segments in file order, and the first interchange's segment terminator."""
    out: list[list[str]] = []
    term: str | None = None
    for ev in read_events(data):
        if isinstance(ev, Segment):
            out.append(list(ev.elements))
        elif isinstance(ev, (InterchangeStart, GroupStart, SetStart)):
            out.append(list(ev.header.segment.elements))
            if isinstance(ev, InterchangeStart) and term is None:
                term = ev.header.delimiters.segment
        elif isinstance(ev, (SetEnd, GroupEnd, InterchangeEnd)):
            if ev.trailer is not None:
                out.append(list(ev.trailer.elements))
        elif isinstance(ev, ServiceSegment):
            out.append(list(ev.segment.elements))
        elif isinstance(ev, Problem):
            finding = ev.finding
            if finding.code == "X12-R008" and finding.location.segment_id:
                out.append([finding.location.segment_id, STRAY])
    return out, term


def _pyx12_text(data: bytes) -> tuple[str, str | None]:
    """The text pyx12 is given (normalisations 1 and 2) and the ISA12 to restore, if patched."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if data.startswith(EBCDIC_ISA):
        text = data.decode("cp037")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    original_version = None
    fixed = len(text) >= 106 and text.startswith("ISA") and all(text[i] == text[3] for i in ISA_SEPARATORS)
    if fixed and text[84:89] not in PYX12_VERSIONS:
        original_version = text[84:89]
        text = text[:84] + "00401" + text[89:]
    if fixed:
        term = text[105]
        body = text.rstrip(TRAILING_JUNK)
        if not body.endswith(term):
            text = body + term
    return text, original_version


def _theirs(data: bytes) -> list[list[str]]:
    """pyx12's segments as element lists (raises whatever pyx12 raises)."""
    text, original_version = _pyx12_text(data)
    reader = pyx12_x12file.X12Reader(io.StringIO(text, newline=""))
    out: list[list[str]] = []
    for seg in reader:
        values = [comp.subele_term.join(el.value for el in comp.elements) for comp in seg.elements]
        out.append([seg.seg_id, *values])
    if original_version is not None and out and out[0][0] == "ISA":
        out[0][12] = original_version
    return out


def _strip_line_breaks(segments: list[list[str]], term: str | None) -> list[list[str]]:
    """Normalisation 3, applied to pyx12's side."""
    if term is not None and term in "\r\n":
        return [[*seg[:-1], seg[-1].rstrip("\r\n")] for seg in segments]
    return [[v.replace("\r", "").replace("\n", "") for v in seg] for seg in segments]


def _params() -> list[object]:
    params: list[object] = []
    for path in FILES:
        marks = []
        if path.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path.name]))
        params.append(pytest.param(path, id=path.name, marks=marks))
    return params


@pytest.mark.corpus
@pytest.mark.parametrize("path", _params())
def test_segments_match_pyx12(path: Path) -> None:
    data = path.read_bytes()
    try:
        theirs = _theirs(data)
    except Exception as exc:  # noqa: BLE001 - any pyx12 failure means "not comparable"
        message = " ".join(str(exc).split())[:160]  # one line: pyx12 quotes raw (multi-line) input
        pytest.skip(f"pyx12 cannot read {path.name}: {type(exc).__name__}: {message}")
    ours, term = _ours(data)
    theirs = _strip_line_breaks(theirs, term)
    # Normalisation 4: where we report a stray segment, compare its id only.
    theirs = [[seg[0], STRAY] if i < len(ours) and ours[i][1:] == [STRAY] else seg for i, seg in enumerate(theirs)]

    for n, (mine, other) in enumerate(zip(ours, theirs, strict=False)):
        assert mine == other, f"segment #{n + 1} differs: ours {mine!r}, pyx12 {other!r}"
    assert len(ours) == len(theirs), (
        f"segment count differs: ours {len(ours)}, pyx12 {len(theirs)}; "
        f"first extra: {(ours[len(theirs) :] or theirs[len(ours) :])[0]!r}"
    )


def test_corpus_has_comparable_files() -> None:
    """Guard against the differential silently skipping everything."""
    comparable = 0
    for path in FILES:
        try:
            _theirs(path.read_bytes())
        except Exception:  # noqa: BLE001 - counting what pyx12 can read
            continue
        comparable += 1
    assert comparable >= 50, f"only {comparable} corpus files are readable by pyx12"
