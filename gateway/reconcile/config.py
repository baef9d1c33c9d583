"""Reconciliation settings as data: tolerances, SLAs, unit conversions, item id order, lot-tracked items.

The same model sits under ``reconciliation:`` in ``gateway.yaml`` (the global layer) and in a partner
profile; :func:`layered` puts them together, and an item entry (``items:``) overrides both for the
lines of that item. Each tolerance measure (price, quantity, amount, date) is replaced whole by a lower
layer that names it, so a partner that gives only a percent does not inherit the global absolute limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_ITEM_ORDER",
    "Chargeable",
    "DateLimit",
    "ItemRule",
    "Limit",
    "Policy",
    "ReconciliationConfig",
    "Slas",
    "Tolerances",
    "UomConversion",
    "layered",
]

ItemIdKind = Literal["vendor_part", "gtin", "buyer_item", "ndc", "manufacturer_part", "udi"]
DEFAULT_ITEM_ORDER: tuple[ItemIdKind, ...] = ("vendor_part", "gtin", "buyer_item", "ndc")
"""Item ids tried, in this order, to match a line that does not echo the PO line number."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Model):
    """How far an actual value may sit from the expected one. Above and below are separate; an absolute
    limit and a percent (of the expected value) may both be given, and then both must hold. Nothing given
    on a side: no variance allowed on that side (0 means exactly)."""

    upper: Decimal | None = Field(default=None, ge=0, description="Absolute amount allowed above expected.")
    lower: Decimal | None = Field(default=None, ge=0, description="Absolute amount allowed below expected.")
    upper_percent: Decimal | None = Field(default=None, ge=0, description="Percent of expected allowed above.")
    lower_percent: Decimal | None = Field(default=None, ge=0, description="Percent of expected allowed below.")

    def allows(self, expected: Decimal, actual: Decimal) -> bool:
        """Whether ``actual`` is within the limit of ``expected``."""
        diff = actual - expected
        if diff == 0:
            return True
        absolute, percent = (self.upper, self.upper_percent) if diff > 0 else (self.lower, self.lower_percent)
        if absolute is None and percent is None:
            return False
        size = abs(diff)
        if absolute is not None and size > absolute:
            return False
        return percent is None or size <= abs(expected) * percent / 100


class DateLimit(_Model):
    """Days a date may move from the one asked for: earlier and later, separately."""

    early_days: int | None = Field(default=None, ge=0, description="None: any earlier date is fine.")
    late_days: int = Field(default=0, ge=0)


class Tolerances(_Model):
    """One limit per measure; a measure left out is inherited from the layer above."""

    price: Limit | None = Field(default=None, description="Unit price against the order's.")
    quantity: Limit | None = Field(default=None, description="Acknowledged, shipped, invoiced against ordered.")
    amount: Limit | None = Field(default=None, description="Invoice totals and extended amounts.")
    date: DateLimit | None = Field(default=None, description="Acknowledged dates against requested.")


class Slas(_Model):
    """When each document is due; None (or left out): inherited, 0 turns the check off."""

    ack_hours: int | None = Field(default=None, ge=0, description="An 855 within this many hours of the 850.")
    ship_grace_days: int | None = Field(
        default=None, ge=0, description="An 856 by the expected ship date plus these days (0: no check)."
    )
    invoice_days: int | None = Field(default=None, ge=0, description="An 810 within this many days of shipment.")


class UomConversion(_Model):
    """``1 from = factor to`` (a case of 10: from CA, to EA, factor 10); for one item, or every item."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    factor: Decimal = Field(gt=0)
    item: str | None = Field(default=None, description="An item id (any kind); absent: every item.")


class ItemRule(_Model):
    """Overrides for the lines of one item (named by any of its ids)."""

    tolerances: Tolerances | None = None
    lot_tracked: bool | None = None


class Chargeable(_Model):
    """Supplies billed to the patient or the case (implants, high-value consumables): each ship-notice line
    of one of these items produces a ``billing_event`` (docs/reconciliation.md)."""

    items: list[str] = Field(default_factory=list, description="Item ids (any kind) of chargeable supplies.")


class ReconciliationConfig(_Model):
    """``reconciliation:`` in gateway.yaml or a partner profile."""

    enabled: bool | None = Field(default=None, description="False: this partner's chains are not reconciled.")
    tolerances: Tolerances | None = None
    slas: Slas | None = None
    uom: list[UomConversion] = Field(default_factory=list, description="Unit conversions (added to the layer above).")
    item_id_order: list[ItemIdKind] | None = Field(default=None, description="Item ids tried to match lines.")
    item_xref: list[str] | None = Field(
        default=None,
        description="The partner's `xref:` tables (their item id → ours) tried when no item id matches "
        "directly (default: the table named `items`).",
    )
    lot_tracked: list[str] | None = Field(default=None, description="Item ids that must ship with lot and expiry.")
    allowed_charges: list[str] | None = Field(
        default=None, description="SAC02 charge codes the terms allow (e.g. D240 freight); others are exceptions."
    )
    items: dict[str, ItemRule] = Field(default_factory=dict, description="Per item id overrides.")
    chargeable: Chargeable | None = Field(default=None, description="Supplies that produce billing events.")


DEFAULT_TOLERANCES = Tolerances(
    price=Limit(),
    quantity=Limit(),
    amount=Limit(upper=Decimal("0.02"), lower=Decimal("0.02")),
    date=DateLimit(),
)
"""Built in: prices and quantities exact, amounts within ±0.02 (as GHX), dates as asked."""
DEFAULT_SLAS = Slas(ack_hours=48, ship_grace_days=1, invoice_days=30)


def _over(base: Tolerances, top: Tolerances | None) -> Tolerances:
    if top is None:
        return base
    return Tolerances(
        price=top.price or base.price,
        quantity=top.quantity or base.quantity,
        amount=top.amount or base.amount,
        date=top.date or base.date,
    )


@dataclass(frozen=True)
class Policy:
    """The settings one partner's chains are reconciled with (global and partner layers resolved)."""

    tolerances: Tolerances = DEFAULT_TOLERANCES
    slas: Slas = DEFAULT_SLAS
    uom: tuple[UomConversion, ...] = ()
    item_id_order: tuple[ItemIdKind, ...] = DEFAULT_ITEM_ORDER
    lot_tracked: frozenset[str] = frozenset()
    allowed_charges: frozenset[str] = frozenset()
    items: dict[str, ItemRule] = field(default_factory=dict)
    enabled: bool = True
    chargeable: frozenset[str] = frozenset()
    item_xref: tuple[str, ...] = ("items",)
    xref: Mapping[str, str] = field(default_factory=dict)
    """The partner's item cross-reference (their id → ours), the tables ``item_xref`` names merged: the
    caller loads them (see :meth:`with_xrefs`); the reconciler only reads them."""

    def with_xrefs(self, tables: Mapping[str, Mapping[str, str]]) -> Policy:
        """This policy with the item cross-reference taken from the partner's ``tables`` by name (the
        first table that has an id wins)."""
        merged: dict[str, str] = {}
        for name in reversed(self.item_xref):
            merged.update(tables.get(name, {}))
        return replace(self, xref=merged)

    def rule(self, ids: Iterable[str]) -> ItemRule | None:
        """The item entry naming any of ``ids``."""
        for value in ids:
            found = self.items.get(value)
            if found is not None:
                return found
        return None

    def limits(self, ids: Iterable[str]) -> Tolerances:
        """The tolerances for an item with ``ids``: its entry over the partner's over the global ones."""
        rule = self.rule(ids)
        return _over(self.tolerances, rule.tolerances if rule else None)

    def is_lot_tracked(self, ids: Iterable[str]) -> bool:
        """Whether the item must ship with a lot and an expiry date."""
        values = list(ids)
        rule = self.rule(values)
        if rule is not None and rule.lot_tracked is not None:
            return rule.lot_tracked
        return any(v in self.lot_tracked for v in values)


def layered(*layers: ReconciliationConfig | None) -> Policy:
    """A :class:`Policy` from the built-in defaults, then each layer in turn (global first, then partner)."""
    policy = Policy()
    for layer in layers:
        if layer is None:
            continue
        slas = policy.slas
        if layer.slas is not None:
            slas = Slas(
                ack_hours=layer.slas.ack_hours if layer.slas.ack_hours is not None else slas.ack_hours,
                ship_grace_days=layer.slas.ship_grace_days
                if layer.slas.ship_grace_days is not None
                else slas.ship_grace_days,
                invoice_days=layer.slas.invoice_days if layer.slas.invoice_days is not None else slas.invoice_days,
            )
        policy = Policy(
            tolerances=_over(policy.tolerances, layer.tolerances),
            slas=slas,
            uom=(*layer.uom, *policy.uom),  # the lower layer's conversions are tried first
            item_id_order=tuple(layer.item_id_order) if layer.item_id_order is not None else policy.item_id_order,
            lot_tracked=frozenset(layer.lot_tracked) if layer.lot_tracked is not None else policy.lot_tracked,
            allowed_charges=frozenset(layer.allowed_charges)
            if layer.allowed_charges is not None
            else policy.allowed_charges,
            items={**policy.items, **layer.items},
            enabled=layer.enabled if layer.enabled is not None else policy.enabled,
            chargeable=frozenset(layer.chargeable.items) if layer.chargeable is not None else policy.chargeable,
            item_xref=tuple(layer.item_xref) if layer.item_xref is not None else policy.item_xref,
        )
    return policy
