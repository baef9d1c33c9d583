"""Reconciliation's outputs routed like documents: an alert for every exception opened (or reopened),
and a billing event for every ship-notice line of a chargeable supply.

Both go only where a routing rule names their type (``match: {doc_type: recon_exception}``,
``billing_event``), as acknowledgment tracking's alerts do (:class:`gateway.runtime.acks.AlertSink`):
each is recorded as an outbound item of that kind, its JSON archived, with a delivery per destination.

Both are recorded by the store in the transaction that reconciles the chain (a transactional outbox,
:mod:`gateway.store.recon_outbox`): a crash before its commit leaves nothing, and the next run records
them; after it, the deliveries are in the ledger and are sent by any worker, with the idempotency key
written with them.

- Alerts: every ``open`` or ``reopen`` event of an exception is claimed once (a cursor moved in that
  transaction), so ``gateway recon run`` and any number of workers alert each opening once.
- Billing events: each chargeable line is billed once (a unique ``recon_billing`` row; its key is also
  the outbound item's ``billing`` search key, so ``gateway find`` finds it); a line whose PO line has an
  open price exception (:data:`gateway.reconcile.billing.PRICE_KINDS`) is withheld, and billed on the
  first pass after that exception is resolved by a document or resolved or waived by an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from gateway.reconcile import Policy
from gateway.reconcile.billing import BillingLine, billing_lines
from gateway.runtime.acks import AlertSink
from gateway.runtime.recon import Reconciler, build_chain
from gateway.store.recon_outbox import OutboxItem, OutboxWrites
from gateway.store.recon_rows import ChainData, ExceptionRow

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
    """Alerts for opened exceptions and billing events for chargeable lines: the store's
    :class:`~gateway.store.recon_outbox.ReconOutbox`, recorded in the reconciliation's own transaction."""

    def __init__(self, sink: AlertSink, policy: Callable[[str], Policy]) -> None:
        self.sink = sink
        self.worker = sink.worker
        self.policy = policy
        self.alerting = sink.routes("recon_exception")
        self.billing_routed = sink.routes("billing_event")
        self.alerts = 0  # recorded (and committed) since this object was made, for the commands' reports
        self.events = 0
        self.owed: list[int] = []  # delivery ids committed and not yet handed to a deliverer (see take_owed)

    @classmethod
    def attach(cls, reconciler: Reconciler, sink: AlertSink) -> ReconOutputs:
        """Outputs for ``reconciler``'s runs, with its partners' policies."""
        outputs = cls(sink, lambda partner: reconciler.policy(partner)[0])
        reconciler.outbox = outputs
        return outputs

    def take_owed(self) -> list[int]:
        """The deliveries recorded since the last call (leased to this worker for a minute: try them now)."""
        owed, self.owed = self.owed, []
        return owed

    def routes_alerts(self) -> bool:
        """Whether some rule routes ``recon_exception``."""
        return self.alerting

    def alert(self, exception: ExceptionRow) -> OutboxItem | None:
        """The alert of an opened exception, routed and archived."""
        summary = f"exception {exception.id} ({exception.kind}) on PO {exception.po_number}: {exception.reason}"
        key = ("exception", str(exception.id))
        return self.sink.item("recon_exception", exception.partner_id, exception_alert(exception), summary, [key])

    def billing(self, chains: Sequence[ChainData]) -> list[BillingLine]:
        """The chargeable ship-notice lines of ``chains`` (of partners with chargeable supplies)."""
        if not self.billing_routed:
            return []
        lines: list[BillingLine] = []
        for data in chains:
            policy = self.policy(data.partner_id)
            if policy.enabled and policy.chargeable:  # a partner not reconciled is not billed either
                lines += billing_lines(build_chain(data), policy)
        return lines

    def billing_event(self, line: BillingLine) -> OutboxItem | None:
        """The billing event of ``line``, routed and archived."""
        summary = (
            f"billing event: {line.quantity} of {line.udi or line.item} on PO {line.po_number}, {line.shipment_id}"
        )
        return self.sink.item("billing_event", line.partner, line.as_json(), summary, [("billing", line.key)])

    def committed(self, writes: OutboxWrites) -> None:
        """Count what a committed transaction recorded, and owe its deliveries to this worker."""
        self.alerts += writes.alerts
        self.events += writes.events
        self.owed += writes.deliveries
