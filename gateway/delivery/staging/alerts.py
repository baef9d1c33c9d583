"""Reconciliation's outputs into the staging tables: exception alerts (``recon_exception``) and billing
events (``billing_event``), the JSON bodies docs/reconciliation.md shows, one row each.

- ``{prefix}recon_exception``: keyed by (partner, exception id). The first alert inserts the row; a
  later alert of the same exception (it was reopened) replaces the row's values and counts ``version``;
  the same delivery again (same idempotency key) changes nothing.
- ``{prefix}billing_event``: keyed by (partner, billing key), written once: a redelivery, or the same
  line billed again, changes nothing.

:func:`plan_alert` is pure (the row from the JSON, checked against the columns before any I/O);
:func:`load_alert` writes it in the caller's transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Table, select, update

from gateway.delivery.staging.load import Tables, problem_in

__all__ = ["ALERT_TYPES", "AlertRow", "NotAnAlert", "load_alert", "plan_alert"]

ALERT_TYPES = ("recon_exception", "billing_event")
"""The outbound kinds these tables take besides canonical documents."""

_ITEM_IDS = ("vendor_part", "buyer_item", "manufacturer_part", "gtin", "ndc", "udi")


class NotAnAlert(ValueError):
    """The payload is not an alert body these tables hold (the delivery is rejected)."""


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert laid out for its table: ``key`` names it (exception id, billing key)."""

    doc_type: str
    key: str
    values: dict[str, Any]


def _decimal(body: dict[str, Any], name: str) -> Decimal | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise NotAnAlert(f"{name}: {value!r} is not a number") from exc


def _required(body: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if body.get(n) in (None, "")]
    if missing:
        raise NotAnAlert(f"the alert has no {', '.join(missing)}")


def plan_alert(doc_type: str, data: bytes, tables: Tables) -> AlertRow:
    """The row of one alert body (:class:`NotAnAlert` when it is not one, or a value does not fit)."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAnAlert(f"a {doc_type} that is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise NotAnAlert(f"a {doc_type} body is a JSON object")
    if doc_type == "recon_exception":
        _required(body, "exception_id", "partner_id", "po_number", "kind", "reason", "opened_at")
        try:
            opened = datetime.fromisoformat(str(body["opened_at"])).astimezone(UTC).replace(tzinfo=None)
        except ValueError as exc:
            raise NotAnAlert(f"opened_at: {body['opened_at']!r} is not a timestamp") from exc
        values = {
            "partner_id": body["partner_id"],
            "exception_id": int(body["exception_id"]),
            "kind": body["kind"],
            "severity": body.get("severity") or "",
            "status": body.get("status") or "open",
            "po_number": body["po_number"],
            "po_line": body.get("line"),
            "expected": body.get("expected"),
            "actual": body.get("actual"),
            "amount": _decimal(body, "amount"),
            "reason": body["reason"],
            "documents": json.dumps(body.get("documents") or []),
            "opened_at": opened,
        }
        row = AlertRow(doc_type, str(values["exception_id"]), values)
    elif doc_type == "billing_event":
        _required(body, "key", "partner_id", "po_number", "ship_notice", "quantity")
        item = body.get("item") or {}
        values = {
            "partner_id": body["partner_id"],
            "billing_key": body["key"],
            "po_number": body["po_number"],
            "po_line": body.get("po_line"),
            "ship_notice": body["ship_notice"],
            "ship_notice_document": body.get("ship_notice_document"),
            **{name: item.get(name) if isinstance(item, dict) else None for name in _ITEM_IDS},
            "lot": body.get("lot"),
            "serial": body.get("serial"),
            "quantity": _decimal(body, "quantity"),
            "uom": body.get("uom"),
            "contract_price": _decimal(body, "contract_price"),
            "currency": body.get("currency"),
            "amount": _decimal(body, "amount"),
        }
        if values["udi"] is None:
            values["udi"] = body.get("udi")
        row = AlertRow(doc_type, str(body["key"]), values)
    else:
        raise NotAnAlert(f"the staging tables take {', '.join(ALERT_TYPES)} alerts; not {doc_type!r}")
    why = problem_in(tables, _table(tables, doc_type).name, row.values)
    if why is not None:
        raise NotAnAlert(why)
    return row


def _table(tables: Tables, doc_type: str) -> Table:
    return tables.metadata.tables[f"{tables.prefix}{doc_type}"]


def load_alert(
    conn: Connection, tables: Tables, row: AlertRow, idempotency_key: str, delivery_id: int | None, now: datetime
) -> dict[str, Any]:
    """Write ``row`` in ``conn``'s transaction; returns what was done (for the delivery's response)."""
    table = _table(tables, row.doc_type)
    key_column = "exception_id" if row.doc_type == "recon_exception" else "billing_key"
    where = (table.c.partner_id == row.values["partner_id"]) & (table.c[key_column] == row.values[key_column])
    found = conn.execute(select(table).where(where).with_for_update()).mappings().first()
    stamp = {"idempotency_key": idempotency_key, "ledger_delivery_id": delivery_id}
    if found is None:
        extra = {"version": 1, "updated_at": now} if row.doc_type == "recon_exception" else {}
        inserted = conn.execute(table.insert().values(**row.values, **stamp, **extra, created_at=now))
        new_id = inserted.inserted_primary_key[0] if inserted.inserted_primary_key else None
        return {"action": "inserted", "table": table.name, "key": row.key, "id": new_id}
    if row.doc_type == "billing_event" or found["idempotency_key"] == idempotency_key:
        return {"action": "unchanged", "table": table.name, "key": row.key, "id": found["id"]}
    version = int(found["version"]) + 1
    conn.execute(update(table).where(table.c.id == found["id"]).values(**row.values, **stamp, version=version,
                                                                       updated_at=now))  # fmt: skip
    return {"action": "updated", "table": table.name, "key": row.key, "id": found["id"], "version": version}
