"""Compact per-set answers for a 997/999, kept as sets end (flat memory on big interchanges).

A distributor's batch is often one interchange of thousands of sets. Its
acknowledgment answers every set, but the set reports need not be kept
until the IEA: as each set ends, :meth:`GroupAnswers.add` writes its
AK2…AK5 (IK5) answer to bytes (a few dozen per accepted set) and the report
can go. :func:`~gateway.x12.ack.build.build_acks` then writes the group's
997/999 from these bytes and the group's tallies, exactly as it would from
the reports (the tests compare both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.x12.ack.build import _outbound_delimiters, _set_ack, ack_kind
from gateway.x12.segment import Delimiters
from gateway.x12.validate.report import SetReport
from gateway.x12.writer import Serialized, serialize


@dataclass(slots=True)
class GroupAnswers:
    """One group's answers so far: the serialized AK2…AK5 of each set, and what AK9 needs of them."""

    kind: str
    delimiters: Delimiters
    data: bytearray = field(default_factory=bytearray)
    count: int = 0  # segments written
    errors: bool = False  # some set had an error finding, or one the partner's profile accepts (AK5 E)
    set_ids: set[str] = field(default_factory=set)

    def add(self, report: SetReport) -> None:
        """Answer one finished set of the group."""
        segments = _set_ack(report, self.kind, self.delimiters)
        self.data += serialize(segments, self.delimiters)
        self.count += len(segments)
        self.errors = self.errors or any(f.is_error or f.waived is not None for f in report.findings)
        self.set_ids.add(report.header.set_id)

    def serialized(self) -> Serialized:
        """The answers, ready for the writer."""
        return Serialized(bytes(self.data), self.count)


class Answers:
    """Every group's answers in one interchange, keyed by the group's header (the same object in the set
    reports and the group report)."""

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: dict[int, GroupAnswers] = {}

    def add(self, report: SetReport) -> None:
        """Answer one finished set (an orphan set outside any group gets no answer: the TA1 covers it)."""
        group = report.header.group
        if group is None:
            return
        answers = self.groups.get(id(group))
        if answers is None:
            delimiters = _outbound_delimiters(report.header.interchange.delimiters)
            answers = self.groups[id(group)] = GroupAnswers(ack_kind(group.version), delimiters)
        answers.add(report)

    def get(self, group: object) -> GroupAnswers | None:
        """The answers for the group whose header is ``group`` (None: no set of it ended)."""
        return self.groups.get(id(group))


__all__ = ["Answers", "GroupAnswers"]
