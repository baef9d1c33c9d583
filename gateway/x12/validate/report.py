"""Validation results: per set, group, interchange and file, ready for acks and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from gateway.x12.findings import Finding
from gateway.x12.model import GroupHeader, InterchangeHeader, SetHeader
from gateway.x12.segment import Segment


class Outcome(StrEnum):
    """A unit's verdict, named after the 997 codes it maps to."""

    ACCEPTED = "accepted"  # A
    ACCEPTED_WITH_ERRORS = "accepted_with_errors"  # E: only warnings noted
    PARTIAL = "partially_accepted"  # P: some sets of the group rejected
    REJECTED = "rejected"  # R


ACK_CODES = {
    Outcome.ACCEPTED: "A",
    Outcome.ACCEPTED_WITH_ERRORS: "E",
    Outcome.PARTIAL: "P",
    Outcome.REJECTED: "R",
}


def _outcome(findings: list[Finding]) -> Outcome:
    if any(f.is_error for f in findings):
        return Outcome.REJECTED
    return Outcome.ACCEPTED_WITH_ERRORS if findings else Outcome.ACCEPTED


@dataclass(slots=True)
class SetReport:
    """One transaction set's verdict and findings."""

    header: SetHeader
    segment_count: int
    findings: list[Finding] = field(default_factory=list)
    definition: str | None = None  # e.g. "004010/850", None when unsupported
    truncated: bool = False  # more errors than the cap; the rest were not listed

    @property
    def outcome(self) -> Outcome:
        """Accepted unless an error was found."""
        return _outcome(self.findings)

    @property
    def accepted(self) -> bool:
        """True when the set may be processed further."""
        return self.outcome is not Outcome.REJECTED


@dataclass(slots=True)
class GroupReport:
    """One functional group: its own findings and its sets."""

    header: GroupHeader
    trailer: Segment | None
    set_count: int
    findings: list[Finding] = field(default_factory=list)
    sets: list[SetReport] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        """R on a group error or when every set is rejected; P when some are."""
        if any(f.is_error for f in self.findings):
            return Outcome.REJECTED
        rejected = sum(1 for s in self.sets if not s.accepted)
        if self.sets and rejected == len(self.sets):
            return Outcome.REJECTED
        if rejected:
            return Outcome.PARTIAL
        noted = self.findings or any(s.findings for s in self.sets)
        return Outcome.ACCEPTED_WITH_ERRORS if noted else Outcome.ACCEPTED

    @property
    def accepted_count(self) -> int:
        """Sets accepted (with or without noted errors)."""
        return sum(1 for s in self.sets if s.accepted)


@dataclass(slots=True)
class InterchangeReport:
    """One interchange: envelope findings, groups and any TA1/ISB/ISE segments."""

    header: InterchangeHeader
    trailer: Segment | None = None
    findings: list[Finding] = field(default_factory=list)
    groups: list[GroupReport] = field(default_factory=list)
    service_segments: list[Segment] = field(default_factory=list)
    orphan_sets: list[SetReport] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """False when an envelope error rejects the whole interchange (TA1 R)."""
        return not any(f.is_error for f in self.findings)

    def sets(self) -> list[SetReport]:
        """Every set of the interchange, in file order."""
        return [s for g in self.groups for s in g.sets] + self.orphan_sets


@dataclass(slots=True)
class FileReport:
    """Everything found in one file."""

    interchanges: list[InterchangeReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # outside any interchange

    @property
    def valid(self) -> bool:
        """True when the file is X12 and every interchange, group and set is accepted."""
        if any(f.is_error for f in self.findings) or not self.interchanges:
            return False
        for ic in self.interchanges:
            if not ic.accepted or ic.orphan_sets:
                return False
            for group in ic.groups:
                if group.outcome is not Outcome.ACCEPTED and group.outcome is not Outcome.ACCEPTED_WITH_ERRORS:
                    return False
        return True

    def sets(self) -> list[SetReport]:
        """Every set in the file."""
        return [s for ic in self.interchanges for s in ic.sets()]
