"""Reading canonical purchase orders from JSON text (pure): what ``gateway send``, ``gateway render`` and
the send folder accept.

The text is one canonical purchase order, a list of them, ``gateway translate --json`` output (its
results' documents that are purchase orders), or JSON Lines of any of these. Every problem is returned,
each with its key path, rather than the first raised.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from gateway.canonical import PurchaseOrder

__all__ = ["parse_orders"]


def parse_orders(text: str, name: str) -> tuple[list[PurchaseOrder], list[str]]:
    """The purchase orders in ``text`` and the problems found (``name: where: message`` each); an empty
    problem list means every order in the text was read."""
    try:
        values: list[Any] = [json.loads(text)]
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            values = [json.loads(line) for line in lines] if len(lines) > 1 else []
        except json.JSONDecodeError:
            values = []
        if not values:
            return [], [f"{name}: Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    candidates: list[tuple[str, Any]] = []
    for value in values:
        candidates.extend(_candidates(value))
    orders: list[PurchaseOrder] = []
    problems: list[str] = []
    for where, doc in candidates:
        try:
            orders.append(PurchaseOrder.model_validate(doc))
        except ValidationError as exc:
            for err in exc.errors():
                path = ".".join(str(p) for p in err["loc"]) or "(document)"
                problems.append(f"{name}: {where}{path}: {err['msg']}")
    if not orders and not problems:
        problems.append(
            f"{name}: no purchase order found (a canonical purchase order or `gateway translate --json` output)"
        )
    return orders, problems


def _candidates(value: Any) -> list[tuple[str, Any]]:
    """(where, document) pairs: translate results' purchase orders, else the value itself."""
    if isinstance(value, list):  # each order located by its place in the list: [1].lines.0.quantity
        return [(f"[{n}].{where}", doc) for n, item in enumerate(value) for where, doc in _candidates(item)]
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        return [
            (f"results[{n}].document.", r["document"])
            for n, r in enumerate(value["results"])
            if isinstance(r, dict) and isinstance(r.get("document"), dict) and _is_order(r)
        ]
    if isinstance(value, dict) and isinstance(value.get("document"), dict) and "po_number" not in value:
        return [("document.", value["document"])] if _is_order(value) else []
    return [("", value)]


def _is_order(result: dict[str, Any]) -> bool:
    """A translate result holding a purchase order (from an 850, a cXML OrderRequest, a CSV order)."""
    return bool(result["document"].get("document_type") == "purchase_order")
