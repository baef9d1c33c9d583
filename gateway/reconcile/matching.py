"""Finding the PO line a later document's line is about: by PO line number, else by item ids in the
configured order (vendor part, GTIN, buyer item, NDC by default), else through the partner's item
cross-reference (their id → ours, as ``xref:`` tables in the profile hold them), passed in as data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from gateway.canonical.common import ItemIds
from gateway.canonical.documents import PurchaseOrder, PurchaseOrderLine

__all__ = ["LineIndex", "item_values", "label"]


def item_values(item: ItemIds) -> list[str]:
    """Every id the item carries (for looking up item rules and unit conversions)."""
    found = [item.vendor_part, item.buyer_item, item.gtin, item.ndc, item.manufacturer_part, item.udi]
    return [v for v in found if v] + [o.value for o in item.other]


def label(item: ItemIds) -> str:
    """The item as a person names it: the first id it has."""
    values = item_values(item)
    return values[0] if values else "(no item id)"


class LineIndex:
    """An order's lines by line number and by each kind of item id.

    ``xref`` maps the partner's item ids to ours (``THEIRS: OURS``): a line whose ids match no order
    line directly is tried again with each id translated (theirs → ours), then with each id taken as
    ours and translated back (ours → theirs), so either side may carry the partner's numbers.
    """

    def __init__(
        self, order: PurchaseOrder, order_of_ids: Sequence[str], xref: Mapping[str, str] | None = None
    ) -> None:
        self.lines = order.lines
        self.xref = xref or {}
        self.back: dict[str, list[str]] = {}
        for theirs, ours in self.xref.items():
            self.back.setdefault(ours, []).append(theirs)
        self.by_number = {line.line_number: line for line in order.lines if line.line_number}
        self.order_of_ids = tuple(order_of_ids)
        self.by_id: dict[str, dict[str, PurchaseOrderLine]] = {}
        for kind in self.order_of_ids:
            table: dict[str, PurchaseOrderLine] = {}
            for line in order.lines:
                value = getattr(line.item, kind)
                if value:
                    table.setdefault(value, line)
            self.by_id[kind] = table

    def find(self, line_number: str | None, item: ItemIds) -> PurchaseOrderLine | None:
        """The order line ``line_number`` (when the order has it), else the first whose item id matches."""
        if line_number:
            found = self.by_number.get(line_number)
            if found is not None:
                return found
        for kind in self.order_of_ids:
            value = getattr(item, kind)
            if value:
                found = self.by_id[kind].get(value)
                if found is not None:
                    return found
        return self._through_xref(item) if self.xref else None

    def _through_xref(self, item: ItemIds) -> PurchaseOrderLine | None:
        """The first order line carrying, under any kind in the configured order, one of ``item``'s ids
        translated through the cross-reference (their id to ours first, then ours to theirs)."""
        values = [getattr(item, kind) for kind in self.order_of_ids]
        forward = [self.xref[v] for v in values if v and v in self.xref]
        backward = [theirs for v in values if v for theirs in self.back.get(v, ())]
        for alias in forward + backward:
            for kind in self.order_of_ids:
                found = self.by_id[kind].get(alias)
                if found is not None:
                    return found
        return None

    @staticmethod
    def key(line: PurchaseOrderLine, position: Iterable[PurchaseOrderLine]) -> str:
        """The line's key in exceptions: its number, else its position (1-based) on the order."""
        if line.line_number:
            return line.line_number
        return f"#{[id(x) for x in position].index(id(line)) + 1}"
