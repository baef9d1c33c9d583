"""Planning, pure: what a file's sets and documents become in the ledger, before any I/O.

The runtime (:mod:`gateway.runtime.process`) reads a file, translates it and asks this module what each
part becomes: the plan dataclasses the store records in one transaction (:class:`FilePlan` and its
parts), each document's plan with its routing decision (:func:`document_plan`, through a
:data:`Router`), a failed document's plan, an inbound acknowledgment's plan, and how a recorded plan
counts towards the file's outcome and final status (:func:`count_plan`, :func:`final_status`). It
imports no store, no file system and no clock; ids, correlation ids and control numbers are handed in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gateway.errors import GatewayError, location_dict
from gateway.mapping.checks import DocumentWarning
from gateway.partners.profile import DuplicatePolicy, Profile
from gateway.routing import DEFAULT_OUTBOUND
from gateway.routing import PARTNER_OUTBOX as PARTNER_OUTBOX  # re-exported: the runtime and CLI name it here
from gateway.translate import Translation
from gateway.x12.ack.build import ta1_blocker
from gateway.x12.ack.read import FunctionalAck, TA1Ack, ack_dict
from gateway.x12.findings import Finding
from gateway.x12.model import GroupHeader
from gateway.x12.validate.report import InterchangeReport

ACKNOWLEDGMENT = "acknowledgment"
"""The document type an inbound 997/999/TA1 is kept under (read, never translated or acknowledged)."""

RELEASED = "released by an operator"
"""How ``gateway release`` marks a held file's reason: processed again, its duplicates let through."""

CANONICAL_JSON = "canonical-json"
"""The shipped destination every inbound document is routed to by default (outbox/canonical/)."""

Router = Callable[
    [str | None, str, bool, Callable[[], dict[str, Any]]], tuple[list[tuple[str, str | None]], dict[str, Any]]
]
"""Routing: (partner, document type, test, the canonical JSON on demand) -> the (destination, rule) pairs
it is owed to (empty: unrouted) and the decision to keep with it."""


def default_outbound_router(
    partner: str | None, doc_type: str, test: bool, document: Callable[[], dict[str, Any]]
) -> tuple[list[tuple[str, str | None]], dict[str, Any]]:
    """Everything we send partners to ``partner-outbox`` (the shipped default)."""
    name = DEFAULT_OUTBOUND.name
    return [(PARTNER_OUTBOX, name)], {"rules": [name], "destinations": [PARTNER_OUTBOX]}


def default_router(
    partner: str | None, doc_type: str, test: bool, document: Callable[[], dict[str, Any]]
) -> tuple[list[tuple[str, str | None]], dict[str, Any]]:
    """Every document to the canonical JSON files (the shipped default)."""
    return [(CANONICAL_JSON, "default")], {"rules": ["default"], "destinations": [CANONICAL_JSON]}


@dataclass(slots=True)
class DocPlan:
    """A canonical document to record. ``on_duplicate``: the status a duplicate business key gives
    (``duplicate`` or ``held``), or None to let it through. ``duplicate_of`` is filled in."""

    doc_type: str
    canonical: str
    correlation_id: str
    position: int = 0
    partner_id: str | None = None
    business_key: str | None = None
    status: str = "translated"
    reason: str | None = None
    on_duplicate: str | None = "duplicate"
    duplicate_of: int | None = None
    id: int | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)  # business-level (BIZ-*), located
    parent_id: int | None = None  # a reprocessing: the document it replaces
    routes: list[tuple[str, str | None]] = field(default_factory=list)  # (destination, rule) it is owed to
    route: dict[str, Any] | None = None  # the routing decision, kept with it (documents.route)


@dataclass(slots=True)
class SetPlan:
    """A transaction set and its document (None when it failed)."""

    set_id: str
    control_number: str
    status: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    document: DocPlan | None = None


@dataclass(slots=True)
class GroupPlan:
    """A functional group and its sets."""

    functional_id: str
    control_number: str
    version: str
    status: str
    sender_code: str | None = None
    receiver_code: str | None = None
    sets: list[SetPlan] = field(default_factory=list)
    first: int = 0  # sets of the group recorded by earlier chunks (the positions of ``sets`` follow them)
    position: int = 0  # its place in the interchange (0: its place in the plan's ``groups``)
    id: int | None = None  # set once recorded; a later chunk adds sets to it and updates its status
    stored: str | None = None  # the status recorded


@dataclass(slots=True)
class OutboundPlan:
    """An acknowledgment recorded with the results that owe it. ``data`` is its bytes when built in
    this transaction; None when an earlier attempt's acknowledgment was found and is sent again."""

    partner_id: str
    kind: str
    sha256: str
    control_number: str | None
    reason: str
    data: bytes | None = None
    id: int | None = None
    routes: list[tuple[str, str | None]] = field(default_factory=list)  # (destination, rule) it is owed to
    route: dict[str, Any] | None = None  # the routing decision, kept with it (outbound.route)


AckRouter = Callable[[str], tuple[list[tuple[str, str | None]], dict[str, Any]]]
"""Where an interchange's acknowledgment goes, once its kind (997, 999, TA1) is known: a :data:`Router`
bound to the partner and the interchange's test indicator."""

AckBuilder = Callable[[Callable[[], int], bool], OutboundPlan | None]
"""Builds (and archives) an interchange's acknowledgment inside the results transaction: called with
``draw`` (the partner's next ``ack`` sequence value, in that transaction) and whether the interchange
turned out to be a duplicate; returns what to record, or None when nothing is sent."""


@dataclass(slots=True)
class InterchangePlan:
    """An interchange; ``isa13_key`` is claimed within ``isa13_window`` seconds (None: forever).

    ``ack`` builds its acknowledgment once its duplicate check is done; ``ack_marker`` names it among
    the file's outbound rows, so a rerun after a crash sends the recorded one again instead of a new one.

    A big interchange comes in several chunks, the same plan each time with the chunk's groups and sets:
    the first records it (``id`` is then set, its ISA13 claimed), later ones add their sets to it and
    update its status and its groups' (the last one, at its trailer, carries ``ack``).
    """

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    control_number: str
    version: str
    status: str
    position: int = 1
    test: bool = False
    reason: str | None = None
    isa13_key: str | None = None
    isa13_window: float | None = None
    on_duplicate: str | None = "duplicate"
    groups: list[GroupPlan] = field(default_factory=list)
    ack: AckBuilder | None = None
    ack_marker: str | None = None
    ack_old_markers: tuple[str, ...] = ()  # how earlier versions named the same acknowledgment
    ack_router: AckRouter | None = None  # where its acknowledgment is delivered (None: nowhere)
    duplicate_of: int | None = None
    outbound: OutboundPlan | None = None
    id: int | None = None
    stored: str | None = None  # the status recorded; a later chunk of a big interchange updates it
    release_isa13: bool = False  # a big interchange claimed its ISA13 at its first chunk and ended rejected


@dataclass(slots=True)
class FilePlan:
    """What one leased file yielded (or one chunk of a big file). ``complete``: the file's last chunk,
    after which its results count as recorded (``results_at``). ``bytes_key``: the file's sha256, claimed
    first; a duplicate (``bytes_duplicate_of``) records nothing else. ``rerun``: an earlier attempt may
    have recorded acknowledgments to send again. ``lost`` says why the plan was not recorded."""

    file_id: int
    partner_id: str | None = None
    interchanges: list[InterchangePlan] = field(default_factory=list)
    documents: list[DocPlan] = field(default_factory=list)
    complete: bool = True
    bytes_key: str | None = None
    on_bytes_duplicate: str | None = "duplicate"
    bytes_duplicate_of: int | None = None
    rerun: bool = False
    conclude: Callable[[FilePlan], FileFinal] | None = None
    lost: str | None = None
    owed: list[Any] = field(default_factory=list)  # filled in by the store: the deliveries recorded with it


@dataclass(slots=True)
class FileFinal:
    """A file's final status, set once its outputs are written."""

    file_id: int
    status: str
    reason: str | None = None
    details: dict[str, Any] | None = None


@dataclass(slots=True)
class FileOutcome:
    """What processing did with one file, for the run summary."""

    file_id: int
    status: str
    reason: str | None = None
    sets: int = 0
    documents: int = 0
    failed: int = 0
    duplicates: int = 0  # duplicate or held sets/documents
    held: int = 0
    acks: list[str] = field(default_factory=list)
    acknowledgments: int = 0  # inbound 997/999/TA1 read and kept
    unrouted: int = 0  # documents no routing rule matched (kept, an exception for an operator)

    def details(self) -> dict[str, Any]:
        """What the file's final event keeps of this outcome."""
        return {
            "sets": self.sets,
            "documents": self.documents,
            "failed": self.failed,
            "duplicates": self.duplicates,
            "held": self.held,
            "acks": self.acks,
            "acknowledgments": self.acknowledgments,
            "unrouted": self.unrouted,
        }

    @classmethod
    def from_final(cls, final: FileFinal) -> FileOutcome:
        """The outcome recorded with a file's results (a rerun that only writes its outputs)."""
        d = final.details or {}
        return cls(
            final.file_id,
            final.status,
            final.reason,
            sets=int(d.get("sets", 0)),
            documents=int(d.get("documents", 0)),
            failed=int(d.get("failed", 0)),
            duplicates=int(d.get("duplicates", 0)),
            held=int(d.get("held", 0)),
            acks=[str(a) for a in d.get("acks", [])],
            acknowledgments=int(d.get("acknowledgments", 0)),
            unrouted=int(d.get("unrouted", 0)),
        )


def business_key(doc: BaseModel) -> str | None:
    """The document's duplicate key per partner (each canonical document type says its own), or None."""
    key = getattr(doc, "business_key", None)
    return key() if callable(key) else None


def errors_json(errors: list[GatewayError]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        item: dict[str, Any] = {"code": e.code, "message": e.message}
        if e.location is not None:
            item["where"] = e.location.describe()
            item["location"] = location_dict(e.location)
        out.append(item)
    return out


def finding_json(f: Finding) -> dict[str, Any]:
    """An accepted finding as the ledger keeps it beside a set's errors (``severity: warning``)."""
    return {
        "code": f.code,
        "message": f.message,
        "severity": f.severity.value,
        "accepted": f.waived,
        "where": f.location.describe(),
        "location": location_dict(f.location),
    }


def warning_json(w: DocumentWarning) -> dict[str, Any]:
    """A business-level warning as the ledger keeps it with its document (``severity: warning``)."""
    item: dict[str, Any] = {"code": w.code, "message": w.message, "severity": "warning"}
    if w.location is not None:
        item["where"] = w.location.describe()
        item["location"] = location_dict(w.location)
    return item


def no_ta1(ic: InterchangeReport) -> list[str]:
    """Why no TA1 can answer a rejected interchange, for its reason (X12-A002), else nothing."""
    blocker = ta1_blocker(ic) if not ic.accepted else None
    return [] if blocker is None else [f"{blocker.code} {blocker.message}"]


def group_plan(h: GroupHeader, status: str, position: int) -> GroupPlan:
    return GroupPlan(
        functional_id=h.functional_id,
        control_number=h.control_number,
        version=h.version,
        status=status,
        sender_code=h.sender_id,
        receiver_code=h.receiver_id,
        position=position,
    )


def pending_sets(plan: FilePlan) -> int:
    return len(plan.documents) + sum(len(g.sets) for ic in plan.interchanges for g in ic.groups)


def policy_of(profile: Profile | None) -> DuplicatePolicy:
    """The partner's duplicate policy (reject when the partner is unknown)."""
    return profile.duplicates.policy if profile else DuplicatePolicy.REJECT


def on_duplicate_status(policy: DuplicatePolicy) -> str | None:
    """The status a duplicate gets under ``policy`` (reject: duplicate, hold: held; allow: None, let through)."""
    if policy is DuplicatePolicy.ALLOW:
        return None
    return "held" if policy is DuplicatePolicy.HOLD else "duplicate"


def document_plan(item: Translation, correlation: str, on_duplicate: str | None, router: Router) -> DocPlan:
    """A translated document's ledger plan: its canonical JSON (with ``correlation`` in its provenance),
    business key, warnings, and where it is routed (no route: ``unrouted``, with the reason)."""
    doc = item.document
    assert doc is not None
    doc.provenance.correlation_id = correlation  # type: ignore[attr-defined]
    canonical = doc.model_dump_json(exclude_none=True)
    doc_type = item.document_type or "unknown"
    test = bool(getattr(getattr(doc, "provenance", None), "test", False))
    routes, decision = router(item.partner, doc_type, test, lambda: json.loads(canonical))
    return DocPlan(
        doc_type=doc_type,
        canonical=canonical,
        correlation_id=correlation,
        position=item.index,
        partner_id=item.partner,
        business_key=business_key(doc),
        status="translated" if routes else "unrouted",
        reason=None if routes else str(decision.get("reason", "no routing rule matches it"))[:1000],
        on_duplicate=on_duplicate,
        warnings=[warning_json(w) for w in item.warnings],  # BIZ-*: kept with it, it is still translated
        routes=routes,
        route=decision,
    )


def failed_document_plan(item: Translation, correlation: str) -> DocPlan:
    """A document that could not be translated, kept with its located errors (CSV/XML have no set row)."""
    return DocPlan(
        doc_type=item.document_type or "unknown",
        canonical=json.dumps({"errors": errors_json(item.errors)}),
        correlation_id=correlation,
        position=item.index,
        partner_id=item.partner,
        status="failed",
        reason="; ".join(f"{e.code} {e.message}" for e in item.errors[:3])[:1000] or "failed",
    )


def acknowledgment_plan(ack: FunctionalAck | TA1Ack, correlation: str, position: int, partner: str | None) -> DocPlan:
    """An inbound 997/999/TA1 kept as read: an ``acknowledgment`` document, never routed nor deduplicated."""
    data = ack_dict(ack)
    return DocPlan(
        doc_type=ACKNOWLEDGMENT,
        canonical=json.dumps(data),
        correlation_id=correlation,
        position=position,
        partner_id=partner,
        reason=str(data["summary"])[:1000],
        on_duplicate=None,
    )
