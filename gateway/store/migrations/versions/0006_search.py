"""search_keys and the indexes behind ``gateway messages list`` and ``gateway find``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``search_keys`` holds each document's business keys (PO, invoice and ASN numbers, lots, serials,
SSCCs, bills of lading), upper-cased, and the PO number of each 850 we send; existing documents are
backfilled from their canonical JSON (850s from the PO number their reason names). Indexes on control
numbers (ISA13, GS06, ST02), receipt and creation times, document type and status, and outbound
correlation ids keep the filters one indexed lookup on a big ledger. Self-contained: the key fields are
literals here, as :data:`gateway.store.search.KEY_FIELDS` was when this was written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_FIELDS = {"po_number": "po", "invoice_number": "invoice", "shipment_id": "asn", "lot": "lot",
              "serial": "serial", "sscc": "sscc", "bill_of_lading": "bol"}  # fmt: skip
INDEXES = {
    "files": {"received_at": ["received_at"]},
    "interchanges": {"control_number": ["control_number"]},
    "groups": {"control_number": ["control_number"]},
    "transaction_sets": {"control_number": ["control_number"]},
    "documents": {"status": ["status", "doc_type", "file_id"], "created_at": ["created_at"]},
    "outbound": {
        "created_at": ["created_at"],
        "correlation_id": ["correlation_id"],
        "control_number": ["control_number"],
        "group_control_number": ["group_control_number"],
    },
}
KEY_INDEXES = {"value": ["value", "kind"], "file_id": ["file_id"], "outbound_id": ["outbound_id"]}
_PO = re.compile(r"\bPO (\S+)")
_BATCH = 2000


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _keys(node: Any, found: dict[tuple[str, str], None]) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            kind = KEY_FIELDS.get(name)
            if kind is not None and isinstance(value, str | int) and str(value).strip():
                found.setdefault((kind, str(value).strip().upper()[:256]), None)
            elif name != "provenance" and isinstance(value, dict | list):
                _keys(value, found)
    elif isinstance(node, list):
        for item in node:
            _keys(item, found)


def _backfill(keys: sa.Table) -> None:
    conn = op.get_bind()
    docs = sa.table("documents", sa.column("id"), sa.column("file_id"), sa.column("partner_id"), sa.column("canonical"))
    last = 0
    while True:
        rows = conn.execute(sa.select(docs).where(docs.c.id > last).order_by(docs.c.id).limit(_BATCH)).all()
        if not rows:
            break
        batch = []
        for doc_id, file_id, partner_id, canonical in rows:
            found: dict[tuple[str, str], None] = {}
            try:
                _keys(json.loads(canonical), found)
            except ValueError:
                continue
            batch += [{"file_id": file_id, "document_id": doc_id, "outbound_id": None, "partner_id": partner_id,
                       "kind": k, "value": v} for k, v in found]  # fmt: skip
        if batch:
            conn.execute(sa.insert(keys), batch)
        last = rows[-1][0]
    sent = sa.table("outbound", sa.column("id"), sa.column("partner_id"), sa.column("kind"), sa.column("reason"))
    batch = []
    for out_id, partner_id, _kind, reason in conn.execute(sa.select(sent).where(sent.c.kind == "850")):
        m = _PO.search(reason or "")
        if m:
            batch.append({"file_id": None, "document_id": None, "outbound_id": out_id, "partner_id": partner_id,
                          "kind": "po", "value": m.group(1).upper()[:256]})  # fmt: skip
    if batch:
        conn.execute(sa.insert(keys), batch)


def upgrade() -> None:
    keys = op.create_table(
        "search_keys",
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.Column("file_id", _id_type(), nullable=True),
        sa.Column("document_id", _id_type(), nullable=True),
        sa.Column("outbound_id", _id_type(), nullable=True),
        sa.Column("partner_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_keys")),
        sqlite_autoincrement=True,
    )
    assert keys is not None
    _backfill(keys)
    for name, columns in KEY_INDEXES.items():
        op.create_index(op.f(f"ix_search_keys_{name}"), "search_keys", columns)
    for table, indexes in INDEXES.items():
        for name, columns in indexes.items():
            op.create_index(op.f(f"ix_{table}_{name}"), table, columns)


def downgrade() -> None:
    for table, indexes in INDEXES.items():
        for name in indexes:
            op.drop_index(op.f(f"ix_{table}_{name}"), table_name=table)
    op.drop_table("search_keys")
