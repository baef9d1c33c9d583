"""Finding things in the ledger: ``gateway messages list`` filters and the ``gateway find`` search box.

A *message* is what an operator asks about: a received file (its id is the file id, ``42``) or an
interchange we sent (``out-7``). Filters narrow both by partner, document type, direction, status (of
the file, any of its sets or documents, or the outbound row and its deliveries), a time range, control
numbers (ISA13, GS06, ST02) and business keys.

Business keys live in ``search_keys``: PO, invoice and ASN numbers, lots, serials, SSCCs and bills of
lading taken from each canonical document when it is recorded (:func:`keys_of`), and the PO number of
each 850 we send, upper-cased so a search ignores case. Every filter and lookup is one indexed query
per table (migration 0006 adds the indexes); ``bench/bench_search.py`` measures it on a big ledger.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, func, insert, or_, select, union

from gateway.store.base import StoreBase
from gateway.store.errors import StoreValueError
from gateway.store.schema import (
    deliveries,
    delivery_attempts,
    documents,
    files,
    groups,
    interchanges,
    outbound,
    search_keys,
    transaction_sets,
)
from gateway.store.statuses import (
    DeliveryStatus,
    DocumentStatus,
    EnvelopeStatus,
    ExpectedAck,
    FileStatus,
    OutboundStatus,
    SetStatus,
)

__all__ = [
    "DOCUMENT_TYPES",
    "KEY_FIELDS",
    "Found",
    "Message",
    "MessageFilter",
    "SearchOps",
    "control_candidates",
    "insert_keys",
    "keys_of",
    "message_id",
    "parse_message_id",
    "search_rows",
]

KEY_FIELDS: dict[str, str] = {
    "po_number": "po",
    "invoice_number": "invoice",
    "shipment_id": "asn",
    "lot": "lot",
    "serial": "serial",
    "sscc": "sscc",
    "bill_of_lading": "bol",
}
"""Canonical field → the kind of key it is (``--key-kind``), wherever the field appears in a document."""

DOCUMENT_TYPES: dict[str, tuple[str, ...]] = {
    "purchase_order": ("purchase_order", "850"),
    "po_acknowledgment": ("po_acknowledgment", "855"),
    "ship_notice": ("ship_notice", "856"),
    "invoice": ("invoice", "810"),
    "acknowledgment": ("acknowledgment", "997", "999", "TA1"),
}
"""A type a user may name (canonical name, X12 number or an alias) → the doc_type/outbound kinds it covers."""
_ALIASES = {"850": "purchase_order", "po": "purchase_order", "855": "po_acknowledgment", "856": "ship_notice",
            "asn": "ship_notice", "810": "invoice", "997": "acknowledgment", "999": "acknowledgment",
            "ta1": "acknowledgment", "ack": "acknowledgment"}  # fmt: skip

STATUSES = sorted(
    {
        s.value
        for e in (FileStatus, SetStatus, EnvelopeStatus, DocumentStatus, DeliveryStatus, OutboundStatus, ExpectedAck)
        for s in e
    }
)
"""Every status a message, its sets, documents or deliveries, or the ack we expect, can be in (``--status``)."""

_FILE_STATUSES = frozenset(s.value for s in FileStatus)
_STATUS_HOLDERS = (
    (documents, frozenset(s.value for s in DocumentStatus)),
    (transaction_sets, frozenset(s.value for s in SetStatus)),
    (deliveries, frozenset(s.value for s in DeliveryStatus)),
    (interchanges, frozenset(s.value for s in EnvelopeStatus)),
)
"""The tables a file's parts are in, with the statuses each can take (``messages list --status``)."""
_OUT_ID = re.compile(r"(?i)^out-?(\d+)$")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def message_id(file_id: int | None = None, outbound_id: int | None = None) -> str:
    """The id ``messages show`` takes: a file's id, or ``out-N`` for an interchange we sent."""
    return str(file_id) if outbound_id is None else f"out-{outbound_id}"


def parse_message_id(text: str) -> tuple[str, int]:
    """``("file", 42)`` or ``("outbound", 7)``; StoreValueError for anything else."""
    text = text.strip()
    if text.isdigit():
        return "file", int(text)
    m = _OUT_ID.match(text)
    if m:
        return "outbound", int(m.group(1))
    raise StoreValueError(f"message id {text!r}: a file id (42) or out-N for an interchange we sent (out-7)")


def normalize(value: str) -> str:
    """A key as it is stored and searched: trimmed, upper case."""
    return value.strip().upper()


def keys_of(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (kind, value) business key in a canonical document, in order, each once (pure).

    The fields of :data:`KEY_FIELDS` anywhere in the document (an ASN's PO numbers per order, each
    item's lot), not its provenance. Values are normalised (:func:`normalize`) and cut to 256 characters.
    """
    found: dict[tuple[str, str], None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for name, value in node.items():
                kind = KEY_FIELDS.get(name)
                if kind is not None and isinstance(value, str | int) and str(value).strip():
                    found.setdefault((kind, normalize(str(value))[:256]), None)
                elif name != "provenance":
                    # Leaves told by their exact type first: the check against the Mapping ABC costs about
                    # 0.2 µs a value, and it made half of this walk's time (46 µs a single-PO 855, now 23).
                    shape = type(value)
                    if shape is dict or shape is list or (shape not in _LEAVES and isinstance(value, Mapping | list)):
                        walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return list(found)


_LEAVES = frozenset({str, int, float, bool, type(None)})
"""The leaf types of parsed JSON (:func:`keys_of` walks into anything else that is a mapping or a list)."""


def search_rows(
    canonical: str, *, file_id: int | None, document_id: int | None, partner_id: str | None
) -> list[dict[str, Any]]:
    """The ``search_keys`` rows of one document (``canonical``: its JSON text); none when it is not JSON."""
    try:
        doc = json.loads(canonical)
    except ValueError:
        return []
    return [
        {"file_id": file_id, "document_id": document_id, "outbound_id": None, "partner_id": partner_id,
         "kind": kind, "value": value}
        for kind, value in keys_of(doc)
    ]  # fmt: skip


def insert_keys(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``search_keys`` rows in the caller's transaction (one executemany)."""
    if rows:
        conn.execute(insert(search_keys), [dict(r) for r in rows])


def control_candidates(text: str) -> list[str]:
    """The control numbers ``text`` may mean: as typed, and for digits also as ISA13 (9 digits, zero-padded),
    ST02 (4 digits) and GS06 (no leading zeros)."""
    text = text.strip()
    out = {text}
    if text.isdigit():
        bare = text.lstrip("0") or "0"
        out |= {bare, bare.zfill(9), bare.zfill(4)}
    return sorted(v for v in out if v)


def resolve_types(names: Iterable[str]) -> tuple[str, ...]:
    """The doc_type/outbound kinds a user's type names cover; StoreValueError naming the known ones."""
    out: list[str] = []
    for name in names:
        key = _ALIASES.get(name.strip().lower(), name.strip().lower())
        if key not in DOCUMENT_TYPES:
            known = ", ".join([*DOCUMENT_TYPES, *sorted(_ALIASES)])
            raise StoreValueError(f"document type {name!r} is not one of: {known}")
        out.extend(DOCUMENT_TYPES[key])
    return tuple(out)


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What ``messages list`` narrows by; every field None (or empty) matches everything."""

    partner: str | None = None
    types: tuple[str, ...] = ()
    direction: str | None = None  # "in" or "out"
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    control: str | None = None
    key: str | None = None
    key_kind: str | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if self.direction not in (None, "in", "out"):
            raise StoreValueError(f"direction {self.direction!r}: in or out")
        if self.status is not None and self.status not in STATUSES:
            raise StoreValueError(f"status {self.status!r} is not one of: {', '.join(STATUSES)}")
        if self.key_kind is not None and self.key_kind not in KEY_FIELDS.values():
            raise StoreValueError(f"key kind {self.key_kind!r} is not one of: {', '.join(KEY_FIELDS.values())}")


@dataclass(frozen=True, slots=True)
class Message:
    """One row of ``messages list``: a received file or an interchange we sent."""

    id: str
    direction: str
    at: datetime
    partner: str | None
    status: str
    name: str
    types: dict[str, dict[str, int]] = field(default_factory=dict)  # doc_type → {status: n}
    keys: tuple[str, ...] = ()
    control_numbers: tuple[str, ...] = ()
    reason: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """One answer of ``gateway find``: what matched, on what, and the ``messages show`` id."""

    match: str
    message: str
    doc_type: str
    partner: str | None
    status: str
    at: datetime
    document_id: int | None = None


class SearchOps(StoreBase):
    """``messages list`` and ``gateway find`` over the ledger."""

    # --- messages list ---------------------------------------------------------------------------

    def list_messages(self, f: MessageFilter) -> list[Message]:
        """Messages newest first, at most ``f.limit``: received files and interchanges we sent."""
        out: list[Message] = []
        with self._db.read("list messages") as conn:
            if f.direction in (None, "in"):
                out.extend(self._files(conn, f))
            if f.direction in (None, "out"):
                out.extend(self._outbound(conn, f))
        out.sort(key=lambda m: m.at, reverse=True)
        return out[: f.limit]

    def _files(self, conn: Connection, f: MessageFilter) -> list[Message]:
        query: Select[Any] = select(files).order_by(files.c.id.desc()).limit(f.limit)
        if f.partner is not None:
            query = query.where(files.c.partner_id == f.partner)
        if f.since is not None:
            query = query.where(files.c.received_at >= f.since)
        if f.until is not None:
            query = query.where(files.c.received_at < f.until)
        if f.status is not None:
            # Only the tables that can hold the status are asked: each is an indexed lookup or a short scan.
            held = [files.c.status == f.status] if f.status in _FILE_STATUSES else []
            held += [
                files.c.id.in_(select(table.c.file_id).where(table.c.status == f.status, table.c.file_id.is_not(None)))
                for table, statuses in _STATUS_HOLDERS
                if f.status in statuses
            ]
            query = query.where(or_(*held) if held else files.c.id.is_(None))
        if f.types:
            query = query.where(exists().where(documents.c.file_id == files.c.id, documents.c.doc_type.in_(f.types)))
        if f.control is not None:
            cands = control_candidates(f.control)
            # One UNION of the three levels' file ids: an OR of three IN-subqueries cannot use their indexes on
            # PostgreSQL, which then reads every file newest first (1.5 s on a 1M-document ledger).
            named = union(
                select(interchanges.c.file_id).where(interchanges.c.control_number.in_(cands)),
                select(groups.c.file_id).where(groups.c.control_number.in_(cands)),
                select(transaction_sets.c.file_id).where(transaction_sets.c.control_number.in_(cands)),
            )
            query = query.where(files.c.id.in_(select(named.subquery().c.file_id)))
        if f.key is not None:
            query = query.where(files.c.id.in_(self._keyed(search_keys.c.file_id, f)))
        rows = [dict(r) for r in conn.execute(query).mappings()]
        ids = [int(r["id"]) for r in rows]
        types: dict[int, dict[str, dict[str, int]]] = {i: {} for i in ids}
        keys: dict[int, list[str]] = {i: [] for i in ids}
        controls: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            counted = select(documents.c.file_id, documents.c.doc_type, documents.c.status, func.count()).where(
                documents.c.file_id.in_(ids)
            )
            for fid, doc_type, status, n in conn.execute(
                counted.group_by(documents.c.file_id, documents.c.doc_type, documents.c.status)
            ):
                types[int(fid)].setdefault(str(doc_type), {})[str(status)] = int(n)
            first_keys = (
                select(documents.c.file_id, func.min(documents.c.business_key))
                .where(documents.c.file_id.in_(ids), documents.c.business_key.is_not(None))
                .group_by(documents.c.file_id)
            )
            for fid, key in conn.execute(first_keys):
                keys[int(fid)].append(str(key))
            for fid, number in conn.execute(
                select(interchanges.c.file_id, interchanges.c.control_number)
                .where(interchanges.c.file_id.in_(ids))
                .order_by(interchanges.c.position)
            ):
                controls[int(fid)].append(str(number))
        return [
            Message(
                id=message_id(int(r["id"])),
                direction="in",
                at=r["received_at"],
                partner=r["partner_id"],
                status=r["status"],
                name=r["name"],
                types=types[int(r["id"])],
                keys=tuple(keys[int(r["id"])]),
                control_numbers=tuple(controls[int(r["id"])]),
                reason=r["reason"],
                correlation_id=r["correlation_id"],
            )
            for r in rows
        ]

    def _outbound(self, conn: Connection, f: MessageFilter) -> list[Message]:
        query: Select[Any] = select(outbound).order_by(outbound.c.id.desc()).limit(f.limit)
        if f.partner is not None:
            query = query.where(outbound.c.partner_id == f.partner)
        if f.since is not None:
            query = query.where(outbound.c.created_at >= f.since)
        if f.until is not None:
            query = query.where(outbound.c.created_at < f.until)
        if f.types:
            query = query.where(outbound.c.kind.in_(f.types))
        if f.status is not None:
            query = query.where(
                or_(
                    outbound.c.status == f.status,
                    outbound.c.expected_ack == f.status,
                    exists().where(deliveries.c.outbound_id == outbound.c.id, deliveries.c.status == f.status),
                )
            )
        if f.control is not None:
            cands = control_candidates(f.control)
            query = query.where(or_(outbound.c.control_number.in_(cands), outbound.c.group_control_number.in_(cands)))
        if f.key is not None:
            query = query.where(outbound.c.id.in_(self._keyed(search_keys.c.outbound_id, f)))
        rows = list(conn.execute(query).mappings())
        ids = [int(r["id"]) for r in rows]
        keys: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            for oid, value in conn.execute(
                select(search_keys.c.outbound_id, search_keys.c.value)
                .where(search_keys.c.outbound_id.in_(ids))
                .order_by(search_keys.c.id)
            ):
                keys[int(oid)].append(str(value))
        return [
            Message(
                id=message_id(outbound_id=int(r["id"])),
                direction="out",
                at=r["created_at"],
                partner=r["partner_id"],
                status=r["status"] + (f", ack {r['expected_ack']}" if r["expected_ack"] else ""),
                name=f"{r['kind']} ISA13 {r['control_number'] or '-'}",
                types={r["kind"]: {r["status"]: 1}},
                keys=tuple(keys[int(r["id"])]),
                control_numbers=tuple(x for x in (r["control_number"], r["group_control_number"]) if x),
                reason=r["reason"],
                correlation_id=r["correlation_id"],
            )
            for r in rows
        ]

    @staticmethod
    def _keyed(column: Any, f: MessageFilter) -> Select[Any]:
        assert f.key is not None
        where: list[ColumnElement[bool]] = [search_keys.c.value == normalize(f.key)]
        if f.key_kind is not None:
            where.append(search_keys.c.kind == f.key_kind)
        return select(column).where(and_(*where), column.is_not(None))

    # --- gateway find ----------------------------------------------------------------------------

    def find(self, text: str, limit: int = 50) -> list[Found]:
        """Everything ``text`` names: a business key, a control number or a correlation id, newest first."""
        text = text.strip()
        if not text:
            raise StoreValueError("nothing to find: give a PO, invoice, ASN or lot number, or a control number")
        found: list[Found] = []
        with self._db.read(f"find {text!r}") as conn:
            found += self._found_keys(conn, normalize(text), limit)
            found += self._found_controls(conn, control_candidates(text), limit)
            if _UUID.match(text):
                found += self._found_correlation(conn, text.lower(), limit)
        unique: dict[tuple[str, str, int | None], Found] = {}
        for item in found:
            unique.setdefault((item.match, item.message, item.document_id), item)
        return sorted(unique.values(), key=lambda x: x.at, reverse=True)[:limit]

    @staticmethod
    def _found_keys(conn: Connection, value: str, limit: int) -> list[Found]:
        docs = (
            select(search_keys.c.kind.label("key_kind"), documents)
            .join(documents, documents.c.id == search_keys.c.document_id)
            .where(search_keys.c.value == value)
            .order_by(documents.c.id.desc())
            .limit(limit)
        )
        out = [
            Found(f"{r['key_kind']} {value}", message_id(int(r["file_id"])), r["doc_type"], r["partner_id"],
                  r["status"], r["created_at"], int(r["id"]))
            for r in conn.execute(docs).mappings()
        ]  # fmt: skip
        sent = (
            select(search_keys.c.kind.label("key_kind"), outbound)
            .join(outbound, outbound.c.id == search_keys.c.outbound_id)
            .where(search_keys.c.value == value)
            .order_by(outbound.c.id.desc())
            .limit(limit)
        )
        out += [
            Found(f"{r['key_kind']} {value}", message_id(outbound_id=int(r["id"])), f"{r['kind']} sent",
                  r["partner_id"], r["status"], r["created_at"])
            for r in conn.execute(sent).mappings()
        ]  # fmt: skip
        return out

    @staticmethod
    def _found_controls(conn: Connection, cands: list[str], limit: int) -> list[Found]:
        out: list[Found] = []
        levels = (("ISA13", interchanges, None), ("GS06", groups, None), ("ST02", transaction_sets, "set_id"))
        for label, table, what in levels:
            query = (
                select(table, files.c.partner_id.label("file_partner"), files.c.received_at)
                .join(files, files.c.id == table.c.file_id)
                .where(table.c.control_number.in_(cands))
                # (control number, id) is the index's own order: newest first without scanning every set when
                # the number is as common as ST02 0001
                .order_by(table.c.control_number.desc(), table.c.id.desc())
                .limit(limit)
            )
            for r in conn.execute(query).mappings():
                kind = f"{r[what]} set" if what else table.name.rstrip("s").replace("_", " ")
                out.append(
                    Found(f"{label} {r['control_number']}", message_id(int(r["file_id"])), kind, r["file_partner"],
                          r["status"], r["received_at"])
                )  # fmt: skip
        sent = (
            select(outbound)
            .where(or_(outbound.c.control_number.in_(cands), outbound.c.group_control_number.in_(cands)))
            .order_by(outbound.c.id.desc())
            .limit(limit)
        )
        for r in conn.execute(sent).mappings():
            label = "ISA13" if r["control_number"] in cands else "GS06"
            number = r["control_number"] if label == "ISA13" else r["group_control_number"]
            out.append(
                Found(f"{label} {number} (sent)", message_id(outbound_id=int(r["id"])), f"{r['kind']} sent",
                      r["partner_id"], r["status"], r["created_at"])
            )  # fmt: skip
        return out

    @staticmethod
    def _found_correlation(conn: Connection, value: str, limit: int) -> list[Found]:
        out: list[Found] = []
        for r in conn.execute(select(files).where(files.c.correlation_id == value).limit(limit)).mappings():
            out.append(Found("correlation id", message_id(int(r["id"])), f"{r['format']} file", r["partner_id"],
                             r["status"], r["received_at"]))  # fmt: skip
        for r in conn.execute(select(documents).where(documents.c.correlation_id == value).limit(limit)).mappings():
            out.append(Found("correlation id", message_id(int(r["file_id"])), r["doc_type"], r["partner_id"],
                             r["status"], r["created_at"], int(r["id"])))  # fmt: skip
        for r in conn.execute(select(outbound).where(outbound.c.correlation_id == value).limit(limit)).mappings():
            out.append(Found("correlation id", message_id(outbound_id=int(r["id"])), f"{r['kind']} sent",
                             r["partner_id"], r["status"], r["created_at"]))  # fmt: skip
        return out

    # --- messages show ---------------------------------------------------------------------------

    def attempts_of(self, delivery_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
        """Every try of each delivery in ``delivery_ids``, oldest first (response decoded), in one query."""
        out: dict[int, list[dict[str, Any]]] = {int(i): [] for i in delivery_ids}
        if not delivery_ids:
            return out
        query = (
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_(list(delivery_ids)))
            .order_by(delivery_attempts.c.id)
        )
        with self._db.read("read delivery attempts") as conn:
            for r in conn.execute(query).mappings():
                item = dict(r)
                item["response"] = json.loads(r["response"]) if r["response"] else None
                out[int(r["delivery_id"])].append(item)
        return out

    def outbound_row(self, outbound_id: int) -> dict[str, Any]:
        """One outbound row as a mapping, its ``route`` decoded (NotFoundError when there is none)."""
        with self._db.read(f"read outbound {outbound_id}") as conn:
            row = dict(self._get(conn, outbound, outbound_id))
        row["route"] = json.loads(row["route"]) if row.get("route") else None
        return row

    def keys_of_outbound(self, outbound_id: int) -> list[tuple[str, str]]:
        """The business keys recorded for an interchange we sent."""
        query = (
            select(search_keys.c.kind, search_keys.c.value)
            .where(search_keys.c.outbound_id == outbound_id)
            .order_by(search_keys.c.id)
        )
        with self._db.read(f"read the keys of outbound {outbound_id}") as conn:
            return [(str(k), str(v)) for k, v in conn.execute(query)]
