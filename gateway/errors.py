"""The gateway's errors, classified by what the caller must do.

::

    GatewayError                      root; every error carries ``code`` and ``disposition``
    ├── ConfigError                   CONFIG: fix the configuration; exit 2
    │   └── DefinitionError           a transaction-set definition or overlay is wrong
    ├── DocumentError                 FAIL: terminal for that document: quarantine, negative ack
    ├── TransientDeliveryError        RETRY: retry with backoff
    ├── RejectedDeliveryError         REJECT: dead letter
    └── StoreError (gateway.store)    FAIL, or RETRY for StoreUnavailableError/ArchiveError,
                                      CONFIG for SchemaError (run ``gateway db upgrade``)

**One classification.** What the caller must do is the error's ``disposition``
(:class:`Disposition`), a class attribute, and :func:`disposition` reads it for any exception
(an ``OSError`` from the disk is RETRY; anything else not ours is a BUG: logged with its
traceback, the file failed, never retried silently). The processing loop, the delivery loop
and the CLI all switch on that one value.

Problems *found in* a document (a missing segment, a bad code value) are not
exceptions: the validator collects them as :class:`gateway.x12.findings.Finding`
values so one bad set never hides the next. Exceptions are for the cases
where work cannot go on.

Each error has a stable ``code`` and, where it applies, a structured
:class:`Location` as attributes, not only in the message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Location:
    """Where something is, as precisely as known; every field optional.

    ``segment_index`` counts from 1 at ST inside a transaction set (the
    number a 997 AK301 reports); ``interchange_index`` counts from 1 at ISA;
    ``byte_offset`` is from the start of the file; ``element``/``component``
    count from 1.
    """

    file: str | None = None
    partner: str | None = None
    interchange: str | None = None
    group: str | None = None
    transaction_set: str | None = None
    segment_id: str | None = None
    segment_index: int | None = None
    interchange_index: int | None = None
    byte_offset: int | None = None
    element: int | None = None
    component: int | None = None
    repeat: int | None = None
    loop: str | None = None
    line: int | None = None  # text sources (maps, profiles, CSV): 1-based line and column
    column: int | None = None
    path: str | None = None  # a key path in a map or profile, e.g. ``fields.lines.value.lot``

    def describe(self) -> str:
        """A short human-readable form, e.g. ``ST 0001 > PO1 #5 (byte 311) element 3``."""
        parts: list[str] = []
        if self.partner:
            parts.append(f"partner {self.partner}")
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
            parts.append(where)
        if self.interchange:
            parts.append(f"ISA {self.interchange}")
        if self.group:
            parts.append(f"GS {self.group}")
        if self.transaction_set:
            parts.append(f"ST {self.transaction_set}")
        if self.segment_id:
            where = self.segment_id
            if self.segment_index is not None:
                where += f" #{self.segment_index}"
            if self.byte_offset is not None:
                where += f" (byte {self.byte_offset})"
            parts.append(where)
        elif self.byte_offset is not None:
            parts.append(f"byte {self.byte_offset}")
        if self.element is not None:
            el = f"element {self.element:02d}"
            if self.component is not None:
                el += f"-{self.component}"
            parts.append(el)
        if self.loop:
            parts.append(f"loop {self.loop}")
        if self.path:
            parts.append(self.path)
        return " > ".join(parts) if parts else "(no location)"


def location_dict(location: Location) -> dict[str, object]:
    """The fields of ``location`` that are set, for JSON and the ledger."""
    return {f.name: v for f in fields(location) if (v := getattr(location, f.name)) is not None}


class Disposition(StrEnum):
    """What the caller of a failed step must do."""

    RETRY = "retry"  # may pass by itself (a database restarting, a full disk, a receiver down): try later
    FAIL = "fail"  # terminal for this document or file: record it failed/quarantined with the reason
    REJECT = "reject"  # a receiver refused it for good: dead letter
    CONFIG = "config"  # the configuration or the installation is wrong: exit 2, fix, then retry
    BUG = "bug"  # not a classified error: log the traceback, fail the file, never retry silently


@dataclass(eq=False)
class GatewayError(Exception):
    """Root of the gateway's exceptions."""

    message: str
    code: str = "GW000"
    location: Location = field(default_factory=Location)
    disposition: ClassVar[Disposition] = Disposition.FAIL

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        loc = self.location.describe()
        if loc == "(no location)":
            return f"[{self.code}] {self.message}"
        return f"[{self.code}] {loc}: {self.message}"


class ConfigError(GatewayError):
    """The configuration is wrong; the operator must fix it (exit 2)."""

    disposition: ClassVar[Disposition] = Disposition.CONFIG


class DefinitionError(ConfigError):
    """A transaction-set definition or implementation-guide overlay is wrong."""


class DocumentError(GatewayError):
    """Terminal for one document: it is quarantined and negatively acknowledged."""


class TransientDeliveryError(GatewayError):
    """A delivery failed in a way that may succeed later: retry with backoff."""

    disposition: ClassVar[Disposition] = Disposition.RETRY


class RejectedDeliveryError(GatewayError):
    """The destination refused a delivery for good: dead-letter it."""

    disposition: ClassVar[Disposition] = Disposition.REJECT


def disposition(exc: BaseException) -> Disposition:
    """What to do about ``exc``: a gateway error says it itself; a disk or network ``OSError`` may pass
    (RETRY); anything else is a bug."""
    if isinstance(exc, GatewayError):
        return exc.disposition
    if isinstance(exc, OSError):
        return Disposition.RETRY
    return Disposition.BUG
