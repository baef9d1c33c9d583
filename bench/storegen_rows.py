"""The rows of `bench/gen_store.py`'s ledger, table by table, in chunks (see its docstring for what they hold).

Ids are given here (the tables' sequences are moved past them after the COPY). Rows are tuples in the
order of :data:`COLUMNS`; columns not listed are NULL.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from storegen_shapes import canonical, response, set_error, x12_file

from gateway.store.search import keys_of

COLUMNS: dict[str, tuple[str, ...]] = {
    "files": ("id", "sha256", "size", "name", "origin", "partner_id", "format", "status", "reason",
              "correlation_id", "received_at", "updated_at", "attempts", "results_at"),
    "interchanges": ("id", "file_id", "position", "sender_qualifier", "sender_id", "receiver_qualifier",
                     "receiver_id", "control_number", "version", "test", "status", "created_at", "updated_at"),
    "groups": ("id", "file_id", "interchange_id", "position", "functional_id", "sender_code", "receiver_code",
               "control_number", "version", "status", "created_at", "updated_at"),
    "transaction_sets": ("id", "file_id", "group_id", "position", "set_id", "control_number", "status", "reason",
                         "errors", "created_at", "updated_at"),
    "documents": ("id", "file_id", "transaction_set_id", "position", "partner_id", "doc_type", "business_key",
                  "status", "reason", "canonical", "correlation_id", "route", "created_at", "updated_at"),
    "search_keys": ("file_id", "document_id", "outbound_id", "partner_id", "kind", "value"),
    "outbound": ("id", "partner_id", "kind", "sha256", "control_number", "group_control_number", "file_id",
                 "status", "expected_ack", "ack_due_at", "correlation_id", "created_at", "updated_at"),
    "deliveries": ("id", "file_id", "document_id", "outbound_id", "partner_id", "doc_type", "destination", "rule",
                   "idempotency_key", "status", "attempts", "next_attempt_at", "first_attempt_at", "delivered_at",
                   "last_error", "last_response", "correlation_id", "created_at", "updated_at"),
    "delivery_attempts": ("delivery_id", "number", "worker", "started_at", "finished_at", "outcome", "error",
                          "response"),
    "ack_expectations": ("outbound_id", "partner_id", "interchange_control", "functional_id", "group_control",
                         "version", "set_id", "set_control", "status", "deadline_seconds", "tracked_from", "due_at",
                         "acked_at", "late", "created_at", "updated_at"),
    "ack_receipts": ("document_id", "file_id", "partner_id", "kind", "control_number", "outcome", "outbound_id",
                     "summary", "received_at", "created_at"),
    "recon_links": ("partner_id", "po_number", "doc_type", "ref", "number", "received_at"),
    "recon_exceptions": ("id", "partner_id", "po_number", "key", "kind", "severity", "status", "line", "documents",
                         "expected", "actual", "amount", "reason", "resolved_by", "resolution", "created_at",
                         "updated_at", "resolved_at"),
    "recon_events": ("exception_id", "action", "from_status", "to_status", "reason", "actor", "at"),
    "events": ("entity_kind", "entity_id", "file_id", "action", "from_status", "to_status", "correlation_id",
               "actor", "at"),
}  # fmt: skip

TYPES = (("purchase_order", 0.25), ("po_acknowledgment", 0.20), ("ship_notice", 0.22), ("invoice", 0.22),
         ("acknowledgment", 0.11))  # fmt: skip
DESTINATIONS = {"purchase_order": "partner-sftp", "po_acknowledgment": "erp-po-status",
                "ship_notice": "erp-receiving", "invoice": "erp-ap-invoices"}  # fmt: skip
WORKER = "gw-1:4242"
SEC = timedelta(seconds=1)


class Generator:
    """Rows for ``documents`` documents, in chunks of about ``chunk`` documents (time ascending)."""

    def __init__(
        self,
        documents: int,
        *,
        seed: int,
        end: datetime,
        days: int,
        partners: int,
        keep: Callable[[bytes], None] | None = None,
        keep_every: int = 100,
        chunk: int = 25_000,
    ) -> None:
        self.target = documents
        self.rng = random.Random(seed)
        self.end = end
        self.start = end - timedelta(days=days)
        self.partners = [f"supplier{i:02d}" for i in range(partners)]
        self.weights = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(partners)))
        self.types = list(itertools.accumulate(w for _, w in TYPES))
        self.index = {p: i for i, p in enumerate(self.partners)}
        self.keep, self.keep_every, self.chunk = keep, keep_every, chunk
        self.documents_made = 0
        self.ids: dict[str, int] = {}
        self.seq: dict[tuple[str, str], int] = {}
        self.pos: dict[str, list[str]] = {p: [] for p in self.partners}
        self.sent: dict[str, list[tuple[int, str]]] = {p: [] for p in self.partners}  # (outbound id, ISA13) of 850s
        self.rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}

    # --- helpers --------------------------------------------------------------------------------

    def next_id(self, table: str) -> int:
        self.ids[table] = self.ids.get(table, 0) + 1
        return self.ids[table]

    def counter(self, partner: str, kind: str) -> int:
        key = (partner, kind)
        self.seq[key] = self.seq.get(key, 0) + 1
        return self.seq[key]

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def event(self, kind: str, entity: int, file_id: int | None, action: str, frm: str | None, to: str,
              corr: str, at: datetime, actor: str | None = None) -> None:  # fmt: skip
        self.rows["events"].append((kind, entity, file_id, action, frm, to, corr, actor, at))

    # --- the ledger -----------------------------------------------------------------------------

    def chunks(self) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
        """The rows, a chunk at a time (each chunk's lists are fresh)."""
        made_at_flush = 0
        while self.documents_made < self.target:
            self.one_file()
            if self.documents_made - made_at_flush >= self.chunk:
                made_at_flush = self.documents_made
                yield self.flush()
        yield self.flush()

    def flush(self) -> dict[str, list[tuple[Any, ...]]]:
        out, self.rows = self.rows, {t: [] for t in COLUMNS}
        return out

    def one_file(self) -> None:
        rng = self.rng
        partner = rng.choices(self.partners, cum_weights=self.weights)[0]
        doc_type = rng.choices([t for t, _ in TYPES], cum_weights=self.types)[0]
        if doc_type != "purchase_order" and len(self.pos[partner]) < 3:
            doc_type = "purchase_order"
        if doc_type == "acknowledgment" and not self.sent[partner]:
            doc_type = "invoice"
        at = self.start + (self.end - self.start) * (self.documents_made / self.target)
        at += timedelta(seconds=rng.random() * 30)
        at = min(at, self.end)
        k = 1 if doc_type == "acknowledgment" else rng.choices((1, 2, 3, 4), (0.55, 0.25, 0.12, 0.08))[0]
        k = min(k, self.target - self.documents_made)
        if doc_type == "purchase_order":
            self.csv_file(partner, k, at)
        else:
            self.x12_file(partner, doc_type, k, at)
        self.documents_made += k

    def add_file(self, partner: str, fmt: str, name: str, data_sha: str, size: int, status: str, at: datetime,
                 corr: str) -> int:  # fmt: skip
        fid = self.next_id("files")
        done = at + 2 * SEC
        self.rows["files"].append((fid, data_sha, size, name, f"inbox:{partner}/{name}", partner, fmt, status,
                                   None, corr, at, done, 1, done))  # fmt: skip
        self.event("file", fid, fid, "create", None, "received", corr, at)
        self.event("file", fid, fid, "status", "processing", status, corr, done, WORKER)
        return fid

    def csv_file(self, partner: str, k: int, at: datetime) -> None:
        """Purchase orders from the ERP: each a document, an 850 sent to ``partner``, its ack tracked."""
        rng = self.rng
        corr = self.uuid()
        name = f"po_export_{at:%Y%m%d_%H%M%S}_{self.ids.get('files', 0) + 1}.csv"
        fid = self.add_file(partner, "csv", name, f"{rng.getrandbits(256):064x}", 400 + 180 * k, "processed", at, corr)
        for position in range(1, k + 1):
            pidx = self.index[partner]
            po = f"45{pidx:02d}{self.counter(partner, 'po'):06d}"
            self.pos[partner].append(po)
            self.document(fid, None, position, partner, "purchase_order", po, po, at, corr, "delivered")
            oid = self.next_id("outbound")
            isa13 = f"{self.counter(partner, 'out-isa'):09d}"
            gs06 = str(self.counter(partner, "out-gs"))
            age = self.end - at
            r = rng.random()
            if age < timedelta(hours=24):
                owed, expected = "waiting", "pending"
            elif r < 0.01:
                owed, expected = "rejected", "rejected"
            elif r < 0.035:
                owed, expected = "overdue", "overdue"
            else:
                owed, expected = "accepted", "accepted"
            due = at + timedelta(hours=24)
            self.rows["outbound"].append((oid, partner, "850", f"{rng.getrandbits(256):064x}", isa13, gs06, fid,
                                          "sent", expected, due, corr, at, at + SEC))  # fmt: skip
            self.rows["search_keys"].append((None, None, oid, partner, "po", po))
            acked = at + timedelta(minutes=rng.randint(5, 600)) if owed in ("accepted", "rejected") else None
            self.rows["ack_expectations"].append((oid, partner, isa13, "PO", gs06, "004010", "850", "0001", owed,
                                                  86400, at, due, acked, False, at, acked or at))  # fmt: skip
            self.sent[partner].append((oid, isa13))
            self.delivery(fid, None, oid, partner, "850", "partner-sftp", corr, at, "delivered")
            self.event("outbound", oid, fid, "create", None, "sent", corr, at)
            if owed == "overdue":
                self.exception(partner, po, "ack_late", "warning", None, [f"outbound:{oid}"], at + timedelta(days=1))

    def x12_file(self, partner: str, doc_type: str, k: int, at: datetime) -> None:
        """An interchange of ``k`` sets of ``doc_type`` from ``partner``, a 997 sent back for it."""
        rng = self.rng
        corr = self.uuid()
        isa13 = f"{self.counter(partner, 'isa'):09d}"
        gs06 = str(self.counter(partner, "gs"))
        pidx = self.index[partner]
        sets: list[tuple[str, str, str]] = []  # (ST02, own number, PO)
        for n in range(1, k + 1):
            if doc_type == "acknowledgment":
                oid, their = rng.choice(self.sent[partner][-200:])
                sets.append((f"{n:04d}", their, str(oid)))
                continue
            po = rng.choice(self.pos[partner][-300:])
            number = {"invoice": f"INV{pidx:02d}{self.counter(partner, 'inv'):07d}",
                      "ship_notice": f"ASN{pidx:02d}{self.counter(partner, 'asn'):07d}"}.get(doc_type, po)  # fmt: skip
            sets.append((f"{n:04d}", number, po))
        data = x12_file(partner.upper(), isa13, gs06, doc_type, [(s, num) for s, num, _ in sets], at)
        sha = hashlib.sha256(data).hexdigest()
        verdicts = ["rejected" if rng.random() < 0.004 else "ok" for _ in sets]
        status = ("failed" if all(v == "rejected" for v in verdicts) else
                  "partial" if "rejected" in verdicts else "processed")  # fmt: skip
        fid = self.add_file(partner, "x12", f"{partner}_{isa13}.x12", sha, len(data), status, at, corr)
        if self.keep is not None and fid % self.keep_every == 0:
            self.keep(data)
        icid, gid = self.next_id("interchanges"), self.next_id("groups")
        env = "accepted" if status == "processed" else "partially_accepted" if status == "partial" else "rejected"
        code = {"acknowledgment": ("997", "FA"), "po_acknowledgment": ("855", "PR"), "ship_notice": ("856", "SH"),
                "invoice": ("810", "IN")}[doc_type]  # fmt: skip
        self.rows["interchanges"].append((icid, fid, 1, "ZZ", partner.upper(), "ZZ", "MERCYHOSP", isa13, "00401",
                                          False, env, at, at + SEC))  # fmt: skip
        self.rows["groups"].append((gid, fid, icid, 1, code[1], partner.upper(), "MERCYHOSP", gs06, "004010", env,
                                    at, at + SEC))  # fmt: skip
        self.event("interchange", icid, fid, "create", None, env, corr, at + SEC)
        for position, ((st02, number, po), verdict) in enumerate(zip(sets, verdicts, strict=True), 1):
            sid = self.next_id("transaction_sets")
            errors = json.dumps(set_error(st02, partner)) if verdict == "rejected" else "[]"
            sstatus = "rejected" if verdict == "rejected" else "translated"
            reason = "IT104 (unit price) is not a decimal number" if verdict == "rejected" else None
            self.rows["transaction_sets"].append((sid, fid, gid, position, code[0], st02, sstatus, reason, errors, at,
                                                  at + SEC))  # fmt: skip
            self.event("transaction_set", sid, fid, "create", None, sstatus, corr, at + SEC)
            if doc_type == "acknowledgment":
                did = self.document(fid, sid, position, partner, doc_type, number, None, at, corr, "translated")
                self.rows["ack_receipts"].append((did, fid, partner, "997", isa13, "matched", int(po),
                                                  "997 accepted: group " + number, at, at))  # fmt: skip
                continue
            dstatus = "failed" if verdict == "rejected" else None
            self.document(fid, sid, position, partner, doc_type, number, po, at, corr, dstatus)
        oid = self.next_id("outbound")
        self.rows["outbound"].append((oid, partner, "997", f"{rng.getrandbits(256):064x}",
                                      f"{self.counter(partner, 'out-isa'):09d}", str(self.counter(partner, 'out-gs')),
                                      fid, "sent", None, None, corr, at + 2 * SEC, at + 3 * SEC))  # fmt: skip
        self.delivery(fid, None, oid, partner, "997", "partner-sftp", corr, at + 2 * SEC, "delivered")

    def document(self, fid: int, sid: int | None, position: int, partner: str, doc_type: str, number: str,
                 po: str | None, at: datetime, corr: str, status: str | None) -> int:  # fmt: skip
        """One document, its keys, delivery and reconciliation link; ``status`` None: as its delivery goes."""
        rng = self.rng
        did = self.next_id("documents")
        doc = canonical(doc_type, rng, po or "", number, at, partner)
        text = json.dumps(doc, separators=(",", ":"))
        outcome = None
        if status is None:
            r = rng.random()
            recent = self.end - at < timedelta(minutes=10)
            outcome = "pending" if recent else "dead_letter" if r < 0.002 else "unrouted" if r < 0.004 else "delivered"
            status = {"pending": "routed"}.get(outcome, outcome)
        route = None
        if outcome not in (None, "unrouted"):
            route = json.dumps({"rules": [f"{doc_type}-to-erp"], "destinations": [DESTINATIONS[doc_type]]})
        reason = "no routing rule matched" if status == "unrouted" else None
        key = f"{doc_type}:{number}" if doc_type != "acknowledgment" else None
        self.rows["documents"].append((did, fid, sid, position, partner, doc_type, key, status, reason, text, corr,
                                       route, at + SEC, at + 2 * SEC))  # fmt: skip
        self.event("document", did, fid, "create", None, status, corr, at + SEC)
        for kind, value in keys_of(doc):
            self.rows["search_keys"].append((fid, did, None, partner, kind, value))
        if doc_type != "acknowledgment" and po:
            self.rows["recon_links"].append((partner, po, doc_type, f"document:{did}",
                                             None if doc_type == "purchase_order" else number, at))  # fmt: skip
        if outcome in ("delivered", "dead_letter", "pending") and doc_type != "purchase_order":
            self.delivery(fid, did, None, partner, doc_type, DESTINATIONS[doc_type], corr, at + SEC, outcome)
        if doc_type == "invoice" and status != "failed" and rng.random() < 0.03:
            self.exception(partner, po or "", "invoice_price", "error", "1", [f"document:{did}"], at)
        if doc_type == "ship_notice" and status != "failed" and rng.random() < 0.01:
            self.exception(partner, po or "", "ship_lot_missing", "warning", "1", [f"document:{did}"], at)
        return did

    def delivery(self, fid: int, did: int | None, oid: int | None, partner: str, doc_type: str, dest: str,
                 corr: str, at: datetime, outcome: str) -> None:  # fmt: skip
        rng = self.rng
        dlv = self.next_id("deliveries")
        tries = ["retry"] * (rng.randint(1, 2) if rng.random() < 0.05 else 0)
        if outcome == "dead_letter":
            tries = ["retry"] * 4 + ["rejected"]
        elif outcome == "delivered":
            tries.append("delivered")
        elif outcome == "pending":
            tries = []
        when, last_error, last_resp, last = at, None, None, None
        for number, result in enumerate(tries, 1):
            error, resp = response(result, rng)
            self.rows["delivery_attempts"].append((dlv, number, WORKER, when, when + SEC / 5, result, error, resp))
            last_error, last_resp, last = error, resp, when
            when += timedelta(seconds=30 * 2**number)
        first = at if tries else None
        done = last if outcome == "delivered" else None
        status = "pending" if outcome == "pending" else outcome
        self.rows["deliveries"].append((dlv, fid, did, oid, partner, doc_type, dest, f"{doc_type}-to-erp",
                                        self.uuid(), status, len(tries), at if status == "pending" else when, first,
                                        done, last_error, last_resp, corr, at,
                                        when))  # fmt: skip
        self.event("delivery", dlv, fid, "create", None, "pending", corr, at)
        if status != "pending":
            self.event("delivery", dlv, fid, "attempt", "pending", status, corr, when, WORKER)

    def exception(self, partner: str, po: str, kind: str, severity: str, line: str | None, refs: list[str],
                  at: datetime) -> None:  # fmt: skip
        rng = self.rng
        xid = self.next_id("recon_exceptions")
        amount = f"{rng.randint(1, 40000) / 100:.2f}" if kind == "invoice_price" else None
        recent = self.end - at < timedelta(days=14)
        status = "open" if recent or rng.random() < 0.3 else rng.choice(("resolved", "waived"))
        settled = at + timedelta(days=rng.randint(1, 10)) if status != "open" else None
        by = {"resolved": "operator", "waived": "operator"}.get(status)
        self.rows["recon_exceptions"].append((xid, partner, po, f"{kind}:{line or '-'}:{refs[0]}", kind, severity,
                                              status, line, json.dumps(refs), json.dumps({"unit_price": "8.95"}),
                                              json.dumps({"unit_price": "9.45"}), amount, f"{kind} on PO {po}", by,
                                              by and "credit memo received", at, settled or at, settled))  # fmt: skip
        self.rows["recon_events"].append((xid, "open", None, "open", f"{kind} on PO {po}", "reconcile", at))
        if settled is not None:
            self.rows["recon_events"].append((xid, {"resolved": "resolve"}.get(status, "waive"), "open", status,
                                              "credit memo received", "ap-clerk", settled))  # fmt: skip
