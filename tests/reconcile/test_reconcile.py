"""The pure reconciliation: each exception kind from a small chain, with the reason a clerk reads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from recon_builders import NOW, T0, D, ack, ack_line, chain, invoice, item, m, notice, order

from gateway.canonical.documents import AckBucket, AckType, Charge, PurchaseOrderAcknowledgment, Purpose
from gateway.reconcile import (
    KIND_SEVERITY,
    InvoiceSeen,
    Kind,
    Limit,
    ReconciliationConfig,
    Tolerances,
    UomConversion,
    layered,
    reconcile,
)
from gateway.reconcile.config import ItemRule, Slas

POLICY = layered()
NO_SLA = layered(ReconciliationConfig(slas=Slas(ack_hours=0, ship_grace_days=0, invoice_days=0)))
GLOVES = ("1", 40, "BX", "11.95", "GLV-M")
SYRINGES = ("2", 4, "CA", "118.00", "SYR-10")


def clean_chain(**kw):  # type: ignore[no-untyped-def]
    po = order(GLOVES, SYRINGES)
    a = ack(
        ack_line("1", 40, "BX", "11.95", "GLV-M", (AckBucket.ACCEPTED, 40, date(2026, 11, 5))),
        ack_line("2", 4, "CA", "118.00", "SYR-10", (AckBucket.ACCEPTED, 4, date(2026, 11, 5))),
    )
    s = notice("SH1", ("PO1", [item("1", 40, "BX", "GLV-M"), item("2", 4, "CA", "SYR-10")]))
    i = invoice("INV1", ("1", 40, "BX", "11.95", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"), total="950.00")
    return po, a, s, i


def kinds(found):  # type: ignore[no-untyped-def]
    return sorted(f.kind.value for f in found)


def only(found, kind):  # type: ignore[no-untyped-def]
    hits = [f for f in found if f.kind is kind]
    assert len(hits) == 1, [(f.kind, f.reason) for f in found]
    return hits[0]


def test_clean_chain_has_no_exception() -> None:
    po, a, s, i = clean_chain()
    assert reconcile(chain(po, [a], [s], [i]), POLICY, NOW) == []


def test_every_kind_has_a_severity() -> None:
    assert set(KIND_SEVERITY) == set(Kind)


def test_invoice_price_over_tolerance_in_words() -> None:
    po, a, s, _ = clean_chain()
    i = invoice("INV1", ("1", 40, "BX", "12.40", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"))
    found = reconcile(chain(po, [a], [s], [i]), POLICY, NOW)
    hit = only(found, Kind.INVOICE_PRICE)
    assert hit.reason == "invoiced 12.40 a box, ordered at 11.95: 0.45 over on 40 boxes = 18.00"
    assert hit.amount == Decimal("18.00") and hit.line == "1" and hit.severity.value == "high"
    assert hit.documents == ("document:4", "document:1")
    assert kinds(found) == ["invoice_price"]


def test_price_tolerance_layers_global_partner_item() -> None:
    po, a, s, _ = clean_chain()
    i = invoice("INV1", ("1", 40, "BX", "12.00", "GLV-M"), ("2", 4, "CA", "118.50", "SYR-10"))
    c = chain(po, [a], [s], [i])
    partner = ReconciliationConfig(tolerances=Tolerances(price=Limit(upper=D("0.10"))))
    assert kinds(reconcile(c, layered(None, partner), NOW)) == ["invoice_price"]  # 0.50 on syringes is over
    item_rule = ReconciliationConfig(
        items={"SYR-10": ItemRule(tolerances=Tolerances(price=Limit(upper_percent=D("1"))))}
    )
    assert reconcile(c, layered(partner, item_rule), NOW) == []  # 0.50 of 118 is under 1 %
    below = ReconciliationConfig(tolerances=Tolerances(price=Limit(lower=D("1"))))  # upper side: none
    assert len(reconcile(c, layered(below), NOW)) == 2


def test_percent_and_absolute_must_both_hold() -> None:
    limit = Limit(upper=D("1.00"), upper_percent=D("5"))
    assert limit.allows(D("10"), D("10.40"))
    assert not limit.allows(D("10"), D("10.60"))  # 6 %
    assert not limit.allows(D("100"), D("101.50"))  # 1.50 absolute
    assert not Limit().allows(D("1"), D("1.001"))  # 0: no variance


def test_credit_memo_resolves_price_exception() -> None:
    po, a, s, _ = clean_chain()
    i = invoice("INV1", ("1", 40, "BX", "12.40", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"))
    partial = invoice("CM1", ("1", 1, "BX", "10.00", "GLV-M"), credit=True)
    hit = only(reconcile(chain(po, [a], [s], [i, partial]), POLICY, NOW), Kind.INVOICE_PRICE)
    assert hit.reason.endswith("; credited 10.00, 8.00 still at stake") and hit.amount == Decimal("8.00")
    full = invoice("CM1", ("1", 40, "BX", "0.45", "GLV-M"), credit=True)
    assert reconcile(chain(po, [a], [s], [i, full]), POLICY, NOW) == []


def test_revised_invoice_replaces_the_first() -> None:
    po, a, s, _ = clean_chain()
    bad = invoice("INV1", ("1", 40, "BX", "12.40", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"))
    good = invoice(
        "INV1", ("1", 40, "BX", "11.95", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"), purpose=Purpose.REPLACE
    )
    assert reconcile(chain(po, [a], [s], [bad, good]), POLICY, NOW) == []


def test_duplicate_invoice_number_per_supplier() -> None:
    po, a, s, i = clean_chain()
    again = i.model_copy()
    found = reconcile(chain(po, [a], [s], [i, again]), POLICY, NOW)
    hit = only(found, Kind.INVOICE_DUPLICATE)
    assert hit.documents == ("document:5", "document:4")
    assert hit.reason == (
        "invoice number INV1 was already received from this supplier; this second invoice (950.00) must not be paid"
    )
    assert kinds(found) == ["invoice_duplicate"]  # the quantity is not counted twice
    other_po = [InvoiceSeen("document:99", "INV1", T0, Purpose.ORIGINAL, "PO7")]
    hit = only(reconcile(chain(po, [a], [s], [i], seen={"INV1": other_po}), POLICY, NOW), Kind.INVOICE_DUPLICATE)
    assert "(on PO PO7)" in hit.reason and hit.documents == ("document:4", "document:99")


def test_disallowed_charge_and_total() -> None:
    po, a, s, _ = clean_chain()
    freight = Charge(kind="charge", code="D240", amount=m("15.00"))
    i = invoice(
        "INV1", ("1", 40, "BX", "11.95", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"), total="966.00",
        charges=[freight],
    )  # fmt: skip
    found = reconcile(chain(po, [a], [s], [i]), POLICY, NOW)
    charge = only(found, Kind.INVOICE_CHARGE)
    assert charge.reason == "invoice INV1 charges freight 15.00, which the partner's terms do not allow"
    total = only(found, Kind.INVOICE_TOTAL)
    assert total.reason == (
        "invoice INV1 states a total of 966.00, its lines, charges and taxes come to 965.00: 1.00 over"
    )
    allowed = layered(ReconciliationConfig(allowed_charges=["D240"]))
    assert kinds(reconcile(chain(po, [a], [s], [i]), allowed, NOW)) == ["invoice_total"]
    within = invoice("INV1", ("1", 40, "BX", "11.95", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"), total="950.02")
    assert reconcile(chain(po, [a], [s], [within]), POLICY, NOW) == []  # ±0.02 by default


def test_invoiced_over_shipped_and_over_ordered() -> None:
    po, a, _, _ = clean_chain()
    s = notice("SH1", ("PO1", [item("1", 30, "BX", "GLV-M"), item("2", 4, "CA", "SYR-10")]))
    i = invoice("INV1", ("1", 40, "BX", "11.95", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"))
    hit = only(reconcile(chain(po, [a], [s], [i]), POLICY, NOW), Kind.INVOICE_OVER_SHIPPED)
    assert hit.reason == "invoiced 40 boxes, shipped 30 boxes: 10 boxes more (119.50)"
    over = invoice("INV1", ("1", 45, "BX", "11.95", "GLV-M"))
    found = reconcile(chain(po, [a], [], [over]), layered(ReconciliationConfig(slas=Slas(invoice_days=0))), NOW)
    assert only(found, Kind.INVOICE_OVER_ORDERED).reason == "invoiced 45 boxes, ordered 40 boxes: 5 boxes more (59.75)"


def test_invoice_for_unknown_order_and_line_not_ordered() -> None:
    _, _, _, i = clean_chain()
    hit = only(reconcile(chain(None, invoices=[i]), POLICY, NOW), Kind.INVOICE_UNKNOWN_ORDER)
    assert hit.reason == "invoice INV1 (950.00) bills PO PO1, which was never sent or received"
    po, a, s, _ = clean_chain()
    extra = invoice(
        "INV1", ("1", 40, "BX", "11.95", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"), (None, 2, "EA", "5", "TAPE-1")
    )
    hit = only(reconcile(chain(po, [a], [s], [extra]), POLICY, NOW), Kind.INVOICE_NOT_ORDERED)
    assert hit.reason == "invoice INV1 bills 2 each of TAPE-1 (10.00), which is not on the order"


def test_ack_backorder_reject_price_quantity() -> None:
    po = order(GLOVES, SYRINGES, ("3", 2, "EA", "1450.00", "HIP-52"))
    a = ack(
        ack_line("1", 40, "BX", "12.40", "GLV-M", (AckBucket.ACCEPTED, 40, None)),
        ack_line(
            "2",
            4,
            "CA",
            "118.00",
            "SYR-10",
            (AckBucket.ACCEPTED, 2, None),
            (AckBucket.BACKORDERED, 2, date(2026, 12, 3)),
        ),
        ack_line("3", 2, "EA", "1450.00", "HIP-52", (AckBucket.REJECTED, 2, None)),
    )
    found = reconcile(chain(po, [a]), layered(ReconciliationConfig(slas=Slas(ship_grace_days=0))), NOW)
    assert kinds(found) == ["ack_backorder", "ack_price", "ack_rejected"]
    assert only(found, Kind.ACK_BACKORDER).reason == "2 of 4 cases backordered until 2026-12-03 (236.00)"
    assert only(found, Kind.ACK_REJECTED).reason == "2 of 2 each rejected (2900.00)"
    assert (
        only(found, Kind.ACK_PRICE).reason
        == "acknowledged 12.40 a box, ordered at 11.95: 0.45 over on 40 boxes = 18.00"
    )
    short = ack(ack_line("1", 30, "BX", "11.95", "GLV-M", (AckBucket.ACCEPTED_WITH_CHANGE, 30, None)))
    hit = only(reconcile(chain(order(GLOVES), [short]), POLICY, NOW), Kind.ACK_QUANTITY)
    assert hit.reason == "acknowledged 30 boxes, ordered 40 boxes"


def test_latest_ack_supersedes() -> None:
    po = order(GLOVES)
    first = ack(ack_line("1", 40, "BX", "12.40", "GLV-M", (AckBucket.ACCEPTED, 40, None)), day=3)
    second = ack(ack_line("1", 40, "BX", "11.95", "GLV-M", (AckBucket.ACCEPTED, 40, None)), day=4)
    assert reconcile(chain(po, [first, second]), NO_SLA, NOW) == []


def test_ack_substitution_unit_date_not_ordered_and_whole_rejection() -> None:
    po = order(GLOVES, requested=date(2026, 11, 10))
    sub = ack(
        ack_line("1", 40, "BX", "11.95", "GLV-M", (AckBucket.SUBSTITUTED, 40, None)),
        ack_line("9", 1, "EA", "3", "GOWN-L", (AckBucket.ACCEPTED, 1, None)),
    )
    sub.lines[0].statuses[0].substitute_item = sub.lines[1].item.model_copy(update={"vendor_part": "GLV-L"})
    found = reconcile(chain(po, [sub]), POLICY, NOW)
    assert only(found, Kind.ACK_SUBSTITUTION).reason == "item GLV-M substituted by GLV-L"
    assert only(found, Kind.ACK_NOT_ORDERED).reason == "acknowledged item GOWN-L is not on the order"
    unit = ack(ack_line("1", 4, "CT", "119.50", "GLV-M", (AckBucket.ACCEPTED, 4, None)))
    assert only(reconcile(chain(po, [unit]), POLICY, NOW), Kind.ACK_UNIT).reason == (
        "acknowledged in CT, ordered in BX, and no conversion between them is declared"
    )
    late = ack(ack_line("1", 40, "BX", "11.95", "GLV-M", (AckBucket.ACCEPTED, 40, date(2026, 11, 14))))
    no_ship_check = layered(ReconciliationConfig(slas=Slas(ship_grace_days=0)))
    hit = only(reconcile(chain(po, [late]), no_ship_check, NOW), Kind.ACK_DATE)
    assert hit.reason == "scheduled 2026-11-14, requested by 2026-11-10 (4 days late)"
    rejected = PurchaseOrderAcknowledgment(
        po_number="PO1", acknowledgment_date=date(2026, 11, 3), ack_type=AckType.REJECTED, ack_type_code="RJ"
    )
    hit = only(reconcile(chain(po, [rejected]), no_ship_check, NOW), Kind.ACK_REJECTED)
    assert hit.reason == "the whole order was rejected (478.00)" and hit.line is None


def test_uom_conversion_before_comparing() -> None:
    po = order(("1", 20, "EA", "1.20", "GAUZE"))
    i = invoice("INV1", ("1", 2, "CA", "12.00", "GAUZE"))
    s = notice("SH1", ("PO1", [item("1", 2, "CA", "GAUZE")]))
    a = ack(ack_line("1", 20, "EA", "1.20", "GAUZE", (AckBucket.ACCEPTED, 20, None)))
    without = reconcile(chain(po, [a], [s], [i]), POLICY, NOW)
    assert kinds(without) == ["invoice_unit", "ship_unit"]
    conv = layered(ReconciliationConfig(uom=[UomConversion.model_validate({"from": "CA", "to": "EA", "factor": 10})]))
    assert reconcile(chain(po, [a], [s], [i]), conv, NOW) == []
    dear = invoice("INV1", ("1", 2, "CA", "13.00", "GAUZE"))
    hit = only(reconcile(chain(po, [a], [s], [dear]), conv, NOW), Kind.INVOICE_PRICE)
    assert hit.reason == "invoiced 1.30 each, ordered at 1.20: 0.10 over on 20 each = 2.00"


def test_ship_notice_over_ordered_over_acked_not_ordered() -> None:
    po, _, _, _ = clean_chain()
    a = ack(
        ack_line("1", 40, "BX", "11.95", "GLV-M", (AckBucket.ACCEPTED, 30, None), (AckBucket.REJECTED, 10, None)),
        ack_line("2", 4, "CA", "118.00", "SYR-10", (AckBucket.ACCEPTED, 4, None)),
    )
    s = notice(
        "SH1",
        ("PO1", [item("1", 35, "BX", "GLV-M"), item("2", 5, "CA", "SYR-10"), item(None, 1, "EA", "MASK-N95")]),
    )
    found = reconcile(chain(po, [a], [s]), POLICY, NOW)
    assert only(found, Kind.SHIP_OVER_ACKNOWLEDGED).reason == "shipped 35 boxes, acknowledged 30 boxes: 5 boxes more"
    assert only(found, Kind.SHIP_OVER_ORDERED).reason == "shipped 5 cases, ordered 4 cases: 1 case more (118.00)"
    assert only(found, Kind.SHIP_NOT_ORDERED).reason == (
        "ship notice SH1 ships 1 each of MASK-N95, which is not on the order"
    )


def test_partial_shipments_add_up_and_a_notice_covers_two_orders() -> None:
    po, a, _, i = clean_chain()
    first = notice("SH1", ("PO1", [item("1", 20, "BX", "GLV-M")]), ("PO2", [item("1", 5, "EA", "X")]))
    second = notice("SH2", ("PO1", [item("1", 20, "BX", "GLV-M"), item("2", 4, "CA", "SYR-10")]), day=6)
    assert reconcile(chain(po, [a], [first, second], [i]), POLICY, NOW) == []
    other = reconcile(chain(None, notices=[first], po_number="PO2"), POLICY, NOW)
    assert only(other, Kind.SHIP_UNKNOWN_ORDER).reason == (
        "ship notice SH1 ships against PO PO2, which was never sent or received"
    )


def test_lot_tracked_item_without_lot_or_expiry() -> None:
    po = order(("1", 2, "EA", "1450.00", "HIP-52"))
    a = ack(ack_line("1", 2, "EA", "1450.00", "HIP-52", (AckBucket.ACCEPTED, 2, None)))
    bare = notice("SH1", ("PO1", [item("1", 2, "EA", "HIP-52", lot="L1")]))
    tracked = layered(ReconciliationConfig(lot_tracked=["HIP-52"]))
    hit = only(reconcile(chain(po, [a], [bare]), tracked, NOW), Kind.SHIP_LOT_MISSING)
    assert hit.reason == "lot-tracked item HIP-52 shipped on SH1 without expiry date"
    assert hit.amount == Decimal("2900.00")
    full = notice("SH1", ("PO1", [item("1", 2, "EA", "HIP-52", lot="L1", expiration_date=date(2030, 1, 1))]))
    assert reconcile(chain(po, [a], [full]), tracked, NOW) == []
    assert reconcile(chain(po, [a], [bare]), POLICY, NOW) == []  # not tracked unless configured


def test_line_matched_by_item_id_when_no_line_number() -> None:
    po, a, s, _ = clean_chain()
    i = invoice("INV1", (None, 40, "BX", "12.40", "GLV-M"), (None, 4, "CA", "118.00", "SYR-10"))
    assert only(reconcile(chain(po, [a], [s], [i]), POLICY, NOW), Kind.INVOICE_PRICE).line == "1"
    buyer_only = layered(ReconciliationConfig(item_id_order=["buyer_item"]))
    assert kinds(reconcile(chain(po, [a], [s], [i]), buyer_only, NOW)) == ["invoice_not_ordered"] * 2


@pytest.mark.parametrize(
    ("acks", "notices", "invoices", "now", "kind", "reason"),
    [
        (False, False, False, datetime(2026, 11, 5, 8, tzinfo=UTC), Kind.ACK_LATE,
         "no acknowledgment 70 hours after the order (due within 48 hours)"),
        (True, False, False, datetime(2026, 11, 20, tzinfo=UTC), Kind.SHIP_LATE,
         "nothing shipped 15 days after 2026-11-05"),
        (True, True, False, datetime(2026, 12, 20, tzinfo=UTC), Kind.INVOICE_LATE,
         "no invoice 45 days after shipment on 2026-11-05 (due within 30 days)"),
    ],
)  # fmt: skip
def test_time_slas(acks, notices, invoices, now, kind, reason) -> None:  # type: ignore[no-untyped-def]
    po, a, s, i = clean_chain()
    found = reconcile(chain(po, [a] if acks else [], [s] if notices else [], [i] if invoices else []), POLICY, now)
    assert only(found, kind).reason == reason
    assert len(found) == 1


def test_the_documented_settings_parse_and_unknown_keys_are_refused() -> None:
    import re
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    text = (Path(__file__).resolve().parents[2] / "docs" / "reconciliation.md").read_text("utf-8")
    block = re.search(r"```yaml\n(reconciliation:.*?)```", text, re.S)
    assert block is not None
    config = ReconciliationConfig.model_validate(yaml.safe_load(block.group(1))["reconciliation"])
    policy = layered(config)
    assert policy.limits(["SYR-10ML-LL"]).price == Limit(upper_percent=D("1"))
    assert policy.is_lot_tracked(["IMP-HIP-52"]) and policy.allowed_charges == {"D240"}
    with pytest.raises(ValidationError, match="tolerence"):
        ReconciliationConfig.model_validate({"tolerence": {}})


def test_issue_scenario_backorder_price_change_partial_shipments_price_and_freight() -> None:
    """850 → 855 with a backorder and a price change → 856 partial with lots → second 856 → 810 with a
    price outside tolerance and freight: exactly these exceptions."""
    po = order(GLOVES, SYRINGES, ("3", 2, "EA", "1450.00", "HIP-52"))
    a = ack(
        ack_line("1", 40, "BX", "11.95", "GLV-M", (AckBucket.ACCEPTED, 40, date(2026, 11, 5))),
        ack_line("2", 4, "CA", "121.00", "SYR-10", (AckBucket.ACCEPTED_WITH_CHANGE, 4, date(2026, 11, 5))),
        ack_line("3", 2, "EA", "1450.00", "HIP-52", (AckBucket.ACCEPTED, 1, date(2026, 11, 5)),
                 (AckBucket.BACKORDERED, 1, date(2026, 11, 20))),
    )  # fmt: skip
    lot = {"lot": "L1", "expiration_date": date(2030, 1, 1)}
    first = notice("SH1", ("PO1", [item("1", 20, "BX", "GLV-M", **lot), item("3", 1, "EA", "HIP-52", **lot)]))
    second = notice("SH2", ("PO1", [item("1", 20, "BX", "GLV-M", **lot), item("2", 4, "CA", "SYR-10", **lot)]), day=6)
    freight = Charge(kind="charge", code="D240", amount=m("25.00"))
    inv = invoice(
        "INV1", ("1", 40, "BX", "12.40", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"), ("3", 1, "EA", "1450.00", "HIP-52"),
        total="2443.00", charges=[freight], day=7,
    )  # fmt: skip
    tracked = layered(ReconciliationConfig(lot_tracked=["HIP-52"]))
    found = reconcile(chain(po, [a], [first, second], [inv]), tracked, NOW)
    assert sorted((f.kind.value, f.line) for f in found) == [
        ("ack_backorder", "3"), ("ack_price", "2"), ("invoice_charge", None), ("invoice_price", "1"),
    ]  # fmt: skip
    assert only(found, Kind.ACK_PRICE).reason == (
        "acknowledged 121.00 a case, ordered at 118.00: 3.00 over on 4 cases = 12.00"
    )


def test_credit_memo_for_the_whole_po_resolves_price_exceptions() -> None:
    po, a, s, _ = clean_chain()
    i = invoice("INV1", ("1", 40, "BX", "12.40", "GLV-M"), ("2", 4, "CA", "118.00", "SYR-10"))
    half = invoice("CM1", total="10.00", credit=True)
    hit = only(reconcile(chain(po, [a], [s], [i, half]), POLICY, NOW), Kind.INVOICE_PRICE)
    assert hit.amount == Decimal("8.00") and hit.reason.endswith("; credited 10.00, 8.00 still at stake")
    full = invoice("CM1", total="18.00", credit=True)
    assert reconcile(chain(po, [a], [s], [i, full]), POLICY, NOW) == []
