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
    """One functional group: its own findings, its sets, and running tallies.

    The tallies are kept as sets end, so the verdict stands even when the
    set reports themselves are not kept (``Validator(keep_sets=False)``,
    for flat memory on huge files).
    """

    header: GroupHeader
    trailer: Segment | None
    set_count: int
    findings: list[Finding] = field(default_factory=list)
    sets: list[SetReport] = field(default_factory=list)
    received: int = 0
    accepted_count: int = 0
    noted: int = 0  # sets accepted with warnings

    def add(self, report: SetReport, keep: bool = True) -> None:
        """Count a finished set (and keep it unless ``keep`` is False)."""
        self.received += 1
        if report.accepted:
            self.accepted_count += 1
            if report.findings:
                self.noted += 1
        if keep:
            self.sets.append(report)

    @property
    def outcome(self) -> Outcome:
        """R on a group error or when every set is rejected; P when some are."""
        if any(f.is_error for f in self.findings):
            return Outcome.REJECTED
        rejected = self.received - self.accepted_count
        if self.received and rejected == self.received:
            return Outcome.REJECTED
        if rejected:
            return Outcome.PARTIAL
        return Outcome.ACCEPTED_WITH_ERRORS if self.findings or self.noted else Outcome.ACCEPTED


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
