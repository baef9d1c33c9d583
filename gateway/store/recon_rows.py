"""The rows reconciliation's store hands out: a chain's documents, stored exceptions and their events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.store.rows import Record

__all__ = ["ChainData", "ExceptionEvent", "ExceptionRow", "LinkedDoc"]


@dataclass(frozen=True, slots=True)
class LinkedDoc:
    """One document of a chain, as the index holds it: canonical JSON text and when it was recorded."""

    ref: str
    doc_type: str
    canonical: str
    received_at: datetime
    number: str | None = None
    purpose: str | None = None
    po_number: str | None = None


@dataclass
class ChainData:
    """A chain's documents, and the partner's invoices sharing a number with the chain's invoices."""

    partner_id: str
    po_number: str
    docs: list[LinkedDoc] = field(default_factory=list)
    invoices_seen: dict[str, list[LinkedDoc]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExceptionRow:
    """A stored exception."""

    id: int
    partner_id: str
    po_number: str
    key: str
    kind: str
    severity: str
    status: str
    line: str | None
    documents: list[str]
    expected: str
    actual: str
    amount: str | None
    reason: str
    resolved_by: str | None
    resolution: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @classmethod
    def from_mapping(cls, row: Record) -> ExceptionRow:
        values = dict(row)
        values["documents"] = json.loads(values["documents"])
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready (timestamps ISO 8601, the amount as a string)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__}
        for name in ("created_at", "updated_at", "resolved_at"):
            out[name] = out[name].isoformat() if out[name] is not None else None
        return out


@dataclass(frozen=True, slots=True)
class ExceptionEvent:
    """One change in an exception's life."""

    id: int
    exception_id: int
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    actor: str | None
    at: datetime
