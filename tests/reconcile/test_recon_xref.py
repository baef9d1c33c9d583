"""Matching through the partner's item cross-reference: the supplier bills and ships under its part
numbers, our order carries our item numbers, and the profile's `xref:` table says which is which."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from recon_builders import NOW, ack, ack_line, chain, invoice, item, m, notice, q

from gateway.canonical.common import ItemIds
from gateway.canonical.documents import AckBucket, PurchaseOrder, PurchaseOrderLine
from gateway.partners.profile import Profile, XrefSettings
from gateway.reconcile import Kind, ReconciliationConfig, layered, reconcile
from gateway.reconcile.config import Slas
from gateway.reconcile.grid import grid
from gateway.runtime.recon import Reconciler
from gateway.workspace import read_xrefs

NO_SLA = ReconciliationConfig(slas=Slas(ack_hours=0, ship_grace_days=0, invoice_days=0))
XREF = {"items": {"VP-GLV-M": "MH-100234", "VP-SYR-10": "MH-100777"}}


def our_order() -> PurchaseOrder:
    """Two lines carrying only our item numbers (buyer item), no line numbers echoed back below."""
    return PurchaseOrder(
        po_number="PO1",
        order_date=date(2026, 11, 2),
        requested_delivery=date(2026, 11, 10),
        lines=[
            PurchaseOrderLine(
                line_number="1", quantity=q(40), unit_price=m("11.95"), item=ItemIds(buyer_item="MH-100234")
            ),
            PurchaseOrderLine(
                line_number="2", quantity=q(4, "CA"), unit_price=m("118.00"), item=ItemIds(buyer_item="MH-100777")
            ),
        ],
    )


def their_documents():  # type: ignore[no-untyped-def]
    """855, 856, 810 with the supplier's part numbers and no PO line numbers; the gloves invoiced high."""
    a = ack(
        ack_line(None, 40, "BX", "11.95", "VP-GLV-M", (AckBucket.ACCEPTED, 40, date(2026, 11, 5))),
        ack_line(None, 4, "CA", "118.00", "VP-SYR-10", (AckBucket.ACCEPTED, 4, date(2026, 11, 5))),
    )
    s = notice("SH1", ("PO1", [item(None, 40, "BX", "VP-GLV-M"), item(None, 4, "CA", "VP-SYR-10")]))
    i = invoice("INV1", (None, 40, "BX", "12.40", "VP-GLV-M"), (None, 4, "CA", "118.00", "VP-SYR-10"))
    return a, s, i


def test_without_the_xref_their_part_numbers_are_not_on_the_order() -> None:
    a, s, i = their_documents()
    found = reconcile(chain(our_order(), [a], [s], [i]), layered(NO_SLA), NOW)
    kinds = sorted(f.kind.value for f in found)
    assert kinds == sorted(["ack_not_ordered"] * 2 + ["ship_not_ordered"] * 2 + ["invoice_not_ordered"] * 2)


def test_the_xref_matches_their_lines_to_our_order_lines() -> None:
    a, s, i = their_documents()
    policy = layered(NO_SLA).with_xrefs(XREF)
    found = reconcile(chain(our_order(), [a], [s], [i]), policy, NOW)
    assert [(f.kind, f.line) for f in found] == [(Kind.INVOICE_PRICE, "1")]
    assert found[0].reason == "invoiced 12.40 a box, ordered at 11.95: 0.45 over on 40 boxes = 18.00"


def test_the_grid_places_their_lines_through_the_xref() -> None:
    a, s, i = their_documents()
    policy = layered(NO_SLA).with_xrefs(XREF)
    rows = grid(chain(our_order(), [a], [s], [i]), policy, NOW)
    assert [(r.line, r.acknowledged, r.shipped, r.invoiced) for r in rows] == [
        ("1", 40, 40, 40),
        ("2", 4, 4, 4),
    ]


def test_the_xref_also_reads_back_when_the_order_carries_their_number() -> None:
    """An inbound order (or one keyed by their part) and their documents under our number."""
    po = our_order().model_copy(
        update={"lines": [our_order().lines[0].model_copy(update={"item": ItemIds(vendor_part="VP-GLV-M")})]}
    )
    i = invoice("INV1", (None, 40, "BX", "11.95", "MH-100234"))
    i.lines[0].item = ItemIds(buyer_item="MH-100234")
    policy = layered(NO_SLA).with_xrefs(XREF)
    assert reconcile(chain(po, [], [], [i]), policy, NOW) == []
    assert [f.kind for f in reconcile(chain(po, [], [], [i]), layered(NO_SLA), NOW)] == [Kind.INVOICE_NOT_ORDERED]


def test_only_the_tables_item_xref_names_are_used() -> None:
    a, s, i = their_documents()
    tables = {"cost_centers": XREF["items"]}
    assert reconcile(chain(our_order(), [a], [s], [i]), layered(NO_SLA).with_xrefs(tables), NOW) != []
    named = layered(NO_SLA, ReconciliationConfig(item_xref=["cost_centers"])).with_xrefs(tables)
    assert [f.kind for f in reconcile(chain(our_order(), [a], [s], [i]), named, NOW)] == [Kind.INVOICE_PRICE]


def test_a_direct_item_match_wins_over_the_xref() -> None:
    """An id found on the order as it is never goes through the table (which could point elsewhere)."""
    po = our_order()
    po.lines[1].item = ItemIds(buyer_item="MH-100777", vendor_part="VP-GLV-M")
    i = invoice("INV1", (None, 4, "CA", "118.00", "VP-GLV-M"))
    policy = layered(NO_SLA).with_xrefs(XREF)
    assert reconcile(chain(po, [], [], [i]), policy, NOW) == []


def test_the_profile_xref_file_reaches_the_reconciler(tmp_path: Path) -> None:
    """As `gateway recon` loads it: the profile's `xref.items` CSV file, relative to partners/."""
    (tmp_path / "medsupply").mkdir()
    (tmp_path / "medsupply" / "items.csv").write_text("their_item,our_item\nVP-GLV-M,MH-100234\n", "utf-8")
    profile = Profile(
        id="medsupply",
        name="Med Supply",
        xref={"items": XrefSettings(file="medsupply/items.csv", key="their_item", value="our_item")},
    )
    tables = read_xrefs(profile, tmp_path)
    assert tables == {"items": {"VP-GLV-M": "MH-100234"}}
    reconciler = Reconciler(None, NO_SLA, {"medsupply": profile}.get, xrefs=lambda _p: tables)  # type: ignore[arg-type]
    policy, _units = reconciler.policy("medsupply")
    assert policy.xref == {"VP-GLV-M": "MH-100234"}
    i = invoice("INV1", (None, 40, "BX", "12.40", "VP-GLV-M"))
    assert [f.kind for f in reconcile(chain(our_order(), [], [], [i]), policy, NOW)] == [Kind.INVOICE_PRICE]
