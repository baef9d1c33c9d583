"""Reconciliation's outputs routed like documents: an alert for every exception opened (or reopened),
and a billing event for every ship-notice line of a chargeable supply.

Both go only where a routing rule names their type (``match: {doc_type: recon_exception}``,
``billing_event``), as acknowledgment tracking's alerts do (:class:`gateway.runtime.acks.AlertSink`):
each is recorded as an outbound item of that kind, its JSON archived, with a delivery per destination.

- Alerts: every ``open`` or ``reopen`` event of an exception is claimed once (a cursor moved in the
  claiming transaction), so ``gateway recon run`` and any number of workers alert each opening once.
- Billing events: each chargeable line is billed once (its key is the outbound item's ``billing`` search
  key, so ``gateway find`` finds it too); a line whose PO line has an open price exception
  (:data:`gateway.reconcile.billing.PRICE_KINDS`) is withheld, and billed on the first pass after that
  exception is resolved by a document or resolved or waived by an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from gateway.reconcile import Policy
from gateway.reconcile.billing import PRICE_KINDS, BillingLine, billing_lines
from gateway.runtime.acks import AlertSink
from gateway.runtime.recon import Reconciler, build_chain
from gateway.store.recon import ExceptionRow, Key

__all__ = ["ReconOutputs", "exception_alert"]

log = logging.getLogger("gateway.recon")


def exception_alert(e: ExceptionRow) -> dict[str, Any]:
    """An exception alert's JSON body."""
    return {
        "alert": "recon_exception",
        "exception_id": e.id,
        "kind": e.kind,
        "severity": e.severity,
        "status": e.status,
        "partner_id": e.partner_id,
        "po_number": e.po_number,
        "line": e.line,
        "expected": e.expected,
        "actual": e.actual,
        "amount": e.amount,
        "reason": e.reason,
        "documents": e.documents,
        "opened_at": e.updated_at.isoformat(),
    }


class ReconOutputs:
    """Alerts for opened exceptions and billing events for chargeable lines (see the module docstring)."""

    def __init__(self, sink: AlertSink, policy: Callable[[str], Policy]) -> None:
        self.sink = sink
        self.store = sink.store
        self.policy = policy
        self.alerting = sink.routes("recon_exception")
        self.billing = sink.routes("billing_event")
        self.alerts = 0  # recorded since this object was made (for the commands' reports)
        self.events = 0
        self.owed: list[int] = []  # delivery ids recorded and not yet handed to a deliverer (see take_owed)

    @classmethod
    def attach(cls, reconciler: Reconciler, sink: AlertSink) -> ReconOutputs:
        """Outputs for ``reconciler``'s runs, with its partners' policies."""
        outputs = cls(sink, lambda partner: reconciler.policy(partner)[0])
        reconciler.outputs = outputs.after
        return outputs

    def after(self, keys: Sequence[Key] | None) -> tuple[int, int]:
        """Alert the exceptions opened since the last call, and bill the chargeable lines of the chains
        ``keys`` (None: every chain); returns (alerts, billing events) recorded."""
        alerts, events = self.alert_openings(), self.bill(keys)
        self.alerts += alerts
        self.events += events
        return alerts, events

    def take_owed(self) -> list[int]:
        """The deliveries recorded since the last call (leased to this worker for a minute: try them now)."""
        owed, self.owed = self.owed, []
        return owed

    def _record(self, kind: str, partner: str, body: dict[str, Any], summary: str, key: tuple[str, str]) -> bool:
        ids = self.sink.record(kind, partner, body, summary, keys=[key])
        self.owed += ids
        return bool(ids)

    def alert_openings(self) -> int:
        """Record an alert for each exception opened or reopened since the last call."""
        if not self.alerting:
            self.store.skip_openings()
            return 0
        done = 0
        while True:
            opened = self.store.claim_openings()
            for e in opened:
                summary = f"exception {e.id} ({e.kind}) on PO {e.po_number}: {e.reason}"
                done += self._record(
                    "recon_exception", e.partner_id, exception_alert(e), summary, ("exception", str(e.id))
                )
            if len(opened) < 500:
                return done

    def bill(self, keys: Sequence[Key] | None) -> int:
        """Record the billing events due on the chains ``keys`` (None: every chain)."""
        if not self.billing:
            return 0
        chosen = [k for k in (self.store.chain_keys() if keys is None else keys) if self.policy(k[0]).chargeable]
        done = 0
        for start in range(0, len(chosen), 500):
            part = chosen[start : start + 500]
            held = {
                (e.partner_id, e.po_number, e.line) for e in self.store.open_exceptions(part) if e.kind in PRICE_KINDS
            }
            lines: list[BillingLine] = []
            for data in self.store.chains(part):
                lines += billing_lines(build_chain(data), self.policy(data.partner_id))
            billed = self.store.keys_recorded("billing", [b.key for b in lines])
            for b in lines:
                if b.key.upper() in billed or (b.partner, b.po_number, b.line) in held:
                    continue
                summary = f"billing event: {b.quantity} of {b.udi or b.item} on PO {b.po_number}, {b.shipment_id}"
                done += self._record("billing_event", b.partner, b.as_json(), summary, ("billing", b.key))
        return done
