"""Processing one recorded file: dedupe, validate, acknowledge, translate, write outputs, record.

Re-runnable by design (crash safety): a file whose lease expired is claimed
again, its half-written ledger rows are reset, and it is done again from
the archived bytes. Every output is idempotent under a rerun: canonical
JSON goes to a name derived from the file id and set position, with a
correlation id derived from the file's (so a rerun writes the same bytes
to the same name); an acknowledgment is recorded in the ledger *before*
its file is written, and a rerun re-sends that recorded one instead of
drawing new control numbers. Control numbers come from the store's
per-partner sequences, so they never repeat across restarts or workers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.errors import GatewayError, location_dict
from gateway.partners.profile import AckPolicy, DuplicatePolicy, Profile
from gateway.partners.profile import TA1Policy as ProfileTA1
from gateway.runtime.fsutil import write_atomic
from gateway.store import Archive
from gateway.store.results import DocPlan, FilePlan, GroupPlan, InterchangePlan, SetPlan
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.translate import FileInput, Translation, Translator
from gateway.x12.ack.build import TA1Policy, ack_kind, build_acks
from gateway.x12.validate.report import GroupReport, InterchangeReport, Outcome

_TA1 = {
    ProfileTA1.NEVER: TA1Policy.NEVER,
    ProfileTA1.ON_REQUEST: TA1Policy.ON_ERROR,
    ProfileTA1.ALWAYS: TA1Policy.ALWAYS,
}


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


def business_key(doc: BaseModel) -> str | None:
    """The duplicate key per partner: PO number + purpose, ASN id, invoice number, PO number + ack date."""
    kind = getattr(doc, "document_type", "")
    if kind == "purchase_order":
        return f"850:{doc.po_number}:{doc.purpose}"  # type: ignore[attr-defined]
    if kind == "ship_notice":
        return f"856:{doc.shipment_id}:{doc.purpose}"  # type: ignore[attr-defined]
    if kind == "invoice":
        return f"810:{doc.invoice_number}"  # type: ignore[attr-defined]
    if kind == "po_acknowledgment":
        return f"855:{doc.po_number}:{doc.acknowledgment_date}:{doc.purpose}"  # type: ignore[attr-defined]
    return None


def _errors_json(errors: list[GatewayError]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        item: dict[str, Any] = {"code": e.code, "message": e.message}
        if e.location is not None:
            item["where"] = e.location.describe()
            item["location"] = location_dict(e.location)
        out.append(item)
    return out


class Processor:
    """Processes claimed files; one instance per worker process."""

    def __init__(
        self,
        store: Store,
        archive: Archive,
        translator: Translator,
        *,
        outbox: Path,
        worker: str,
        clock: Callable[[], datetime],
        isa13_window_days: int = 30,
        lease_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.archive = archive
        self.translator = translator
        self.partners = translator.partners
        self.outbox = outbox
        self.worker = worker
        self.clock = clock
        self.isa13_window_days = isa13_window_days
        self.lease_seconds = lease_seconds
        self._renewed = 0.0

    # --- the file ---------------------------------------------------------------------------

    def process(self, row: FileRow) -> FileOutcome:
        """Process one leased file to a final status (never raises for a bad document).

        Raises :class:`~gateway.store.errors.LeaseError` when the lease was lost
        (taken over after it expired): the new owner redoes the file.
        """
        self._renewed = time.monotonic()
        if row.attempts > 1:
            self.store.reset_file_children(row.id, self.worker, "rerun after an interrupted attempt")
        profile = self.partners.get(row.partner_id) if row.partner_id else None
        policy = profile.duplicates.policy if profile else DuplicatePolicy.REJECT
        first = self.store.claim_key("bytes", row.partner_id, row.sha256, "file", row.id)
        if first is not None and policy is not DuplicatePolicy.ALLOW:
            status = "duplicate" if policy is DuplicatePolicy.REJECT else "held"
            reason = f"same bytes as file {first.first_entity_id} (policy {policy})"
            self.store.set_file_status(row.id, status, reason, self.worker)
            return FileOutcome(row.id, status, reason, duplicates=1)
        data = self.archive.read(row.sha256)
        seed = (
            uuid.UUID(row.correlation_id)
            if _is_uuid(row.correlation_id)
            else uuid.uuid5(uuid.NAMESPACE_URL, row.sha256)
        )
        info = FileInput(
            name=row.name, file_id=row.sha256, partner_id=row.partner_id, received_on=row.received_at.date()
        )
        outcome = FileOutcome(row.id, "processed")
        plan = FilePlan()
        written: list[tuple[DocPlan, Path]] = []
        pending: list[Translation] = []
        for item in self.translator.translate(data, info):
            self._keep_lease(row)
            if isinstance(item, InterchangeReport):
                if plan.interchanges:  # one interchange per transaction; the last goes with the final status
                    self._record(row, plan, written, outcome)
                    plan, written = FilePlan(), []  # (its loose documents were committed with it)
                plan.interchanges.append(self._interchange(row, item, pending, outcome, seed, written))
                pending = []
            elif item.set_id is not None and item.validation is not None:
                pending.append(item)
            else:
                plan.documents.append(self._loose(row, item, outcome, seed, written))
        for item in pending:  # sets of an interchange without a trailer still count
            plan.documents.append(self._loose(row, item, outcome, seed, written))
        self._final(plan, outcome)
        self._record(row, plan, written, outcome)
        return outcome

    def _keep_lease(self, row: FileRow) -> None:
        """Renew the lease every third of its length, so a long file is not taken over from a live worker."""
        if self.lease_seconds is None or time.monotonic() - self._renewed < self.lease_seconds / 3:
            return
        self.store.renew_lease(row.id, self.worker, self.lease_seconds)
        self._renewed = time.monotonic()

    def _final(self, plan: FilePlan, outcome: FileOutcome) -> None:
        ok = outcome.documents + outcome.duplicates
        if outcome.sets == 0:
            outcome.status, outcome.reason = "failed", outcome.reason or "no transaction sets or documents in the file"
        elif outcome.failed and ok:
            outcome.status = "partial"
            outcome.reason = f"{outcome.failed} of {outcome.sets} sets/documents failed"
        elif outcome.failed:
            outcome.status = "failed"
            outcome.reason = outcome.reason or f"all {outcome.sets} sets/documents failed"
        elif not outcome.documents:
            # Nothing new in it (a resend with a new ISA13 or new bytes): say so rather than "processed".
            outcome.status = "held" if outcome.held else "duplicate"
            held = f", {outcome.held} held for review" if outcome.held else ""
            outcome.reason = f"all {outcome.sets} sets/documents are duplicates{held}"
        plan.final_status = outcome.status
        plan.reason = outcome.reason
        plan.details = {"documents": outcome.documents, "failed": outcome.failed, "duplicates": outcome.duplicates}

    def _record(self, row: FileRow, plan: FilePlan, written: list[tuple[DocPlan, Path]], outcome: FileOutcome) -> None:
        """Commit a batch; outputs of documents the commit found to be duplicates (a race) are taken back."""
        self.store.record_results(row.id, self.worker, plan)
        for doc, path in written:
            if doc.duplicate_of is not None:
                path.unlink(missing_ok=True)
                outcome.documents -= 1
                outcome.duplicates += 1

    # --- X12 --------------------------------------------------------------------------------

    def _interchange(
        self,
        row: FileRow,
        ic: InterchangeReport,
        sets: list[Translation],
        outcome: FileOutcome,
        seed: uuid.UUID,
        written: list[tuple[DocPlan, Path]],
    ) -> InterchangePlan:
        h = ic.header
        profile = self.partners.get(row.partner_id) if row.partner_id else None
        envelope_errors = [f for f in ic.findings if f.is_error]
        allow = profile is not None and profile.duplicates.policy is DuplicatePolicy.ALLOW
        days = profile.duplicates.isa13_window_days if profile else None
        window = (self.isa13_window_days if days is None else days) * 86400  # 0: no ISA13 check
        key = f"{h.sender_qualifier}:{h.sender_id}:{h.control_number}" if window else None
        duplicate = key is not None and not allow and bool(self.store.existing_keys("isa13", None, [key], window))
        plan = InterchangePlan(
            sender_qualifier=h.sender_qualifier,
            sender_id=h.sender_id,
            receiver_qualifier=h.receiver_qualifier,
            receiver_id=h.receiver_id,
            control_number=h.control_number,
            version=h.version,
            test=h.is_test,
            status="rejected" if envelope_errors else _status(ic),
            reason="; ".join(f"{f.code} {f.message}" for f in envelope_errors[:5]) or None,
            isa13_key=key,
            isa13_window=window,
            on_duplicate=None if allow else "duplicate",
        )
        owners: dict[int, tuple[GroupPlan, str | None]] = {}  # SetReport id → its group's plan, why refused
        for g in ic.groups:
            gp = GroupPlan(
                functional_id=g.header.functional_id,
                control_number=g.header.control_number,
                version=g.header.version,
                status=_group_status(g.outcome),
                sender_code=g.header.sender_id,
                receiver_code=g.header.receiver_id,
            )
            plan.groups.append(gp)
            # An envelope the validator rejects (IEA/GE counts or controls, a repeated GS06...) is not
            # passed on: the TA1/997 tells the partner to resend it, and the resend must not be a duplicate.
            group_errors = [f for f in g.findings if f.is_error]
            refused = envelope_errors[0] if envelope_errors else (group_errors[0] if group_errors else None)
            why = f"envelope rejected: {refused.code} {refused.message}" if refused is not None else None
            for report in g.sets:
                owners[id(report)] = (gp, why)
        business = [k for t in sets if t.ok and t.document is not None and (k := business_key(t.document))]
        taken = self.store.existing_keys("business", row.partner_id, business) if business and not duplicate else set()
        for item in sets:
            owner = owners.get(id(item.validation))
            if owner is None:
                continue  # an orphan set outside any group: the validator rejected it with the envelope
            gp, refused_because = owner
            gp.sets.append(self._set(row, item, outcome, seed, duplicate, taken, written, refused_because))
        if not duplicate:
            self._acks(row, ic, profile, outcome)
        return plan

    def _set(
        self,
        row: FileRow,
        item: Translation,
        outcome: FileOutcome,
        seed: uuid.UUID,
        duplicate: bool,
        taken: set[str],
        written: list[tuple[DocPlan, Path]],
        refused: str | None = None,
    ) -> SetPlan:
        outcome.sets += 1
        assert item.set_id is not None and item.set_control is not None
        if duplicate or refused or not item.ok:
            # Nothing of this set is passed on: take back what an interrupted earlier attempt wrote.
            self._output_path(row, item).unlink(missing_ok=True)
        if duplicate:
            outcome.duplicates += 1
            return SetPlan(item.set_id, item.set_control, "duplicate", reason="duplicate interchange")
        if refused:
            outcome.failed += 1
            return SetPlan(item.set_id, item.set_control, "rejected", reason=refused)
        if not item.ok:
            rejected = item.validation is not None and not item.validation.accepted
            outcome.failed += 1
            return SetPlan(
                item.set_id,
                item.set_control,
                "rejected" if rejected else "failed",
                errors=_errors_json(item.errors),
                reason=item.errors[0].message if item.errors else None,
            )
        doc = self._document(row, item, outcome, seed, taken, written)
        return SetPlan(item.set_id, item.set_control, "translated", document=doc)

    # --- documents --------------------------------------------------------------------------

    def _loose(
        self,
        row: FileRow,
        item: Translation,
        outcome: FileOutcome,
        seed: uuid.UUID,
        written: list[tuple[DocPlan, Path]],
    ) -> DocPlan:
        """A CSV/XML document, or a translation outside any group."""
        outcome.sets += 1
        if item.ok and item.document is not None:
            key = business_key(item.document)
            taken = self.store.existing_keys("business", item.partner, [key]) if key else set()
            return self._document(row, item, outcome, seed, taken, written)
        outcome.failed += 1
        if item.errors:
            outcome.reason = outcome.reason or f"{item.errors[0].code} {item.errors[0].message}"
        # A failed document is kept in the ledger with its located errors (there is no set row for CSV/XML).
        return DocPlan(
            doc_type=item.document_type or "unknown",
            canonical=json.dumps({"errors": _errors_json(item.errors)}),
            correlation_id=str(uuid.uuid5(seed, f"doc-{item.index}")),
            partner_id=item.partner,
            status="failed",
            reason="; ".join(f"{e.code} {e.message}" for e in item.errors[:3])[:1000] or "failed",
        )

    def _document(
        self,
        row: FileRow,
        item: Translation,
        outcome: FileOutcome,
        seed: uuid.UUID,
        taken: set[str],
        written: list[tuple[DocPlan, Path]],
    ) -> DocPlan:
        """The document's ledger plan; its canonical JSON is written now (before the commit that records it),
        under a name and with contents a rerun reproduces exactly, unless its business key is already taken."""
        doc = item.document
        assert doc is not None
        correlation = str(uuid.uuid5(seed, f"doc-{item.index}"))
        doc.provenance.correlation_id = correlation  # type: ignore[attr-defined]
        key = business_key(doc)
        text = doc.model_dump_json(exclude_none=True)
        profile = self.partners.get(item.partner) if item.partner else None
        policy = profile.duplicates.policy if profile else DuplicatePolicy.REJECT
        on_duplicate = (
            None if policy is DuplicatePolicy.ALLOW else ("duplicate" if policy is DuplicatePolicy.REJECT else "held")
        )
        plan = DocPlan(
            doc_type=item.document_type or "unknown",
            canonical=text,
            correlation_id=correlation,
            partner_id=item.partner,
            business_key=key,
            on_duplicate=on_duplicate,
        )
        path = self._output_path(row, item)
        if key is not None and key in taken and on_duplicate is not None:
            outcome.duplicates += 1
            outcome.held += on_duplicate == "held"
            path.unlink(missing_ok=True)  # an interrupted attempt may have written it before another file won the key
            return plan
        write_atomic(path, text.encode("utf-8"))
        written.append((plan, path))
        outcome.documents += 1
        return plan

    def _output_path(self, row: FileRow, item: Translation) -> Path:
        """Where a set's canonical JSON goes: the same name on every attempt (file id + position)."""
        name = f"{item.partner or '_unknown'}/{item.document_type or 'document'}-{row.id}-{item.index}.json"
        return self.outbox / "canonical" / name

    # --- acknowledgments --------------------------------------------------------------------

    def _acks(self, row: FileRow, ic: InterchangeReport, profile: Profile | None, outcome: FileOutcome) -> None:
        if profile is None or profile.x12 is None:
            return  # no partner: nobody to send to (recorded in the ledger, visible in status)
        settings = profile.x12
        due = [g for g in ic.groups if _ack_due(g, profile, settings.ack)]
        functional = bool(due)
        if len(due) != len(ic.groups):  # acknowledge only the groups whose policy asks for it
            ic = replace(ic, groups=due)
        ta1 = _TA1[settings.ta1]
        kind = ack_kind(due[0].header.version) if due else "TA1"
        marker = f"ack for ISA13 {ic.header.control_number}"
        sent = self.store.list_outbound(file_id=row.id, partner_id=profile.id, limit=1000)
        existing = [o for o in sent if o.reason == marker]
        if existing:
            data = self.archive.read(existing[0].sha256)
            control = existing[0].control_number or ""
        else:
            drawn: dict[str, int] = {}

            def next_control(what: str) -> int:
                # One persisted draw per acknowledgment: ISA13 and GS06 share it (both unique per
                # sender that way), and ST02 counts 1, 2, ... inside the group.
                if what == "set":
                    drawn["set"] = drawn.get("set", 0) + 1
                    return drawn["set"]
                if "n" not in drawn:
                    drawn["n"] = self.store.next_value(profile.id, "ack")
                return drawn["n"]

            built = build_acks(ic, next_control, self.clock(), functional=functional, ta1=ta1)
            if built is None:
                return
            data = built
            control = data[90:99].decode("latin-1")
            sha = self.archive.put(data)
            kind = kind if _has_group(data) else "TA1"  # a rejected interchange gets its TA1 alone
            self.store.add_outbound(profile.id, kind, sha, control_number=control, file_id=row.id, reason=marker)
        kind = existing[0].kind if existing else kind
        write_atomic(self.outbox / profile.id / f"{kind}-{control}.x12", data)
        outcome.acks.append(f"{profile.id} {kind} {control}")


def _has_group(ack: bytes) -> bool:
    """True when an outbound ack interchange carries a functional group (not only a TA1)."""
    el, term = ack[3:4], ack[105:106]
    return any(term + gap + b"GS" + el in ack for gap in (b"", b"\n", b"\r\n"))


def _ack_due(group: GroupReport, profile: Profile, default: AckPolicy) -> bool:
    """Whether ``group`` gets a 997/999: the documents' own ``ack`` setting, else the partner's.
    Several set types in one group: the most demanding setting wins (always > on_error > never)."""
    policies = {
        doc.ack if (doc := profile.documents.get(report.header.set_id)) is not None and doc.ack else default
        for report in group.sets
    } or {default}
    if AckPolicy.ALWAYS in policies:
        return True
    return AckPolicy.ON_ERROR in policies and group.outcome is not Outcome.ACCEPTED


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


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


__all__ = ["FileOutcome", "Processor", "business_key"]
