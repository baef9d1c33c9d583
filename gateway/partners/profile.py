"""The partner profile schema (``partners/<id>.yaml``) and the directory that finds profiles.

A profile says who the partner is on the wire (ISA qualifier/id for test
and production, GS ids; a cXML credential; the inbox folder for CSV), what
it sends and which map, guide overlay and acknowledgment policy applies to
each document, its code tables and cross-reference tables, and where its
files come from and go to (channels: schema only until their issue lands).
Every key is checked (``extra="forbid"``); see ``docs/onboarding.md``.
"""

from __future__ import annotations

import difflib
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.partners.sftp_options import SftpOptions
from gateway.reconcile.config import ReconciliationConfig
from gateway.routing import Rule
from gateway.x12.findings import RULES, Finding


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class X12Identity(_Strict):
    """One ISA/GS identity."""

    qualifier: str = Field(min_length=2, max_length=2, description="ISA05/ISA07, e.g. ZZ, 01.")
    id: str = Field(min_length=1, max_length=15, description="ISA06/ISA08 without padding.")
    gs: str | None = Field(default=None, max_length=15, description="GS02/GS03; defaults to the ISA id.")

    @property
    def gs_id(self) -> str:
        """The GS id (the ISA id when not given)."""
        return self.gs or self.id


class AckPolicy(StrEnum):
    """When we send a functional acknowledgment (997/999)."""

    NEVER = "never"
    ON_ERROR = "on_error"
    ALWAYS = "always"


class TA1Policy(StrEnum):
    """When we send a TA1 (on request = when ISA14 is 1; envelope errors always get one unless never)."""

    NEVER = "never"
    ON_REQUEST = "on_request"
    ALWAYS = "always"


class Delimiters(_Strict):
    """Outbound delimiters for this partner."""

    element: str = Field(default="*", min_length=1, max_length=1)
    component: str = Field(default=">", min_length=1, max_length=1)
    repetition: str = Field(default="^", min_length=1, max_length=1)
    segment: str = Field(default="~", min_length=1, max_length=1)
    suffix: Literal["", "\n", "\r\n"] = "\n"


class X12Settings(_Strict):
    """The partner's X12 identity and envelope preferences."""

    version: Literal["004010", "005010"] = "004010"
    production: X12Identity
    test: X12Identity | None = None
    us: X12Identity | None = Field(default=None, description="Our identity on this partner's interchanges.")
    delimiters: Delimiters = Field(default_factory=Delimiters)
    ack: AckPolicy = AckPolicy.ALWAYS
    ta1: TA1Policy = TA1Policy.ON_REQUEST


class CxmlIdentity(_Strict):
    """A cXML credential (Header/From/Credential)."""

    domain: str
    identity: str


class DocumentSettings(_Strict):
    """How one document type from (or to) this partner is handled."""

    map: str = Field(description="A map name from maps/ (or the partner's own maps).")
    direction: Literal["inbound", "outbound"] = "inbound"
    overlay: str | None = Field(
        default=None, description="An implementation-guide overlay file, relative to partners/."
    )
    ack: AckPolicy | None = Field(default=None, description="Overrides the partner's ack policy for this set.")
    files: str | None = Field(default=None, description="A file-name glob choosing this map for CSV/XML files.")


class XrefSettings(_Strict):
    """A cross-reference table: inline values, or a CSV/YAML file relative to partners/."""

    file: str | None = None
    key: str | None = Field(default=None, description="CSV column with the partner's value.")
    value: str | None = Field(default=None, description="CSV column with our value.")
    values: dict[str, str] | None = None


class ChannelSettings(_Strict):
    """Where files come from or go to: the ``inbox``/``outbox`` folders, or a partner's SFTP server (docs/sftp.md)."""

    channel: Literal["inbox", "outbox", "sftp"] = "inbox"
    path: str | None = None
    host: str | None = None
    port: int = 22
    username: str | None = None
    remote_dir: str | None = None
    host_key: str | None = None
    stable_seconds: float | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="inbound: seconds a file must stay unchanged before it is taken, when the platform gives no "
        "close-after-write event (default: gateway.yaml's intake.stable_seconds).",
    )
    sftp: SftpOptions | None = Field(default=None, description="channel sftp: see docs/sftp.md.")


class DuplicatePolicy(StrEnum):
    """What happens to a duplicate: rejected, held for an operator, or let through."""

    REJECT = "reject"
    HOLD = "hold"
    ALLOW = "allow"


class DuplicateSettings(_Strict):
    """Duplicate detection settings."""

    policy: DuplicatePolicy = DuplicatePolicy.REJECT
    isa13_window_days: int | None = Field(
        default=None, ge=0, description="Days an ISA13 counts as seen; 0 turns the check off; default: gateway.yaml's."
    )


#: Finding codes a profile may accept: the partner's content habits (segment order or use, element
#: values, a GS01 that does not match the set, an unpadded ISA). Envelope integrity (counts, control
#: numbers, trailers, delimiters) can never be accepted: the sets could not be trusted.
ACCEPTABLE_CODES = frozenset(
    code for code in RULES if code.startswith(("X12-V1", "X12-V2")) or code in ("X12-S007", "X12-R002")
)


class AcceptedFinding(_Strict):
    """A validation error this partner is known to make, accepted with a warning (AK5/IK5 ``E``)."""

    code: str = Field(description="The finding code, e.g. X12-V107 (segment not in proper sequence).")
    sets: list[str] = Field(
        default_factory=list, description="Transaction set ids it is accepted in (empty: every set)."
    )
    segment: str | None = Field(default=None, description="Only on this segment id (e.g. PID).")
    element: int | None = Field(default=None, ge=1, description="Only on this element position.")
    reason: str = Field(min_length=1, description="Why it is accepted (kept with every finding it waives).")

    @field_validator("code")
    @classmethod
    def _known(cls, value: str) -> str:
        if value in ACCEPTABLE_CODES:
            return value
        if value in RULES:
            raise ValueError(
                f"{value} ({RULES[value].title}) cannot be accepted: it breaks the envelope; "
                "acceptable: X12-R002, X12-S007, X12-V1xx and X12-V2xx codes"
            )
        close = difflib.get_close_matches(value, sorted(ACCEPTABLE_CODES), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown finding code {value!r}{hint}")

    def matches(self, finding: Finding, set_id: str | None) -> bool:
        """Whether this entry accepts ``finding`` (in set ``set_id``; None outside any set)."""
        if finding.code != self.code:
            return False
        if self.sets and set_id is not None and set_id not in self.sets:
            return False
        if self.segment is not None and finding.location.segment_id != self.segment:
            return False
        return self.element is None or finding.location.element == self.element


class AckTracking(_Strict):
    """Which interchanges we send this partner must be answered by a 997/999, and how soon."""

    expect: list[str] | None = Field(
        default=None,
        description="Set ids (850) or group types (PO) we expect a 997/999 for; default: every document we "
        "send (never our 997/999/TA1); [] expects none.",
    )
    deadline_hours: float = Field(default=24, gt=0, description="Hours from delivery to the acknowledgment.")
    deadlines: dict[str, float] = Field(
        default_factory=dict, description="Hours per group type or set id (e.g. {PO: 4}), overriding deadline_hours."
    )

    @field_validator("expect", "deadlines")
    @classmethod
    def _names(cls, value: list[str] | dict[str, float] | None) -> list[str] | dict[str, float] | None:
        bad = [k for k in value or () if not (len(k) == 3 and k.isdigit()) and not (len(k) == 2 and k.isalpha())]
        if bad:
            raise ValueError(f"name transaction sets (850) or group types (PO), not {', '.join(map(repr, bad))}")
        return value

    def expects(self, set_id: str, functional_id: str) -> bool:
        """Whether a set ``set_id`` in a ``functional_id`` group must be acknowledged."""
        if set_id in ("997", "999") or functional_id == "FA":
            return False
        return self.expect is None or set_id in self.expect or functional_id in self.expect

    def deadline_seconds(self, set_id: str, functional_id: str) -> int:
        """The deadline for such a set, in seconds."""
        hours = self.deadlines.get(set_id, self.deadlines.get(functional_id, self.deadline_hours))
        return int(hours * 3600)


class RetentionSettings(_Strict):
    """How long this partner's files are kept at least before `gateway archive purge` may remove them."""

    keep_days: int = Field(ge=0, description="Days a file is kept at least (a contract or the law may say 7 years).")


class Profile(_Strict):
    """A trading partner."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    format: Literal["x12", "csv", "xml"] = "x12"
    x12: X12Settings | None = None
    cxml: list[CxmlIdentity] = Field(default_factory=list)
    documents: dict[str, DocumentSettings] = Field(default_factory=dict)
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code for this partner's documents that carry amounts but state no currency "
        "(no CUR, no Money/@currency). Without it such documents have no currency: none is assumed.",
    )
    tables: dict[str, dict[str, object]] = Field(default_factory=dict)
    xref: dict[str, XrefSettings] = Field(default_factory=dict)
    inbound: ChannelSettings | None = None
    outbound: ChannelSettings | None = None
    duplicates: DuplicateSettings = Field(default_factory=DuplicateSettings)
    accepted_findings: list[AcceptedFinding] = Field(
        default_factory=list, description="Validation errors accepted with a warning for this partner."
    )
    routes: list[Rule] = Field(
        default_factory=list,
        description="Routing rules for this partner's documents only, tried before gateway.yaml's `routes` "
        "(recorded as `<id>/<name>`; see docs/routing.md).",
    )
    acks: AckTracking = Field(
        default_factory=AckTracking, description="The 997/999 we are owed for what we send (docs/acks.md)."
    )
    reconciliation: ReconciliationConfig | None = Field(
        default=None,
        description="Tolerances, SLAs, unit conversions, item id order, lot-tracked items and allowed charges "
        "for this partner's PO chains, over gateway.yaml's (see docs/reconciliation.md).",
    )
    notes: str | None = None
    retention: RetentionSettings | None = Field(
        default=None, description="This partner's retention policy; overrides gateway.yaml's `retention`."
    )

    @field_validator("documents")
    @classmethod
    def _keys(cls, value: dict[str, DocumentSettings]) -> dict[str, DocumentSettings]:
        allowed = {"850", "855", "856", "810", "purchase_order", "po_acknowledgment", "ship_notice", "invoice"}
        bad = sorted(set(value) - allowed)
        if bad:
            raise ValueError(
                f"document keys are X12 set ids or canonical types ({', '.join(sorted(allowed))}); not {bad}"
            )
        return value

    def identities(self) -> list[tuple[X12Identity, bool]]:
        """``(identity, is_test)`` for every X12 identity of the partner."""
        if self.x12 is None:
            return []
        out = [(self.x12.production, False)]
        if self.x12.test is not None:
            out.append((self.x12.test, True))
        return out

    def accept(self, finding: Finding, set_id: str | None) -> Finding:
        """``finding`` waived when an ``accepted_findings`` entry covers it, else unchanged."""
        for entry in self.accepted_findings:
            if entry.matches(finding, set_id):
                return finding.waive(f"partner {self.id} accepts {entry.code}: {entry.reason}")
        return finding

    def inbound_map(self, key: str) -> DocumentSettings | None:
        """The inbound settings for a set id or document type."""
        found = self.documents.get(key)
        return found if found is not None and found.direction == "inbound" else None


class PartnerDirectory:
    """Profiles by id, by X12 sender (qualifier + id) and by cXML credential."""

    def __init__(self, profiles: list[Profile]) -> None:
        self.profiles = {p.id: p for p in profiles}
        self._x12: dict[tuple[str, str], tuple[Profile, bool]] = {}
        self._gs: dict[str, Profile] = {}
        self._cxml: dict[tuple[str, str], Profile] = {}
        for p in profiles:
            for ident, is_test in p.identities():
                self._x12[(ident.qualifier, ident.id)] = (p, is_test)
                self._gs[ident.gs_id] = p
            for cred in p.cxml:
                self._cxml[(cred.domain.lower(), cred.identity)] = p

    def get(self, partner_id: str) -> Profile | None:
        """The profile with this id."""
        return self.profiles.get(partner_id)

    def by_x12_sender(self, qualifier: str, sender: str, gs_sender: str | None = None) -> Profile | None:
        """The profile whose ISA (or, failing that, GS) identity sent this interchange."""
        hit = self._x12.get((qualifier.strip(), sender.strip()))
        if hit is not None:
            return hit[0]
        return self._gs.get(gs_sender.strip()) if gs_sender else None

    def by_cxml(self, domain: str, identity: str) -> Profile | None:
        """The profile with this cXML From credential."""
        return self._cxml.get((domain.lower(), identity.strip()))
