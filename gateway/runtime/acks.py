"""Acknowledgment tracking at run time: what we sent is tracked, what partners answer is matched, what
is late is flagged, and overdue, rejected and unmatched acknowledgments become alerts routed like
documents.

One :meth:`AckTracker.check` does, in order (each step a short transaction, each idempotent, so any
number of workers and restarts may run it):

1. track every outbound interchange recorded as expecting an acknowledgment (``expected_ack``
   pending): its sets are read back from the archive, and each one the partner's ``acks`` settings
   expect gets a deadline (``deadline_hours``, or ``deadlines`` per group type or set id);
2. start the clock of tracked sets once their interchange is delivered (or at once when nothing
   delivers it);
3. match every inbound 997/999/TA1 the runtime recorded (``acknowledgment`` documents) that is not
   matched yet (:func:`gateway.x12.ack.match.reconcile`);
4. mark sets waiting past their deadline overdue.

Alerts (``ack_overdue``, ``ack_rejected``, ``ack_unmatched``) go only where a routing rule names
their type (``match: {doc_type: ack_overdue}``): a catch-all rule for documents does not take them.
An alert is recorded as an outbound item of that kind (its JSON archived) with a delivery per
destination, so it is retried, dead-lettered and retransmitted like anything else we deliver.
``gateway run`` checks every ``every`` seconds (cheap indexed queries when nothing changed);
``gateway acks`` checks before it lists.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gateway.errors import GatewayError
from gateway.partners.profile import AckTracking, PartnerDirectory
from gateway.routing import RouteInput, Rule, route, rules_for
from gateway.store import Archive
from gateway.store.acks import AckToMatch
from gateway.store.recon_outbox import OutboxItem
from gateway.store.rows import OutboundRow
from gateway.store.store import Store
from gateway.x12.ack.match import CodeWords, Owed, Reconciliation, ack_from_dict, reconcile
from gateway.x12.ack.sent import SentSet, sent_sets
from gateway.x12.schema.catalog import Catalog

__all__ = ["ALERT_TYPES", "AckCheck", "AckTracker", "AlertSink", "code_words"]

log = logging.getLogger("gateway.acks")

ALERT_TYPES = ("ack_overdue", "ack_rejected", "ack_unmatched", "recon_exception", "billing_event")
"""The alert types a routing rule may name."""

_WORDED = ("715", "716", "717", "718", "720", "723", "618", "620", "621", "I17", "I18")


def code_words(catalog: Catalog) -> CodeWords:
    """The acknowledgment code lists of the catalog's versions (005010 first, 004010 over it: a 997's
    codes read as their own version says them)."""
    lists: dict[str, dict[str, str]] = {}
    for element in _WORDED:
        merged: dict[str, str] = {}
        for version in ("005010", "004010"):
            if catalog.has_version(version):
                merged.update(catalog.code_names(version, element))
        lists[element] = merged
    return CodeWords(lists)


@dataclass(slots=True)
class AckCheck:
    """What one check came to."""

    tracked: int = 0
    started: int = 0
    matched: int = 0
    rejected: int = 0
    unmatched: int = 0
    duplicates: int = 0
    late: int = 0
    overdue: int = 0
    alerts: list[int] = field(default_factory=list)  # delivery ids of the alerts recorded
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "tracked": self.tracked,
            "clocks_started": self.started,
            "matched": self.matched,
            "rejected": self.rejected,
            "unmatched": self.unmatched,
            "duplicates": self.duplicates,
            "late": self.late,
            "overdue": self.overdue,
            "alerts": len(self.alerts),
            "problems": self.problems,
        }


class AckTracker:
    """Tracks the acknowledgments owed to one deployment (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        archive: Archive,
        partners: PartnerDirectory,
        catalog: Catalog,
        *,
        rules: Iterable[Rule] = (),
        worker: str = "acks",
        every: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.archive = archive
        self.partners = partners
        self.words = code_words(catalog)
        self.rules = [r for r in rules if _names_alerts(r)]
        self.worker = worker
        self.every = every
        self.monotonic = monotonic
        self._last: float | None = None

    def settings(self, partner_id: str) -> AckTracking:
        """The partner's ``acks`` settings (the defaults for a partner without a profile)."""
        profile = self.partners.get(partner_id)
        return profile.acks if profile is not None else AckTracking()

    def maybe_check(self) -> AckCheck | None:
        """:meth:`check` when ``every`` seconds passed since the last one (None otherwise)."""
        now = self.monotonic()
        if self._last is not None and now - self._last < self.every:
            return None
        self._last = now
        return self.check()

    def check(self, *, full: bool = False) -> AckCheck:
        """Track, start clocks, match, flag overdue, alert (see the module docstring). ``full``: look at
        every acknowledgment not matched yet, however old (the periodic check looks at recent ones)."""
        out = AckCheck()
        self._track(out)
        out.started = self.store.start_ack_clocks()
        self._match(out, 0 if full else self.store.match_floor())
        overdue = self.store.mark_overdue()
        out.overdue = len(overdue)
        self._alert_overdue(overdue, out)
        return out

    # --- steps --------------------------------------------------------------------------------

    def _track(self, out: AckCheck) -> None:
        while True:
            rows = self.store.outbound_to_track()
            items = [item for item in (self._owed(row) for row in rows) if item is not None]
            if items:
                out.tracked += self.store.track_many(items)
            if len(rows) < 200 or not items:
                return

    def track(self, row: OutboundRow, resent_from: int | None = None) -> int:
        """Track the sets of ``row`` its partner expects an answer for; returns how many."""
        item = self._owed(row)
        return 0 if item is None else self.store.track_sets(row, item[1], resent_from=resent_from, reason=item[2])

    def _owed(self, row: OutboundRow) -> tuple[OutboundRow, list[tuple[SentSet, int]], str | None] | None:
        """The sets of ``row`` owed an answer, each with its deadline, and why none is (None: its bytes
        cannot be read now; it stays pending for the next check)."""
        try:
            data = self.archive.read(row.sha256)
        except OSError as exc:
            log.error("outbound %s: cannot read its bytes to track its acknowledgment: %s", row.id, exc)
            return None
        settings = self.settings(row.partner_id)
        try:
            found = sent_sets(data)
        except GatewayError as exc:  # not X12 we can read back: said in its event, never retried
            return row, [], f"outbound {row.id} cannot be read back as X12 to track its acknowledgment: {exc}"
        owed = [
            (s, settings.deadline_seconds(s.set_id, s.functional_id))
            for s in found
            if settings.expects(s.set_id, s.functional_id)
        ]
        why = None if owed else f"partner {row.partner_id} expects no acknowledgment of {row.kind}"
        if not found:
            why = f"outbound {row.id} holds no transaction set to acknowledge"
        return row, owed, why

    def _match(self, out: AckCheck, floor: int) -> None:
        after = floor
        while True:
            batch = self.store.acks_to_match(after=after)
            for start in range(0, len(batch), 50):  # 50 acknowledgments a transaction
                chunk = batch[start : start + 50]
                for ack, rec in zip(chunk, self.match(chunk, out), strict=True):
                    if rec is not None:
                        self._alert_answer(ack, rec, out)
            if len(batch) < 200:
                return
            after = batch[-1].document_id

    def match(self, acks: list[AckToMatch], out: AckCheck) -> list[Reconciliation | None]:
        """Match acknowledgment documents (one transaction) and count what they came to. One that cannot
        be read back is recorded as unmatched, saying why: reported once, not read again every check."""
        items: list[tuple[AckToMatch, Callable[[list[Owed]], Reconciliation]]] = []
        for ack in acks:
            try:
                parsed = ack_from_dict(ack.data)
            except (KeyError, TypeError, ValueError) as exc:
                why = f"acknowledgment document {ack.document_id} cannot be read back: {type(exc).__name__} {exc}"
                out.problems.append(why)
                log.error("%s", why)
                items.append((ack, partial(_unreadable, str(ack.data.get("kind", "?")), why)))
                continue
            items.append((ack, partial(reconcile, parsed, received_at=ack.received_at, words=self.words)))
        found = self.store.match_acks(items) if items else []
        for ack, rec in zip(acks, found, strict=True):
            if rec is not None:
                self._count(ack, rec, out)
        return found

    @staticmethod
    def _count(ack: AckToMatch, rec: Reconciliation, out: AckCheck) -> None:
        out.matched += rec.outcome in ("matched", "partly_matched")
        out.unmatched += rec.outcome == "unmatched"
        out.duplicates += rec.outcome == "duplicate"
        out.rejected += len(rec.rejected)
        out.late += sum(1 for s in rec.applied if s.late)
        level = logging.WARNING if rec.outcome != "matched" or rec.rejected else logging.INFO
        log.log(level, "acknowledgment document %s from %s: %s", ack.document_id, ack.partner_id, rec.summary)

    # --- alerts -------------------------------------------------------------------------------

    def _alert_answer(self, ack: AckToMatch, rec: Reconciliation, out: AckCheck) -> None:
        partner = ack.partner_id or "unknown"
        body = {
            "partner_id": ack.partner_id,
            "document_id": ack.document_id,
            "file_id": ack.file_id,
            "received_at": ack.received_at.isoformat(),
            **rec.as_dict(),
        }
        if rec.rejected:
            self._alert("ack_rejected", partner, {**body, "alert": "ack_rejected"}, rec.summary, out)
        if rec.outcome == "unmatched":
            self._alert("ack_unmatched", partner, {**body, "alert": "ack_unmatched"}, rec.summary, out)

    def _alert_overdue(self, rows: list[dict[str, Any]], out: AckCheck) -> None:
        by_outbound: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            by_outbound.setdefault(int(r["outbound_id"]), []).append(r)
        for outbound_id, sets in by_outbound.items():
            first = sets[0]
            body = {
                "alert": "ack_overdue",
                "partner_id": first["partner_id"],
                "outbound_id": outbound_id,
                "interchange_control": first["interchange_control"],
                "due_at": min(s["due_at"] for s in sets).isoformat(),
                "sets": [
                    {
                        "id": s["id"],
                        "set_id": s["set_id"],
                        "group_control": s["group_control"],
                        "set_control": s["set_control"],
                    }
                    for s in sets
                ],
            }
            summary = f"no acknowledgment of outbound {outbound_id} ({len(sets)} set(s)) by {body['due_at']}"
            self._alert("ack_overdue", str(first["partner_id"]), body, summary, out)

    def _alert(self, kind: str, partner: str, body: dict[str, Any], summary: str, out: AckCheck) -> None:
        """Record an alert owed to the destinations the rules naming ``kind`` give; none: nothing to send
        (the event and the tracking row say it all)."""
        sink = AlertSink(self.store, self.archive, self.partners, self.rules, self.worker)
        out.alerts.extend(sink.record(kind, partner, body, summary))


@dataclass(frozen=True, slots=True)
class AlertSink:
    """Records alerts (acknowledgment tracking's, reconciliation's) as outbound items owed to the
    destinations of the routing rules that name their type."""

    store: Store
    archive: Archive
    partners: PartnerDirectory
    rules: list[Rule]
    worker: str

    def routes(self, kind: str) -> bool:
        """Whether some rule names ``kind`` (none: no alert of that kind is ever recorded)."""
        named = (r.match.doc_types() for r in self.rules)
        if any(kinds is not None and kind in kinds for kinds in named):
            return True
        return any(
            kinds is not None and kind in kinds
            for profile in self.partners.profiles.values()
            for kinds in (r.match.doc_types() for r in profile.routes)
        )

    def record(
        self, kind: str, partner: str, body: dict[str, Any], summary: str, keys: Sequence[tuple[str, str]] = ()
    ) -> list[int]:
        """Record one alert; returns the ids of its deliveries (none: no rule routes it, nothing recorded)."""
        found = self.item(kind, partner, body, summary, keys)
        if found is None:
            return []
        row = self.store.add_outbound(
            partner,
            kind,
            found.sha256,
            reason=found.reason,
            deliver_to=list(found.deliver_to),
            worker=self.worker,
            keys=found.keys,
        )
        return [d.id for d in self.store.list_deliveries(outbound_id=row.id, limit=100)]

    def item(
        self, kind: str, partner: str, body: dict[str, Any], summary: str, keys: Sequence[tuple[str, str]] = ()
    ) -> OutboxItem | None:
        """An alert routed and its JSON archived, for the caller to record (None: no rule routes it)."""
        profile = self.partners.get(partner)
        every = [r for r in rules_for(partner, profile.routes if profile else [], self.rules) if _names_alerts(r)]
        decision = route(RouteInput(partner, kind, "outbound", False), body, every)
        if decision.unrouted:
            return None
        sha = self.archive.put(json.dumps(body, sort_keys=True, default=str).encode("utf-8"))
        return OutboxItem(partner, kind, sha, summary[:1000], tuple(decision.destinations), tuple(keys))


def _unreadable(kind: str, why: str, owed: list[Owed]) -> Reconciliation:
    """What an acknowledgment that cannot be read back comes to: unmatched, saying why."""
    return Reconciliation(kind, "", "unmatched", why, unmatched=[why])


def _names_alerts(rule: Rule) -> bool:
    """Whether ``rule`` names an alert type (only such rules route alerts)."""
    kinds = rule.match.doc_types()
    return kinds is not None and any(k in ALERT_TYPES for k in kinds)
