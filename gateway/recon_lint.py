"""Phase one for ``reconciliation:`` in ``gateway.yaml`` and the partner profiles: what the model
accepts but cannot be meant (its shape is the model's to check: CFG-004 / PRT-003).

Codes: global settings CFG-060..065, a partner profile's PRT-040..045, same order:

- 060/040 a unit conversion from a unit to itself;
- 061/041 two conversions between the same units (for the same item) with factors that disagree;
- 062/042 an item id kind listed twice in ``item_id_order``;
- 063/043 an allowed charge that is not a SAC02 code (a letter and three digits, e.g. D240);
- 064/044 an ``items:`` entry that overrides nothing;
- 065/045 a lower percent limit of 100 or more (it allows any value down to zero and below).

Chargeable supplies (``chargeable:``, global or a partner's, all CFG- codes):

- CFG-066 ``chargeable: {items: []}``: nothing is billed;
- CFG-067 a chargeable item listed twice;
- CFG-068 chargeable items but no routing rule (global or the partner's) names ``billing_event``: their
  billing events would never be recorded (:func:`check_billing_routes`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from gateway.mapping.marked import MDict, MList, key_mark, mark_of
from gateway.mapping.problems import Problems
from gateway.reconcile.config import ReconciliationConfig, Tolerances

__all__ = ["check_billing_routes", "check_reconciliation"]

_SAC = re.compile(r"^[A-Z]\d{3}$")


def _code(partner: str | None, n: int) -> str:
    return f"PRT-{40 + n:03d}" if partner else f"CFG-{60 + n:03d}"


def check_reconciliation(raw: Any, partner: str | None, problems: Problems) -> None:
    """Check the ``reconciliation:`` mapping ``raw`` (marked) of ``gateway.yaml`` (``partner`` None) or of
    that partner's profile; a mapping the model refuses is left to the model's own report."""
    if not isinstance(raw, MDict):
        return
    try:
        config = ReconciliationConfig.model_validate(raw)
    except ValueError:
        return
    where = f"partner {partner}: " if partner else ""
    seen: dict[tuple[str | None, str, str], Decimal] = {}
    raw_uom = raw.get("uom")
    for i, conv in enumerate(config.uom):
        mark = mark_of(raw_uom[i]) if isinstance(raw_uom, MList) else key_mark(raw, "uom")
        frm, to = conv.from_.upper(), conv.to.upper()
        if frm == to:
            problems.add(_code(partner, 0), f"{where}a conversion from {frm} to itself", mark, f"uom[{i}]")
            continue
        for key, factor in (((conv.item, frm, to), conv.factor), ((conv.item, to, frm), 1 / conv.factor)):
            earlier = seen.setdefault(key, factor)
            if earlier != factor:
                problems.add(
                    _code(partner, 1),
                    f"{where}1 {key[1]} is {earlier.normalize()} {key[2]} in an earlier conversion, "
                    f"{factor.normalize()} here" + (f" (item {conv.item})" if conv.item else ""),
                    mark,
                    f"uom[{i}]",
                )
                break
    order = config.item_id_order or []
    twice = sorted({kind for kind in order if order.count(kind) > 1})
    if twice:
        problems.add(
            _code(partner, 2), f"{where}item_id_order lists {', '.join(twice)} twice", key_mark(raw, "item_id_order"),
            "item_id_order",
        )  # fmt: skip
    for code in config.allowed_charges or []:
        if not _SAC.match(code):
            problems.add(
                _code(partner, 3),
                f"{where}allowed charge {code!r} is not a SAC02 code (a letter and three digits, e.g. D240 freight)",
                key_mark(raw, "allowed_charges"),
                "allowed_charges",
            )
    raw_items = raw.get("items")
    for item, rule in config.items.items():
        if rule.tolerances is None and rule.lot_tracked is None:
            problems.add(
                _code(partner, 4), f"{where}items.{item} overrides nothing (tolerances or lot_tracked)",
                key_mark(raw_items, item), f"items.{item}",
            )  # fmt: skip
    layers = [("tolerances", config.tolerances)] + [
        (f"items.{item}.tolerances", rule.tolerances) for item, rule in config.items.items()
    ]
    for path, tolerances in layers:
        _check_percent(tolerances, path, partner, raw, problems, where)
    if config.chargeable is not None:
        _check_chargeable(config.chargeable.items, raw, problems, where)


def _check_chargeable(items: list[str], raw: MDict, problems: Problems, where: str) -> None:
    mark = key_mark(raw, "chargeable")
    if not items:
        problems.add("CFG-066", f"{where}chargeable lists no item: nothing is billed", mark, "chargeable.items")
    twice = sorted({item for item in items if items.count(item) > 1})
    if twice:
        problems.add(
            "CFG-067", f"{where}chargeable lists {', '.join(twice)} twice", mark, "chargeable.items"
        )  # fmt: skip


def _chargeable(raw: Any) -> bool:
    if not isinstance(raw, MDict):
        return False
    section = raw.get("reconciliation")
    found = section.get("chargeable") if isinstance(section, MDict) else None
    return isinstance(found, MDict) and bool(found.get("items"))


def check_billing_routes(
    raw: Any, partners: Mapping[str, Any] | None, names_billing: Callable[[str | None], bool], problems: Problems
) -> None:
    """CFG-068: chargeable items (in ``raw``, gateway.yaml, or a partner's profile) with no rule naming
    ``billing_event`` for that partner (``names_billing(partner)``; None: the global rules)."""
    layers: list[tuple[str | None, Any]] = [(None, raw), *sorted((partners or {}).items())]
    for pid, doc in layers:
        if _chargeable(doc) and not names_billing(pid):
            where = f"partner {pid}: " if pid else ""
            problems.add(
                "CFG-068",
                f"{where}chargeable items, but no routing rule names doc_type billing_event: their billing "
                "events are never recorded (add a rule `match: {doc_type: billing_event}`)",
                key_mark(doc["reconciliation"], "chargeable"),
                "reconciliation.chargeable",
            )


def _check_percent(
    tolerances: Tolerances | None, path: str, partner: str | None, raw: MDict, problems: Problems, where: str
) -> None:
    if tolerances is None:
        return
    for measure in ("price", "quantity", "amount"):
        limit = getattr(tolerances, measure)
        if limit is not None and limit.lower_percent is not None and limit.lower_percent >= 100:
            problems.add(
                _code(partner, 5),
                f"{where}{path}.{measure}.lower_percent {limit.lower_percent} allows anything down to zero: "
                "leave `lower` and `lower_percent` out to allow no variance below, or give a smaller percent",
                key_mark(raw, path.split(".")[0]),
                f"{path}.{measure}.lower_percent",
            )
