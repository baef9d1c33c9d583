"""Units of measure: converting a quantity or a unit price from one unit to another through the declared
conversions (``1 CA = 10 EA``), for one item or for all. Inverses are implied, and one step through a
common unit (CA → EA ← BX) is tried; nothing is guessed beyond that."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from gateway.reconcile.config import UomConversion

__all__ = ["Units"]


class Units:
    """The conversions one partner's documents are compared with."""

    def __init__(self, conversions: Sequence[UomConversion]) -> None:
        self._by_item: dict[str | None, dict[tuple[str, str], Decimal]] = {}
        for c in conversions:
            table = self._by_item.setdefault(c.item, {})
            frm, to = c.from_.upper(), c.to.upper()
            table.setdefault((frm, to), c.factor)
            table.setdefault((to, frm), 1 / c.factor)

    def factor(self, frm: str | None, to: str | None, item_ids: Iterable[str] = ()) -> Decimal | None:
        """How many ``to`` one ``frm`` is (1 when the units are the same or either is unknown); None when no
        conversion is declared."""
        if frm is None or to is None:
            return Decimal(1)
        a, b = frm.upper(), to.upper()
        if a == b:
            return Decimal(1)
        tables = [self._by_item[i] for i in item_ids if i in self._by_item]
        if None in self._by_item:
            tables.append(self._by_item[None])
        for table in tables:
            direct = table.get((a, b))
            if direct is not None:
                return direct
        for table in tables:
            for (x, mid), first in table.items():
                if x == a and (mid, b) in table:
                    return first * table[(mid, b)]
        return None
