"""Wiring reconciliation: the store's chain index and exceptions, the pure reconciler, the partners'
policies. The runtime calls :meth:`Reconciler.catch_up` after each recorded batch (and after sending
orders); ``gateway recon run`` calls :meth:`Reconciler.rerun` over the whole index."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from gateway.canonical import Invoice, PurchaseOrder, PurchaseOrderAcknowledgment, ShipNotice
from gateway.canonical.documents import Purpose
from gateway.partners.profile import Profile
from gateway.reconcile import (
    Chain,
    ChainDoc,
    Discrepancy,
    InvoiceSeen,
    Policy,
    ReconciliationConfig,
    layered,
    reconcile,
)
from gateway.reconcile.units import Units
from gateway.store.recon import ChainData, Key
from gateway.store.recon_outbox import ReconOutbox
from gateway.store.recon_rows import ExceptionRow
from gateway.store.store import Store

__all__ = ["Reconciler", "build_chain"]

_PARSERS: dict[str, TypeAdapter[Any]] = {
    "purchase_order": TypeAdapter(PurchaseOrder),
    "po_acknowledgment": TypeAdapter(PurchaseOrderAcknowledgment),
    "ship_notice": TypeAdapter(ShipNotice),
    "invoice": TypeAdapter(Invoice),
}


def _purpose(value: str | None) -> Purpose:
    try:
        return Purpose(value or "original")
    except ValueError:
        return Purpose.OTHER


def build_chain(data: ChainData) -> Chain:
    """The pure reconciler's view of a chain the store loaded (canonical JSON parsed; the latest order
    wins when several were recorded, e.g. a change order)."""
    chain = Chain(partner=data.partner_id, po_number=data.po_number)
    for linked in data.docs:
        doc = _PARSERS[linked.doc_type].validate_json(linked.canonical)
        item: ChainDoc = ChainDoc(linked.ref, doc, linked.received_at)  # type: ignore[type-arg]
        if isinstance(doc, PurchaseOrder):
            if chain.order is None or doc.purpose is not Purpose.CANCEL:
                chain.order = item
        elif isinstance(doc, PurchaseOrderAcknowledgment):
            chain.acks.append(item)
        elif isinstance(doc, ShipNotice):
            chain.notices.append(item)
        else:
            chain.invoices.append(item)
    chain.invoices_seen = {
        number: [InvoiceSeen(s.ref, number, s.received_at, _purpose(s.purpose), s.po_number) for s in seen]
        for number, seen in data.invoices_seen.items()
    }
    return chain


class Reconciler:
    """Reconciles PO chains in the store with each partner's layered policy."""

    def __init__(
        self,
        store: Store,
        settings: ReconciliationConfig | None,
        profiles: Callable[[str], Profile | None],
        *,
        actor: str = "gateway",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        outbox: ReconOutbox | None = None,
        xrefs: Callable[[str], Mapping[str, Mapping[str, str]]] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.profiles = profiles
        self.actor = actor
        self.clock = clock
        self.xrefs = xrefs  # the partner's `xref:` tables, loaded (item ids matched through them)
        self._policies: dict[str, tuple[Policy, Units]] = {}
        self.outbox = outbox  # alerts and billing events, in each run's transactions (gateway.runtime.recon_alerts)

    def policy(self, partner: str) -> tuple[Policy, Units]:
        """The partner's policy (gateway.yaml's layer, then the profile's) and its unit table."""
        found = self._policies.get(partner)
        if found is None:
            profile = self.profiles(partner) if partner else None
            policy = layered(self.settings, profile.reconciliation if profile is not None else None)
            if self.xrefs is not None and partner:
                policy = policy.with_xrefs(self.xrefs(partner))
            found = self._policies[partner] = (policy, Units(policy.uom))
        return found

    def compute(self, chains: list[ChainData]) -> dict[Key, list[Discrepancy]]:
        """Every chain's exceptions as of now."""
        now = self.clock()
        out: dict[Key, list[Discrepancy]] = {}
        for data in chains:
            policy, units = self.policy(data.partner_id)
            out[(data.partner_id, data.po_number)] = reconcile(build_chain(data), policy, now, units)
        return out

    def catch_up(self) -> int:
        """Index the documents recorded since the last call and reconcile the chains they touched (and
        chains of orders sent since); returns how many chains were reconciled. One transaction when there
        is no backlog (the runtime calls this after every batch)."""
        return self.store.catch_up(self.compute, self.actor, outbox=self.outbox)

    def rerun(self, keys: Sequence[Key] | None = None, partner: str | None = None) -> int:
        """Reconcile again (the given chains, or every chain of ``partner``, or all): SLAs move with time,
        and settings may have changed."""
        while self.store.index_new_documents():
            pass
        return self.store.reconcile_chains(keys, self.compute, self.actor, partner_id=partner, outbox=self.outbox)

    def check_slas(self) -> int:
        """Reconcile again the chains still waiting for an acknowledgment, ship notice or invoice: their
        time-based exceptions open as the clock passes the SLA, with no new document; returns how many."""
        keys = self.store.chains_awaiting()
        return self.rerun(keys) if keys else 0

    def settle(self, exception_id: int, status: str, reason: str) -> ExceptionRow:
        """An operator resolves or waives an exception; the billing events it held back are recorded."""
        return self.store.settle_exception(exception_id, status, reason, self.actor, outbox=self.outbox)
