"""Property: a randomly generated consistent chain has no exception; one injected discrepancy, exactly one."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from recon_builders import NOW, ack, ack_line, chain, invoice, item, m, notice, order

from gateway.canonical.documents import AckBucket, Charge
from gateway.reconcile import Kind, layered, reconcile

POLICY = layered()
UNITS = ["EA", "BX", "CA", "PK"]

lines_st = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=500),
        st.sampled_from(UNITS),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2),
    ),
    min_size=1,
    max_size=6,
)


def build(lines, inject: str | None, which: int, split: bool):  # type: ignore[no-untyped-def]
    rows = [(str(i + 1), qty, uom, str(price), f"VP-{i}") for i, (qty, uom, price) in enumerate(lines)]
    target = which % len(rows)
    po = order(*rows)
    acked = []
    for n, qty, uom, price, vp in rows:
        if inject == "backorder" and n == rows[target][0] and qty > 1:
            acked.append(ack_line(n, qty, uom, price, vp, (AckBucket.ACCEPTED, qty - 1, None),
                                  (AckBucket.BACKORDERED, 1, date(2026, 11, 30))))  # fmt: skip
        else:
            price_acked = str(Decimal(price) + 1) if inject == "ack_price" and n == rows[target][0] else price
            acked.append(ack_line(n, qty, uom, price_acked, vp, (AckBucket.ACCEPTED, qty, date(2026, 11, 5))))
    shipped = [item(n, qty + (1 if inject == "over_ship" and n == rows[target][0] else 0), uom, vp)
               for n, qty, uom, _, vp in rows]  # fmt: skip
    notices = [notice("SH1", ("PO1", shipped))]
    if split and len(shipped) > 1:
        notices = [notice("SH1", ("PO1", shipped[:1])), notice("SH2", ("PO1", shipped[1:]), day=6)]
    billed = [(n, qty, uom, str(Decimal(price) + Decimal("0.45")) if inject == "invoice_price" and n == rows[target][0]
               else price, vp) for n, qty, uom, price, vp in rows]  # fmt: skip
    charges = [Charge(kind="charge", code="D240", amount=m("12.00"))] if inject == "charge" else []
    total = sum((Decimal(q) * Decimal(p) for _, q, _, p, _ in billed), Decimal(0)) + sum(
        (c.amount.amount for c in charges), Decimal(0)
    )
    inv = invoice("INV1", *billed, total=str(total), charges=charges, day=7)
    invoices = [inv, inv.model_copy()] if inject == "duplicate" else [inv]
    return chain(po, [ack(*acked)], notices, invoices)


@settings(max_examples=60, deadline=None)
@given(lines=lines_st, split=st.booleans())
def test_a_consistent_chain_has_no_exception(lines, split) -> None:  # type: ignore[no-untyped-def]
    assert reconcile(build(lines, None, 0, split), POLICY, NOW) == []


EXPECTED = {
    "invoice_price": Kind.INVOICE_PRICE,
    "over_ship": Kind.SHIP_OVER_ORDERED,
    "ack_price": Kind.ACK_PRICE,
    "backorder": Kind.ACK_BACKORDER,
    "charge": Kind.INVOICE_CHARGE,
    "duplicate": Kind.INVOICE_DUPLICATE,
}


@settings(max_examples=120, deadline=None)
@given(
    lines=lines_st,
    inject=st.sampled_from(sorted(EXPECTED)),
    which=st.integers(min_value=0, max_value=10),
    split=st.booleans(),
)
def test_each_injected_discrepancy_is_exactly_one_exception(lines, inject, which, split) -> None:  # type: ignore[no-untyped-def]
    if inject == "backorder" and lines[which % len(lines)][0] < 2:
        lines = [(2, u, p) if i == which % len(lines) else (q, u, p) for i, (q, u, p) in enumerate(lines)]
    found = reconcile(build(lines, inject, which, split), POLICY, NOW)
    assert [f.kind for f in found] == [EXPECTED[inject]], [(f.kind, f.reason) for f in found]
