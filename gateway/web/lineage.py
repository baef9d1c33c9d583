"""One document's lineage, as the dashboard shows it: file → interchange → group → set → document →
routing decision → every delivery attempt → the acknowledgments sent for its file → reconciliation.

Read with the store calls ``gateway messages show`` makes (the file's tree, its deliveries and their
attempts, the acknowledgments sent back, the raw segments read from the archive by
:func:`gateway.cli.messages_cli.raw_sets`), then shaped for the template: each raw segment split into
its elements, the ones an error locates marked, the error in words beside them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.cli.messages_cli import raw_sets
from gateway.errors import GatewayError
from gateway.store import Archive
from gateway.store.recon import po_numbers
from gateway.store.rows import DocumentRow, FileTree, GroupNode, InterchangeNode, SetNode
from gateway.store.search import keys_of
from gateway.store.store import Store
from gateway.x12.extract import set_segments

__all__ = ["FileLineage", "Lineage", "SegmentLine", "document_lineage", "file_lineage"]

SEGMENTS_SHOWN = 400
"""Raw segments shown for a set (the count says when there were more)."""


@dataclass
class SegmentLine:
    """One raw segment: its index in the interchange, its elements, and the errors located on it."""

    index: int
    elements: list[str]
    separator: str
    marked: dict[int, list[str]] = field(default_factory=dict)  # element position (0: the id) → errors there
    errors: list[str] = field(default_factory=list)


@dataclass
class Lineage:
    """Everything the lineage page shows about one document."""

    document: DocumentRow
    tree: FileTree
    interchange: InterchangeNode | None
    group: GroupNode | None
    set: SetNode | None
    canonical: str
    keys: list[tuple[str, str]]
    errors: list[dict[str, Any]]
    segments: list[SegmentLine]
    segments_total: int
    segments_note: str | None
    deliveries: list[dict[str, Any]]
    sent: list[dict[str, Any]]
    exceptions: list[Any]
    po_numbers: list[str]
    events: list[Any]


def _locate(tree: FileTree, doc: DocumentRow) -> tuple[InterchangeNode | None, GroupNode | None, SetNode | None]:
    for ic in tree.interchanges:
        for g in ic.groups:
            for s in g.sets:
                if s.row.id == doc.transaction_set_id:
                    return ic, g, s
    return None, None, None


def _errors(doc: DocumentRow, node: SetNode | None, canonical: Any) -> list[dict[str, Any]]:
    """The set's errors and accepted findings, the document's own errors (a failed one keeps them as its
    canonical JSON) and its business warnings, each once."""
    found: list[dict[str, Any]] = list(node.row.errors) if node is not None else []
    if isinstance(canonical, dict) and isinstance(canonical.get("errors"), list):
        found += [e for e in canonical["errors"] if isinstance(e, dict)]
    found += list(doc.warnings)
    unique: dict[str, dict[str, Any]] = {}
    for e in found:
        unique.setdefault(json.dumps(e, sort_keys=True, default=str), e)
    return list(unique.values())


def _segment_lines(raw: dict[str, Any] | None, errors: list[dict[str, Any]]) -> list[SegmentLine]:
    if not raw or not raw.get("found"):
        return []
    lines: list[SegmentLine] = []
    by_st_index: dict[int, SegmentLine] = {}
    by_ic_index: dict[int, SegmentLine] = {}
    for position, (index, text) in enumerate(raw["segments"], start=1):
        name = ""
        for ch in text:
            if not ch.isalnum():
                break
            name += ch
        separator = text[len(name)] if len(text) > len(name) else "*"
        segment = SegmentLine(int(index), text.split(separator), separator)
        lines.append(segment)
        by_st_index[position] = segment
        by_ic_index[int(index)] = segment
    for e in errors:
        where = e.get("location") or {}
        line: SegmentLine | None = None
        if isinstance(where.get("segment_index"), int):
            line = by_st_index.get(where["segment_index"])
        if line is None and isinstance(where.get("interchange_index"), int):
            line = by_ic_index.get(where["interchange_index"])
        if line is None:
            continue
        words = f"{e.get('code', '')} {e.get('message', '')}".strip()
        element = where.get("element")
        position = element if isinstance(element, int) and 0 < element < 100 else 0
        if position >= len(line.elements):  # a missing element: shown empty where it belongs
            line.elements += [""] * (position + 1 - len(line.elements))
        line.marked.setdefault(position, []).append(words)
        line.errors.append(words)
    return lines


def _one_set(
    archive: Archive, tree: FileTree, ic: InterchangeNode, group: GroupNode, node: SetNode
) -> tuple[dict[str, Any] | None, str | None]:
    """The raw segments of one set (one pass over the archived file, not one per set of the file), or why
    they cannot be shown."""
    try:
        data = archive.read(tree.file.sha256)
    except (OSError, GatewayError) as exc:
        return None, f"archived bytes of file {tree.file.id} cannot be read: {exc}"
    text = set_segments(data, ic.row.position, group.row.position, node.row.position, node.row.control_number,
                        SEGMENTS_SHOWN)  # fmt: skip
    if not text.found:
        return None, "the set was not found in the archived file where the ledger places it"
    return {"segments": text.segments, "total": text.total, "found": True}, None


def document_lineage(store: Store, archive: Archive, document_id: int) -> Lineage:
    """Document ``document_id``'s lineage; NotFoundError when there is no such document."""
    doc = store.get_document(document_id)
    tree = store.file_tree(doc.file_id)
    ic, group, node = _locate(tree, doc)
    try:
        canonical = json.loads(doc.canonical)
    except ValueError:
        canonical = None
    errors = _errors(doc, node, canonical)
    mine, note = None, None
    if ic is not None and group is not None and node is not None and tree.file.format == "x12":
        mine, note = _one_set(archive, tree, ic, group, node)
    delivered = sorted(store.list_deliveries(document_id=document_id, limit=1000), key=lambda d: d.id)
    attempts = store.attempts_of([d.id for d in delivered])
    numbers = sorted(po_numbers(doc.doc_type, canonical)) if isinstance(canonical, dict) and doc.partner_id else []
    exceptions = [
        e for po in numbers for e in store.list_exceptions(partner_id=doc.partner_id, po_number=po, limit=200)
    ]
    return Lineage(
        document=doc,
        tree=tree,
        interchange=ic,
        group=group,
        set=node,
        canonical=json.dumps(canonical, indent=2, ensure_ascii=False, default=str),
        keys=keys_of(canonical) if isinstance(canonical, dict) else [],
        errors=errors,
        segments=_segment_lines(mine, errors),
        segments_total=int(mine["total"]) if mine else 0,
        segments_note=note,
        deliveries=[{"row": d, "tries": attempts.get(d.id, [])} for d in delivered],
        sent=_sent(store, doc.file_id),
        exceptions=exceptions,
        po_numbers=numbers,
        events=store.events_for_file(doc.file_id),
    )


@dataclass
class FileLineage:
    """Everything the file page shows: the tree, each set's raw segments with its errors marked, the
    documents, the acknowledgments sent back and the events."""

    tree: FileTree
    segments: dict[int, list[SegmentLine]]  # set id → its segments
    totals: dict[int, int]
    note: str | None
    sent: list[dict[str, Any]]
    events: list[Any]


def file_lineage(store: Store, archive: Archive, file_id: int) -> FileLineage:
    """File ``file_id``'s lineage (every set, rejected ones included: they have no document); NotFoundError
    when there is no such file."""
    tree = store.file_tree(file_id)
    raw = raw_sets(archive, tree, SEGMENTS_SHOWN) if tree.file.format == "x12" else {}
    segments: dict[int, list[SegmentLine]] = {}
    totals: dict[int, int] = {}
    for ic in tree.interchanges:
        for g in ic.groups:
            for s in g.sets:
                mine = raw.get(str(s.row.id))
                segments[s.row.id] = _segment_lines(mine, list(s.row.errors))
                totals[s.row.id] = int(mine["total"]) if mine else 0
    return FileLineage(tree, segments, totals, raw.get("unavailable"), _sent(store, file_id),
                       store.events_for_file(file_id))  # fmt: skip


def _sent(store: Store, file_id: int) -> list[dict[str, Any]]:
    """The acknowledgments sent back for file ``file_id``, each with its deliveries and their attempts."""
    rows = store.list_outbound(file_id=file_id, limit=100)
    delivered = [d for d in store.list_deliveries(file_id=file_id, limit=1000) if d.outbound_id]
    attempts = store.attempts_of([d.id for d in delivered])
    return [
        {"row": o, "deliveries": [{"row": d, "tries": attempts.get(d.id, [])} for d in delivered
                                  if d.outbound_id == o.id]}
        for o in rows
    ]  # fmt: skip
