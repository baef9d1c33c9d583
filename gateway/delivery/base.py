"""What a destination is: the payload it is handed, the result it returns, the protocol it implements.

A destination delivers one payload and says what happened, as a value, never by raising for an
outcome the policy must weigh:

- :class:`Delivered`: done (``response`` is what the receiver said, for the ledger);
- :class:`RetryLater`: may succeed later (a timeout, a refused connection, HTTP 429/5xx); ``delay``
  is the receiver's own wish (``Retry-After``), else the policy decides;
- :class:`Rejected`: the receiver refused it for good (HTTP 4xx, a row the staging database refuses):
  a dead letter at once.

A destination raises only for a bug or a broken configuration (:class:`~gateway.errors.ConfigError`);
the delivery loop turns anything else it raises into a retry with the error recorded, so nothing is
lost. The reference module for destinations is :mod:`gateway.delivery.files`: copy its shape
(a pydantic config with ``extra="forbid"``, the class, one registration in :mod:`gateway.components`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from gateway.errors import ConfigError

__all__ = [
    "Delivered",
    "Destination",
    "DestinationConfig",
    "Outcome",
    "Payload",
    "Rejected",
    "RetryLater",
    "SecretRef",
]


class SecretRef(BaseModel):
    """A secret named in ``gateway.yaml`` but kept elsewhere: ``{env: NAME}`` or ``{file: /path}``.

    Secrets never sit in YAML. Phase one (lint) checks that the variable is set or the file exists;
    :meth:`value` reads it when the component is built.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None

    def problem(self) -> str | None:
        """Why the secret cannot be read now (None: it can)."""
        if (self.env is None) == (self.file is None):
            return "a secret is {env: NAME} or {file: PATH}, exactly one of them"
        if self.env is not None and not os.environ.get(self.env):
            return f"environment variable {self.env} is not set"
        if self.file is not None and not os.path.isfile(self.file):
            return f"secret file {self.file} does not exist"
        return None

    def value(self) -> str:
        """The secret (surrounding whitespace stripped); a ConfigError when it cannot be read."""
        why = self.problem()
        if why is not None:
            raise ConfigError(why, code="CFG-030")
        if self.env is not None:
            return os.environ[self.env].strip()
        with open(str(self.file), encoding="utf-8") as handle:
            return handle.read().strip()


class DestinationConfig(BaseModel):
    """Base of every destination's settings: ``type`` names the component; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    retry: dict[str, Any] | None = None  # the delivery policy (gateway.delivery.policy.Policy), checked there


@dataclass(frozen=True, slots=True)
class Payload:
    """One thing to deliver, as the ledger holds it.

    ``kind`` is ``document`` (a canonical document: ``document`` holds its JSON object, ``doc_type``
    its type) or ``outbound`` (bytes we send a partner, an acknowledgment or an 850: ``data``,
    ``doc_type`` is ``997``, ``999``, ``TA1`` or ``850``). ``data`` is always the bytes as recorded
    (for a document, its canonical JSON exactly as the ledger keeps it). ``idempotency_key`` is the same on every
    attempt of one delivery (a receiver uses it to drop repeats) and new for a retransmission.
    """

    kind: Literal["document", "outbound"]
    doc_type: str
    partner_id: str | None
    correlation_id: str
    idempotency_key: str
    delivery_id: int
    file_id: int | None = None
    position: int = 0
    document_id: int | None = None
    business_key: str | None = None
    control_number: str | None = None
    test: bool = False
    document: dict[str, Any] | None = None
    data: bytes | None = None
    attempt: int = 1

    def document_bytes(self) -> bytes:
        """The canonical document as the JSON bytes the ledger keeps (outbound: the bytes as sent)."""
        if self.data is not None:
            return self.data
        return json.dumps(self.document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def names(self) -> dict[str, str]:
        """The values a file-name or URL template may use."""
        return {
            "partner": self.partner_id or "_unknown",
            "doc_type": self.doc_type,
            "file_id": str(self.file_id or 0),
            "position": str(self.position),
            "document_id": str(self.document_id or 0),
            "delivery_id": str(self.delivery_id),
            "control": self.control_number or "",
            "correlation_id": self.correlation_id,
            "business_key": (self.business_key or "").replace(":", "-").replace("/", "-"),
            "number": self.number(),
        }

    def number(self) -> str:
        """The document's own number, the same for its corrections: the PO number of an order or its
        acknowledgment, the shipment id of a ship notice, the invoice number (``-credit`` added for a credit
        memo, which may reuse its invoice's number: as the staging tables key it); empty for what we send."""
        document = self.document or {}
        field = _NUMBER_FIELDS.get(self.doc_type)
        value = document.get(field) if field is not None else None
        if value is None:
            return ""
        credit = "-credit" if self.doc_type == "invoice" and document.get("credit_memo") else ""
        return str(value).replace("/", "-") + credit


_NUMBER_FIELDS = {
    "purchase_order": "po_number",
    "po_acknowledgment": "po_number",
    "ship_notice": "shipment_id",
    "invoice": "invoice_number",
}
"""The field each canonical type's ``{number}`` (file-name and URL templates) comes from."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """Delivered; ``response`` is what the receiver answered (status, headers of interest, excerpt)."""

    response: dict[str, Any] = field(default_factory=dict)
    outcome: ClassVar[str] = "delivered"


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Not delivered this time; may succeed later. ``delay`` (seconds) is the receiver's wish, if any."""

    reason: str
    delay: float | None = None
    response: dict[str, Any] = field(default_factory=dict)
    outcome: ClassVar[str] = "retry"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Refused for good: the delivery becomes a dead letter."""

    reason: str
    response: dict[str, Any] = field(default_factory=dict)
    outcome: ClassVar[str] = "rejected"


Outcome = Delivered | RetryLater | Rejected


@runtime_checkable
class Destination(Protocol):
    """Delivers payloads somewhere. Built from its config by the registry (phase two: may open
    connections); ``deliver`` may be called from one thread at a time, unless the destination has a
    ``concurrency`` attribute above 1 (that many at once: REST); ``close`` releases what it holds."""

    name: str

    def deliver(self, payload: Payload) -> Outcome:
        """Deliver one payload and say what happened."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
