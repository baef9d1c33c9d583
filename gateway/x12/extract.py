"""One transaction set's segments, read back out of a file (``gateway messages show``).

Pure: bytes in, segment texts out. The set is found by its place in the file, as the ledger records
it (interchange, group and set positions, each counted from 1), and checked against its control
numbers, so a set that is not where the ledger says is reported rather than another one shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.x12.model import GroupStart, InterchangeStart, SetEnd, SetStart
from gateway.x12.reader import Source, read_events
from gateway.x12.segment import Segment

__all__ = ["SetText", "set_segments"]


@dataclass(slots=True)
class SetText:
    """The segments of one set as X12 text (ST to SE), ``total`` counted even past ``limit``."""

    segments: list[tuple[int, str]] = field(default_factory=list)  # (segment index in the interchange, text)
    total: int = 0
    found: bool = False


def set_segments(
    source: Source, interchange: int, group: int, position: int, control_number: str | None = None, limit: int = 50
) -> SetText:
    """The segments of the ``position``-th set of the ``group``-th group of the ``interchange``-th interchange.

    At most ``limit`` segments are kept (``total`` says how many there were); ``found`` is False when
    there is no such set, or its ST02 is not ``control_number``.
    """
    out = SetText()
    ic = gr = st = 0
    inside = False
    delimiters = None
    for item in read_events(source):
        if isinstance(item, InterchangeStart):
            ic, gr, delimiters = ic + 1, 0, item.header.delimiters
        elif isinstance(item, GroupStart):
            gr, st = gr + 1, 0
        elif isinstance(item, SetStart):
            st += 1
            inside = (ic, gr, st) == (interchange, group, position) and (
                control_number is None or item.header.control_number == control_number
            )
            if inside:
                out.found = True
                _keep(out, item.header.segment, delimiters, limit)
        elif inside and isinstance(item, Segment):
            _keep(out, item, delimiters, limit)
        elif inside and isinstance(item, SetEnd):
            if item.trailer is not None:
                _keep(out, item.trailer, delimiters, limit)
            return out
    return out


def _keep(out: SetText, segment: Segment, delimiters: object, limit: int) -> None:
    out.total += 1
    if len(out.segments) < limit:
        sep = getattr(delimiters, "element", "*")
        out.segments.append((segment.index, sep.join(segment.elements)))
