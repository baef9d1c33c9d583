"""Chargeable supplies as the pure core sees them: which ship-notice lines are billed, at which price,
under which key (a replacement notice keeps it); the runtime's withholding is tested end to end in
tests/runtime/test_runtime_recon_outputs.py."""

from __future__ import annotations

from recon_builders import D, chain, item, notice, order

from gateway.canonical.documents import Purpose
from gateway.reconcile import ReconciliationConfig, layered
from gateway.reconcile.billing import billing_lines

PO = order(("1", 10, "BX", "42.50", "GLV-NIT-M"), ("2", 2, "EA", "1450.00", "IMP-HIP-52"))
POLICY = layered(ReconciliationConfig.model_validate({"chargeable": {"items": ["IMP-HIP-52"]}}))


def test_only_chargeable_lines_are_billed_at_the_order_price() -> None:
    shipped = notice("S1", ("PO1", [item("1", 10, "BX", "GLV-NIT-M"), item("2", 2, "EA", "IMP-HIP-52", lot="L7")]))
    (line,) = billing_lines(chain(PO, notices=[shipped]), POLICY)
    body = line.as_json()
    assert (body["po_line"], body["lot"], body["quantity"], body["contract_price"], body["amount"]) == (
        "2", "L7", "2", "1450.00", "2900.00",
    )  # fmt: skip
    assert body["key"] == "S1:PO1:1" and body["ship_notice_document"] == "document:2"
    assert billing_lines(chain(PO, notices=[shipped]), layered()) == []  # nothing chargeable: nothing billed


def test_lines_matched_by_item_id_a_replacement_keeps_the_key_no_order_no_price() -> None:
    first = notice("S1", ("PO1", [item(None, 1, "EA", "IMP-HIP-52", serial="SN1")]))
    replaced = notice("S1", ("PO1", [item(None, 1, "EA", "IMP-HIP-52", serial="SN1")]), purpose=Purpose.REPLACE)
    lines = billing_lines(chain(PO, notices=[first, replaced]), POLICY)
    assert [(b.key, b.notice, b.price, b.serial) for b in lines] == [("S1:PO1:0", "document:3", D("1450.00"), "SN1")]
    cancelled = notice("S1", ("PO1", []), purpose=Purpose.CANCEL)
    assert billing_lines(chain(PO, notices=[first, cancelled]), POLICY) == []
    stray = billing_lines(chain(None, notices=[first]), POLICY)
    assert [(b.line, b.price) for b in stray] == [(None, None)]
