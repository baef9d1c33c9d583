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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gateway.errors import GatewayError, location_dict
from gateway.partners.profile import AckPolicy, DuplicatePolicy, Profile
from gateway.partners.profile import TA1Policy as ProfileTA1
from gateway.runtime.fsutil import write_atomic
from gateway.store import Archive
from gateway.store.rows import FileRow
from gateway.store.store import Store
from gateway.translate import FileInput, Translation, Translator
from gateway.x12.ack.build import TA1Policy, ack_kind, build_acks
from gateway.x12.validate.report import InterchangeReport, Outcome

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
        pending: list[Translation] = []
        for item in self.translator.translate(data, info):
            self._keep_lease(row)
            if isinstance(item, InterchangeReport):
                self._interchange(row, item, pending, outcome, seed)
                pending = []
            elif item.set_id is not None and item.validation is not None:
                pending.append(item)
            else:
                self._loose(row, item, outcome, seed)
        for item in pending:  # sets of an interchange without a trailer still count
            self._loose(row, item, outcome, seed)
        self._finish(row, outcome)
        return outcome

    def _keep_lease(self, row: FileRow) -> None:
        """Renew the lease every third of its length, so a long file is not taken over from a live worker."""
        if self.lease_seconds is None or time.monotonic() - self._renewed < self.lease_seconds / 3:
            return
        self.store.renew_lease(row.id, self.worker, self.lease_seconds)
        self._renewed = time.monotonic()

    def _finish(self, row: FileRow, outcome: FileOutcome) -> None:
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
        self.store.set_file_status(
            row.id,
            outcome.status,
            outcome.reason,
            self.worker,
            details={"documents": outcome.documents, "failed": outcome.failed, "duplicates": outcome.duplicates},
        )

    # --- X12 --------------------------------------------------------------------------------

    def _interchange(
        self, row: FileRow, ic: InterchangeReport, sets: list[Translation], outcome: FileOutcome, seed: uuid.UUID
    ) -> None:
        h = ic.header
        profile = self.partners.get(row.partner_id) if row.partner_id else None
        envelope_errors = [f for f in ic.findings if f.is_error]
        status = "rejected" if envelope_errors else _status(ic)
        ic_row = self.store.add_interchange(
            row.id,
            sender_qualifier=h.sender_qualifier,
            sender_id=h.sender_id,
            receiver_qualifier=h.receiver_qualifier,
            receiver_id=h.receiver_id,
            control_number=h.control_number,
            version=h.version,
            test=h.is_test,
            status=status,
            reason="; ".join(f"{f.code} {f.message}" for f in envelope_errors[:5]) or None,
        )
        window = (profile.duplicates.isa13_window_days if profile else self.isa13_window_days) * 86400
        first = self.store.claim_key(
            "isa13",
            row.partner_id,
            f"{h.sender_qualifier}:{h.sender_id}:{h.control_number}",
            "interchange",
            ic_row.id,
            window_seconds=window or None,
        )
        duplicate = first is not None and (profile is None or profile.duplicates.policy is not DuplicatePolicy.ALLOW)
        if duplicate:
            assert first is not None
            self.store.set_status(
                "interchange",
                ic_row.id,
                "duplicate",
                f"ISA13 {h.control_number} already received (interchange {first.first_entity_id})",
            )
        groups: dict[str, int] = {}
        for g in ic.groups:
            grow = self.store.add_group(
                ic_row.id,
                functional_id=g.header.functional_id,
                control_number=g.header.control_number,
                version=g.header.version,
                sender_code=g.header.sender_id,
                receiver_code=g.header.receiver_id,
                status=_group_status(g.outcome),
            )
            groups[g.header.control_number] = grow.id
        for item in sets:
            group_id = groups.get(item.group_control or "")
            if group_id is None:
                self._loose(row, item, outcome, seed)
                continue
            self._set(row, group_id, item, outcome, seed, duplicate)
        if not duplicate:
            self._acks(row, ic, profile, outcome)

    def _set(
        self, row: FileRow, group_id: int, item: Translation, outcome: FileOutcome, seed: uuid.UUID, duplicate: bool
    ) -> None:
        outcome.sets += 1
        assert item.set_id is not None and item.set_control is not None
        if duplicate:
            self.store.add_set(
                group_id,
                set_id=item.set_id,
                control_number=item.set_control,
                status="duplicate",
                reason="duplicate interchange",
            )
            outcome.duplicates += 1
            return
        if not item.ok:
            rejected = item.validation is not None and not item.validation.accepted
            self.store.add_set(
                group_id,
                set_id=item.set_id,
                control_number=item.set_control,
                status="rejected" if rejected else "failed",
                errors=_errors_json(item.errors),
                reason=item.errors[0].message if item.errors else None,
            )
            outcome.failed += 1
            return
        set_row = self.store.add_set(group_id, set_id=item.set_id, control_number=item.set_control, status="translated")
        self._document(row, item, outcome, seed, set_row.id)

    # --- documents --------------------------------------------------------------------------

    def _loose(self, row: FileRow, item: Translation, outcome: FileOutcome, seed: uuid.UUID) -> None:
        """A CSV/XML document, or a translation outside any group."""
        outcome.sets += 1
        if item.ok:
            self._document(row, item, outcome, seed, None)
            return
        outcome.failed += 1
        if item.errors:
            outcome.reason = outcome.reason or f"{item.errors[0].code} {item.errors[0].message}"
        # A failed document is kept in the ledger with its located errors (there is no set row for CSV/XML).
        self.store.add_document(
            row.id,
            doc_type=item.document_type or "unknown",
            canonical=json.dumps({"errors": _errors_json(item.errors)}),
            partner_id=item.partner,
            status="failed",
            reason="; ".join(f"{e.code} {e.message}" for e in item.errors[:3])[:1000] or "failed",
            correlation_id=str(uuid.uuid5(seed, f"doc-{item.index}")),
        )

    def _document(
        self, row: FileRow, item: Translation, outcome: FileOutcome, seed: uuid.UUID, set_id: int | None
    ) -> None:
        doc = item.document
        assert doc is not None
        correlation = str(uuid.uuid5(seed, f"doc-{item.index}"))
        doc.provenance.correlation_id = correlation  # type: ignore[attr-defined]
        key = business_key(doc)
        text = doc.model_dump_json(exclude_none=True)
        drow = self.store.add_document(
            row.id,
            doc_type=item.document_type or "unknown",
            canonical=text,
            transaction_set_id=set_id,
            partner_id=item.partner,
            business_key=key,
            correlation_id=correlation,
        )
        profile = self.partners.get(item.partner) if item.partner else None
        policy = profile.duplicates.policy if profile else DuplicatePolicy.REJECT
        path = (
            self.outbox / "canonical" / f"{item.partner or '_unknown'}/{item.document_type}-{row.id}-{item.index}.json"
        )
        if key is not None:
            first = self.store.claim_key("business", item.partner, key, "document", drow.id)
            if first is not None and policy is not DuplicatePolicy.ALLOW:
                status = "duplicate" if policy is DuplicatePolicy.REJECT else "held"
                self.store.set_status(
                    "document", drow.id, status, f"{key} already received (document {first.first_entity_id})"
                )
                outcome.duplicates += 1
                outcome.held += status == "held"
                # The reset of a rerun let another file claim the key first: what an interrupted attempt
                # wrote for this document is now a duplicate, not to be passed on.
                path.unlink(missing_ok=True)
                return
        write_atomic(path, text.encode("utf-8"))
        outcome.documents += 1

    # --- acknowledgments --------------------------------------------------------------------

    def _acks(self, row: FileRow, ic: InterchangeReport, profile: Profile | None, outcome: FileOutcome) -> None:
        if profile is None or profile.x12 is None:
            return  # no partner: nobody to send to (recorded in the ledger, visible in status)
        settings = profile.x12
        has_errors = bool([f for f in ic.findings if f.is_error]) or any(
            g.outcome is not Outcome.ACCEPTED for g in ic.groups
        )
        functional = settings.ack is AckPolicy.ALWAYS or (settings.ack is AckPolicy.ON_ERROR and has_errors)
        ta1 = _TA1[settings.ta1]
        kind = ack_kind(ic.groups[0].header.version) if ic.groups else "TA1"
        marker = f"ack for ISA13 {ic.header.control_number}"
        sent = self.store.list_outbound(file_id=row.id, partner_id=profile.id, limit=1000)
        existing = [o for o in sent if o.reason == marker]
        if existing:
            data = self.archive.read(existing[0].sha256)
            control = existing[0].control_number or ""
        else:

            def next_control(what: str) -> int:
                return self.store.next_value(profile.id, what)

            built = build_acks(ic, next_control, self.clock(), functional=functional, ta1=ta1)
            if built is None:
                return
            data = built
            control = data[90:99].decode("latin-1")
            sha = self.archive.put(data)
            self.store.add_outbound(
                profile.id, kind if functional else "TA1", sha, control_number=control, file_id=row.id, reason=marker
            )
        write_atomic(self.outbox / profile.id / f"{kind if functional else 'TA1'}-{control}.x12", data)
        outcome.acks.append(f"{profile.id} {kind if functional else 'TA1'} {control}")


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
