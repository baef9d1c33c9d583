"""Whole transaction sets, one at a time: the unit translation works on.

:func:`iter_transaction_sets` streams a file and yields each set with its
segments (ST to SE) and its envelope context, holding one set in memory at a
time. Validation stays streaming (:mod:`gateway.x12.validate`); translation
needs a set's segments together, and a set is bounded where a file is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.x12.findings import Finding
from gateway.x12.model import SetEnd, SetHeader, SetStart
from gateway.x12.reader import Source, read_events
from gateway.x12.segment import Delimiters, Segment


@dataclass(slots=True)
class TransactionSet:
    """One set: ``segments`` runs from ST to SE (SE absent when the trailer was missing)."""

    header: SetHeader
    segments: list[Segment] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # envelope findings (counts, controls)

    @property
    def delimiters(self) -> Delimiters:
        """The delimiters of the interchange the set came in."""
        return self.header.interchange.delimiters

    @property
    def body(self) -> list[Segment]:
        """The segments between ST and SE."""
        end = -1 if self.segments and self.segments[-1].id == "SE" else len(self.segments)
        return self.segments[1:end]

    def find(self, seg_id: str) -> Iterator[Segment]:
        """Every segment with this id, in order."""
        return (s for s in self.segments if s.id == seg_id)

    def first(self, seg_id: str) -> Segment | None:
        """The first segment with this id, or None."""
        return next(self.find(seg_id), None)


def iter_transaction_sets(source: Source) -> Iterator[TransactionSet]:
    """Each transaction set of ``source`` in file order, with its envelope findings."""
    current: TransactionSet | None = None
    for ev in read_events(source):
        if type(ev) is Segment:
            if current is not None:
                current.segments.append(ev)
        elif isinstance(ev, SetStart):
            current = TransactionSet(ev.header, [ev.header.segment], list(ev.findings))
        elif isinstance(ev, SetEnd) and current is not None:
            if ev.trailer is not None:
                current.segments.append(ev.trailer)
            current.findings.extend(ev.findings)
            yield current
            current = None
