"""Reconciliation of purchase order ↔ acknowledgment ↔ ship notice ↔ invoice (pure: no store, no I/O).

Given one PO chain (:class:`Chain`: the 850, its 855s, 856s and 810s as canonical documents) and the
partner's :class:`Policy` (tolerances, SLAs, unit conversions, item id order, lot-tracked items,
allowed charges), :func:`reconcile` returns the exceptions (:class:`Discrepancy`), each with a kind,
a severity, the documents and line involved, expected and actual values, the amount at stake and a
reason in words. The store keeps the chain index and the exceptions' life (``gateway.store.recon``);
the runtime calls this for the POs a batch touched. Design notes: ``docs/reconciliation.md``.
"""

from gateway.reconcile.chain import Chain, ChainDoc, InvoiceSeen
from gateway.reconcile.config import (
    DateLimit,
    ItemRule,
    Limit,
    Policy,
    ReconciliationConfig,
    Slas,
    Tolerances,
    UomConversion,
    layered,
)
from gateway.reconcile.engine import reconcile
from gateway.reconcile.model import KIND_SEVERITY, Discrepancy, Kind, Severity
from gateway.reconcile.units import Units

__all__ = [
    "KIND_SEVERITY",
    "Chain",
    "ChainDoc",
    "DateLimit",
    "Discrepancy",
    "InvoiceSeen",
    "ItemRule",
    "Kind",
    "Limit",
    "Policy",
    "ReconciliationConfig",
    "Severity",
    "Slas",
    "Tolerances",
    "Units",
    "UomConversion",
    "layered",
    "reconcile",
]
