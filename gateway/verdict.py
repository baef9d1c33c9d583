"""What was accepted: one decision per interchange, group and set, shared by every command (pure).

``gateway run`` records it, ``gateway translate`` exits on it, ``gateway
validate`` reports it and ``gateway ack`` prints the acknowledgment it
owes: all through :func:`decide`, so no command can call accepted what
another rejects. The decision takes what the translator yields (each set's
translation, then its interchange's report, validated with the partner's
guide overlays and accepted findings) and the partner the file belongs to
(its inbox folder, or ``--partner``):

- an interchange whose sender is not that partner is rejected whole, claims
  nothing and is acknowledged to nobody (one partner cannot send as another);
- an envelope error (ISA/IEA, a repeated GS06, a segment between sets)
  rejects every set under it, however well each one translated;
- 997, 999 and TA1 are acknowledgments: read and kept, never translated,
  never acknowledged;
- the acknowledgment owed follows the partner's profile (``ack``, ``ta1``
  and each document's ``ack``), exactly as the runtime sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.errors import DocumentError, GatewayError, Location
from gateway.partners.profile import AckPolicy, Profile
from gateway.partners.profile import PartnerDirectory as Partners
from gateway.partners.profile import TA1Policy as ProfileTA1
from gateway.translate import Translation
from gateway.x12.ack.build import TA1Policy, ack_kind, build_acks
from gateway.x12.ack.read import TA1Ack, is_acknowledgment, read_ta1
from gateway.x12.findings import Finding
from gateway.x12.model import InterchangeHeader
from gateway.x12.validate.report import GroupReport, InterchangeReport, Outcome
from gateway.x12.writer import ControlSequence

if TYPE_CHECKING:
    from gateway.x12.ack.answers import Answers

#: How a profile's TA1 policy reads for the ack builder.
TA1_POLICY = {
    ProfileTA1.NEVER: TA1Policy.NEVER,
    ProfileTA1.ON_REQUEST: TA1Policy.ON_ERROR,
    ProfileTA1.ALWAYS: TA1Policy.ALWAYS,
}

#: The functional identifier of acknowledgment groups (997/999).
ACK_GROUP = "FA"

SENDER_MISMATCH = "SEC-001"
"""The code of an interchange whose sender is not the partner its file belongs to."""

ACCEPTED_SET = frozenset({"translated", "acknowledgment"})


@dataclass(slots=True)
class AckPlan:
    """The acknowledgment an interchange is owed: to whom, what it answers, and how."""

    partner: str
    report: InterchangeReport  # the groups it answers (a 997/999 each)
    functional: bool
    ta1: TA1Policy
    kind: str  # 997, 999 or TA1
    answers: Answers | None = None  # the sets' answers kept as they ended, when the report keeps no sets

    def build(self, next_control: ControlSequence, when: datetime, *, duplicate: bool = False) -> bytes | None:
        """The acknowledgment's bytes (None: nothing to send under the policy)."""
        return build_acks(
            self.report,
            next_control,
            when,
            functional=self.functional,
            ta1=self.ta1,
            duplicate=duplicate,
            answers=self.answers,
        )


@dataclass(slots=True)
class SetVerdict:
    """One set: ``translated``, ``acknowledgment`` (an inbound 997/999, read), ``rejected`` (by
    validation or with its envelope) or ``failed`` (valid, but its map could not translate it)."""

    translation: Translation
    status: str
    reason: str | None = None
    errors: list[GatewayError] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Translated, or an acknowledgment read."""
        return self.status in ACCEPTED_SET

    @property
    def warnings(self) -> list[Finding]:
        """Findings the partner's profile accepts: the set goes on, the 997/999 says ``E``."""
        report = self.translation.validation
        return [f for f in report.findings if f.waived is not None] if report is not None else []


@dataclass(slots=True)
class GroupVerdict:
    """One functional group: its status, why it was refused (if it was), its sets."""

    report: GroupReport
    status: str
    refused: str | None = None
    sets: list[SetVerdict] = field(default_factory=list)


@dataclass(slots=True)
class InterchangeVerdict:
    """One interchange: its status, its groups and sets, and the acknowledgment it is owed.

    ``claim`` is False when nothing of it may be claimed (no ISA13 or business dedupe keys): its
    sender is not the file's partner. ``ack`` is None when nothing is sent; ``ack_note`` says why.
    """

    report: InterchangeReport
    position: int
    partner: Profile | None
    status: str
    reason: str | None = None
    groups: list[GroupVerdict] = field(default_factory=list)
    orphans: list[SetVerdict] = field(default_factory=list)
    ack: AckPlan | None = None
    ack_note: str | None = None
    claim: bool = True
    received_acks: list[TA1Ack] = field(default_factory=list)

    def sets(self) -> list[SetVerdict]:
        """Every set, in file order (orphans last)."""
        return [s for g in self.groups for s in g.sets] + self.orphans

    @property
    def claims_isa13(self) -> bool:
        """Whether recording it claims its ISA13, so that another interchange with it is a duplicate.

        Not when it is rejected (a TA1 ``R``: an envelope error, or every group rejected), as X12
        practice reads it: a rejected interchange was not accepted, so the partner's corrected resend
        may carry the same control number and must be processed, not refused as a duplicate. An
        interchange accepted, even partially or with errors, keeps its claim.
        """
        return self.claim and self.status != "rejected"

    @property
    def valid(self) -> bool:
        """What ``validate`` says: the envelope accepted and no set rejected (a map failure is ours)."""
        return self.status != "rejected" and all(s.status != "rejected" for s in self.sets())

    @property
    def accepted(self) -> bool:
        """What ``translate`` says: valid, and every set translated (or an acknowledgment read)."""
        return self.status != "rejected" and all(s.accepted for s in self.sets())

    def problems(self) -> list[str]:
        """One line per part not accepted, for the command line."""
        out: list[str] = []
        where = f"interchange {self.report.header.control_number}"
        if self.status == "rejected" and self.reason:
            out.append(f"{where} rejected: {self.reason}")
        for s in self.sets():
            t = s.translation
            if not s.accepted and (self.status != "rejected" or s.reason != self.reason):
                out.append(f"{where}, set {t.set_id} {t.set_control} {s.status}: {s.reason or ''}".rstrip(": "))
        return out


def decide(
    report: InterchangeReport,
    sets: Iterable[Translation],
    *,
    partners: Partners,
    expected: str | None,
    position: int = 1,
    file: str | None = None,
    answers: Answers | None = None,
) -> InterchangeVerdict:
    """The decision for one interchange (``sets``: its translations, as the translator yielded them;
    ``expected``: the partner the file belongs to, None when the envelope says; ``answers``: its sets'
    answers kept as they ended, when the report keeps no set reports: a big interchange)."""
    h = report.header
    owner, mismatch = sender_refusal(h, partners=partners, expected=expected, position=position, file=file)
    envelope_errors = [f for f in report.findings if f.is_error]
    verdict = InterchangeVerdict(report, position, None if mismatch else owner, _status(report))
    if mismatch is not None:
        verdict.status, verdict.reason, verdict.claim = "rejected", mismatch, False
    elif envelope_errors:
        verdict.status = "rejected"
        verdict.reason = "; ".join(_located(f) for f in envelope_errors[:5])
    verdict.received_acks = [read_ta1(s, h.control_number) for s in report.service_segments if s.id == "TA1"]
    refused = group_refusals(report)
    owners: dict[int, GroupVerdict] = {}  # GS byte offset → its group's verdict
    for g in report.groups:
        gv = GroupVerdict(g, "rejected" if mismatch else _group_status(g.outcome))
        gv.refused = mismatch or refused.get(_offset(g.header))
        verdict.groups.append(gv)
        owners[_offset(g.header)] = gv
    for item in sets:
        group = item.validation.header.group if item.validation is not None else None
        gv_or_none = owners.get(_offset(group)) if group is not None else None
        if gv_or_none is None:
            verdict.orphans.append(set_verdict(item, verdict.reason or "outside any functional group"))
        else:
            gv_or_none.sets.append(set_verdict(item, gv_or_none.refused))
    if mismatch is None:
        verdict.ack, verdict.ack_note = ack_plan(report, verdict.partner, answers)
    else:
        verdict.ack_note = "not acknowledged: its sender is not this file's partner"
    return verdict


def sender_refusal(
    header: InterchangeHeader, *, partners: Partners, expected: str | None, position: int, file: str | None
) -> tuple[Profile | None, str | None]:
    """The interchange's partner, and why its sets are refused whatever they hold because its sender is
    not the file's partner (None: it is). Known from the ISA alone, before the interchange's sets."""
    sender = partners.by_x12_sender(header.sender_qualifier, header.sender_id)
    owner = partners.get(expected) if expected else sender
    mismatch = _mismatch(header, sender, owner, position, file) if expected else None
    return owner, None if mismatch is None else f"{SENDER_MISMATCH} {mismatch}"


def group_refusals(report: InterchangeReport) -> dict[int, str | None]:
    """Why each group's sets are refused whatever they hold (by GS byte offset; None: not refused): the
    envelope's first error, else the group's. An envelope the validator rejects is not passed on: the
    TA1/997 tells the partner to resend it, and the resend must not be a duplicate. Needs only the
    envelope findings, so a first quick pass over a big file knows it before the interchange's trailer."""
    envelope_errors = [f for f in report.findings if f.is_error]
    out: dict[int, str | None] = {}
    for g in report.groups:
        group_errors = [f for f in g.findings if f.is_error]
        refused = envelope_errors[0] if envelope_errors else (group_errors[0] if group_errors else None)
        out[_offset(g.header)] = None if refused is None else f"envelope rejected: {_located(refused)}"
    return out


def _offset(group: object) -> int:
    segment = getattr(group, "segment", None)
    return (segment.offset if segment is not None else None) or 0


def _located(f: Finding) -> str:
    """``X12-R008 ISA 000000201 > BAK (byte 345): segment BAK inside a group...``"""
    where = f.location.describe()
    return f"{f.code} {where}: {f.message}" if where else f"{f.code} {f.message}"


def _mismatch(
    h: InterchangeHeader,
    sender: Profile | None,
    owner: Profile | None,
    position: int,
    file: str | None,
) -> str | None:
    """Why this interchange may not be taken as ``owner``'s, the file's partner (None: it may)."""
    if owner is None:
        return None  # an unknown partner id: nothing to compare with (the caller reports it)
    isa = h.segment
    where = f"interchange {position} (ISA13 {h.control_number}, byte {isa.offset})"
    if file:
        where = f"{file}: {where}"
    names = f"{h.sender_qualifier}:{h.sender_id}" + (f" (partner {sender.id})" if sender is not None else "")
    if owner.x12 is None:
        return f"{where} is X12 from {names}, but partner {owner.id} sends {owner.format}, not X12"
    if sender is None or sender.id != owner.id:
        return f"{where} names sender {names}, but this file belongs to partner {owner.id}"
    return None


def set_verdict(item: Translation, refused: str | None) -> SetVerdict:
    """One set's verdict: ``refused`` (by its envelope or sender) whatever it holds, else what it holds."""
    if refused:
        return SetVerdict(item, "rejected", refused)
    rejected = item.validation is not None and not item.validation.accepted
    if not item.ok:
        reason = item.errors[0].message if item.errors else None
        return SetVerdict(item, "rejected" if rejected else "failed", reason, list(item.errors))
    if item.acknowledgment is not None:
        return SetVerdict(item, "acknowledgment")
    return SetVerdict(item, "translated")


def _set_ids(group: GroupReport, answers: Answers | None) -> set[str]:
    """The set ids of ``group``'s sets (from the compact answers when the report keeps no sets)."""
    kept = answers.get(group.header) if answers is not None and not group.sets else None
    return kept.set_ids if kept is not None else {s.header.set_id for s in group.sets}


def _acknowledgment_group(group: GroupReport, answers: Answers | None) -> bool:
    """An FA group, or one whose sets are all 997/999."""
    ids = _set_ids(group, answers)
    return group.header.functional_id == ACK_GROUP or (bool(ids) and all(is_acknowledgment(i) for i in ids))


def ack_plan(
    report: InterchangeReport, partner: Profile | None, answers: Answers | None = None
) -> tuple[AckPlan | None, str | None]:
    """What ``report`` is owed under ``partner``'s profile, or None and why nothing is sent."""
    if partner is None or partner.x12 is None:
        return None, "no partner profile for this sender: nobody to acknowledge to"
    answerable = [g for g in report.groups if not _acknowledgment_group(g, answers)]
    carries_acks = any(s.id == "TA1" for s in report.service_segments) or len(answerable) < len(report.groups)
    if carries_acks and not answerable:
        return None, "it carries only acknowledgments (997/999/TA1), which are never acknowledged"
    settings = partner.x12
    due = [g for g in answerable if _ack_due(g, partner, settings.ack, answers)]
    answered = report if len(due) == len(report.groups) else replace(report, groups=due)
    kind = ack_kind(due[0].header.version) if due else "TA1"
    return AckPlan(partner.id, answered, bool(due), TA1_POLICY[settings.ta1], kind, answers), None


def _ack_due(group: GroupReport, profile: Profile, default: AckPolicy, answers: Answers | None = None) -> bool:
    """Whether ``group`` gets a 997/999: the documents' own ``ack`` setting, else the partner's.
    Several set types in one group: the most demanding setting wins (always > on_error > never)."""
    policies = {
        doc.ack if (doc := profile.documents.get(set_id)) is not None and doc.ack else default
        for set_id in _set_ids(group, answers)
    } or {default}
    if AckPolicy.ALWAYS in policies:
        return True
    return AckPolicy.ON_ERROR in policies and group.outcome is not Outcome.ACCEPTED


def _status(ic: InterchangeReport) -> str:
    outcomes = {g.outcome for g in ic.groups}
    if not outcomes or outcomes == {Outcome.ACCEPTED}:
        return "accepted"
    if Outcome.REJECTED in outcomes and len(outcomes) == 1:
        return "rejected"
    if Outcome.ACCEPTED_WITH_ERRORS in outcomes and len(outcomes) == 1:
        return "accepted_with_errors"
    return "partially_accepted"


def _group_status(outcome: Outcome) -> str:
    return {
        Outcome.ACCEPTED: "accepted",
        Outcome.ACCEPTED_WITH_ERRORS: "accepted_with_errors",
        Outcome.PARTIAL: "partially_accepted",
    }.get(outcome, "rejected")


def decisions(
    items: Iterable[Translation | InterchangeReport], *, partners: Partners, expected: str | None, file: str | None
) -> Iterator[InterchangeVerdict | Translation]:
    """The translator's output as decisions: each interchange's verdict once its report arrives, and
    translations outside any interchange (CSV/XML documents, findings outside an envelope) as they come."""
    pending: list[Translation] = []
    position = 0
    for item in items:
        if isinstance(item, InterchangeReport):
            position += 1
            yield decide(item, pending, partners=partners, expected=expected, position=position, file=file)
            pending = []
        elif item.set_id is not None and item.validation is not None:
            pending.append(item)
        else:
            yield item
    yield from pending  # sets of an interchange without a trailer


def loose_failure(item: Translation) -> str | None:
    """Why a translation outside any interchange was not accepted (None: it was)."""
    if item.ok:
        return None
    if item.errors:
        return f"{item.errors[0].code} {item.errors[0].message}"
    return "no document"


def error_of(verdict: InterchangeVerdict) -> GatewayError | None:
    """The interchange's refusal as a located error (None when it was not refused)."""
    if verdict.status != "rejected" or verdict.reason is None:
        return None
    h = verdict.report.header
    code = verdict.reason.split(" ", 1)[0]
    loc = Location(interchange=h.control_number, segment_id="ISA", byte_offset=h.segment.offset)
    return DocumentError(verdict.reason, code, loc)


__all__ = [
    "ACK_GROUP",
    "SENDER_MISMATCH",
    "TA1_POLICY",
    "AckPlan",
    "GroupVerdict",
    "InterchangeVerdict",
    "SetVerdict",
    "ack_plan",
    "decide",
    "decisions",
    "error_of",
    "group_refusals",
    "loose_failure",
    "sender_refusal",
    "set_verdict",
]
