"""Invoices against order and ship notices: unit prices, totals, quantities invoiced above shipped or
ordered, invoices for unknown orders, invoice numbers used twice, charges the terms do not allow.

Which invoices count: for each invoice number the first original, or the latest replacement of it; a
cancelled number counts for nothing. Credit memos count against the lines they name: a credit at the
invoiced unit price gives back quantity (a return), any other credits money (a price correction) and
is set against that line's price exceptions, which it resolves once what is left is within tolerance;
a credit memo with a total and no lines is set against the PO's price exceptions in turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.canonical.documents import Invoice, InvoiceLine, PurchaseOrderLine, Purpose
from gateway.reconcile.chain import ChainDoc
from gateway.reconcile.compare import more_than, not_on_order, price_off, unit_unknown
from gateway.reconcile.context import Context
from gateway.reconcile.matching import label
from gateway.reconcile.model import Kind
from gateway.reconcile.words import money, per_unit, units

__all__ = ["check_invoices", "invoice_amount"]

_REPLACING = (Purpose.REPLACE, Purpose.CHANGE)


@dataclass
class _Billed:
    line: PurchaseOrderLine
    quantity: Decimal
    refs: list[str]
    price_credit: Decimal


@dataclass
class _Pool:
    """Credit memos for the whole PO (a total, no lines): set against its price exceptions in turn."""

    amount: Decimal


def invoice_amount(invoice: Invoice) -> Decimal:
    """What the invoice's lines, charges, allowances and taxes come to."""
    total = sum((line.quantity.value * line.unit_price.amount for line in invoice.lines), Decimal(0))
    for charges in [invoice.charges, *(line.charges for line in invoice.lines)]:
        for c in charges:
            total += c.amount.amount if c.kind == "charge" else -c.amount.amount
    for taxes in [invoice.taxes, *(line.taxes for line in invoice.lines)]:
        total += sum((t.amount.amount for t in taxes), Decimal(0))
    return total


def _counting(ctx: Context) -> list[ChainDoc[Invoice]]:
    """The invoices that count, credit memos included (a later original with a used number does not)."""
    by_number: dict[str, list[ChainDoc[Invoice]]] = {}
    for inv in sorted(ctx.chain.invoices, key=lambda i: (i.received_at, i.ref)):
        by_number.setdefault(inv.doc.invoice_number, []).append(inv)
    counting: list[ChainDoc[Invoice]] = []
    for same in by_number.values():
        current: ChainDoc[Invoice] | None = None
        for inv in same:
            if inv.doc.purpose is Purpose.CANCEL:
                current = None
            elif current is None or inv.doc.purpose in _REPLACING:
                current = inv
        if current is not None:
            counting.append(current)
    return counting


def _mine(ctx: Context, invoice: Invoice, line: InvoiceLine) -> bool:
    return (line.po_number or invoice.po_number) == ctx.po


def check_invoices(ctx: Context, shipped: dict[int, Decimal], any_notice: bool) -> None:
    """Every invoice check; ``shipped`` is what the notices shipped per order line (``id`` of the line)."""
    _check_duplicates(ctx)
    counting = _counting(ctx)
    billed: dict[int, _Billed] = {}
    for inv in counting:
        doc = inv.doc
        if doc.po_number in (None, ctx.po):
            _check_header(ctx, inv)
        if ctx.index is None:
            if not doc.credit_memo:
                amount = doc.total.amount if doc.total is not None else invoice_amount(doc)
                ctx.add(
                    Kind.INVOICE_UNKNOWN_ORDER,
                    None,
                    (inv.ref,),
                    expected=f"purchase order {ctx.po}",
                    actual=f"invoice {doc.invoice_number}",
                    amount=amount,
                    reason=f"invoice {doc.invoice_number} ({money(amount)}) bills PO {ctx.po}, "
                    "which was never sent or received",
                    subject=doc.invoice_number,
                )
            continue
        for line in doc.lines:
            if _mine(ctx, doc, line) and not doc.credit_memo:
                _bill(ctx, inv, line, billed)
    pool = _Pool(Decimal(0))
    for inv in counting:
        if inv.doc.credit_memo and ctx.index is not None:
            for line in inv.doc.lines:
                if _mine(ctx, inv.doc, line):
                    _credit(ctx, inv, line, billed)
            if not inv.doc.lines and inv.doc.po_number == ctx.po and inv.doc.total is not None:
                pool.amount += abs(inv.doc.total.amount)  # a credit for the PO as a whole, no lines named
    for inv in counting:
        if not inv.doc.credit_memo and ctx.index is not None:
            _check_prices(ctx, inv, billed, pool)
    for key, bill in billed.items():
        _check_quantity(ctx, bill, shipped.get(key) if any_notice else None)


def _bill(ctx: Context, inv: ChainDoc[Invoice], line: InvoiceLine, billed: dict[int, _Billed]) -> None:
    assert ctx.index is not None
    order_line = ctx.index.find(line.line_number, line.item)
    refs = (inv.ref, *ctx.order_ref)
    amount = line.quantity.value * line.unit_price.amount
    if order_line is None:
        what = f"{units(line.quantity.value, line.quantity.uom)} of {label(line.item)}"
        reason = f"invoice {inv.doc.invoice_number} bills {what} ({money(amount)}), which is not on the order"
        not_on_order(ctx, Kind.INVOICE_NOT_ORDERED, line.line_number, refs, line.item, actual=what, reason=reason,
                     amount=amount, subject=f"{inv.doc.invoice_number}:{label(line.item)}")  # fmt: skip
        return
    converted = ctx.in_order_unit(line.quantity, order_line, line.item)
    if converted.value is None:
        unit_unknown(ctx, Kind.INVOICE_UNIT, ctx.line_key(order_line), refs, verb="invoiced", unit=line.quantity.uom,
                     ordered_unit=order_line.quantity.uom, amount=amount, subject=inv.doc.invoice_number)  # fmt: skip
        return
    bill = billed.setdefault(id(order_line), _Billed(order_line, Decimal(0), [], Decimal(0)))
    bill.quantity += converted.value
    bill.refs.append(inv.ref)


def _credit(ctx: Context, inv: ChainDoc[Invoice], line: InvoiceLine, billed: dict[int, _Billed]) -> None:
    assert ctx.index is not None
    order_line = ctx.index.find(line.line_number, line.item)
    if order_line is None or id(order_line) not in billed:
        return
    bill = billed[id(order_line)]
    converted = ctx.in_order_unit(line.quantity, order_line, line.item)
    if converted.value is None or converted.factor is None:
        return
    price = line.unit_price.amount / converted.factor
    ordered_price = order_line.unit_price.amount if order_line.unit_price else None
    limits = ctx.limits(order_line).price
    returned = ordered_price is not None and limits is not None and limits.allows(ordered_price, price)
    if returned:
        bill.quantity -= converted.value
    else:
        bill.price_credit += line.quantity.value * line.unit_price.amount
    bill.refs.append(inv.ref)


def _check_prices(ctx: Context, inv: ChainDoc[Invoice], billed: dict[int, _Billed], pool: _Pool) -> None:
    assert ctx.index is not None
    for line in inv.doc.lines:
        order_line = ctx.index.find(line.line_number, line.item) if _mine(ctx, inv.doc, line) else None
        if order_line is None or order_line.unit_price is None or id(order_line) not in billed:
            continue
        converted = ctx.in_order_unit(line.quantity, order_line, line.item)
        limits = ctx.limits(order_line)
        if converted.value is None or converted.factor is None or limits.price is None:
            continue
        uom = order_line.quantity.uom
        price = line.unit_price.amount / converted.factor
        ordered = order_line.unit_price.amount
        if limits.price.allows(ordered, price):
            continue
        at_stake, reason = price_off("invoiced", price, ordered, converted.value, uom)
        bill = billed[id(order_line)]
        credit = min(bill.price_credit, at_stake) if at_stake > 0 else Decimal(0)
        bill.price_credit -= credit
        whole = min(pool.amount, at_stake - credit) if at_stake > 0 else Decimal(0)
        pool.amount -= whole
        credit += whole
        left = at_stake - credit
        if credit and limits.amount is not None and limits.amount.allows(Decimal(0), left):
            continue
        if credit:
            reason += f"; credited {money(credit)}, {money(left)} still at stake"
        ctx.add(
            Kind.INVOICE_PRICE,
            ctx.line_key(order_line),
            (inv.ref, *ctx.order_ref),
            expected=per_unit(ordered, uom),
            actual=per_unit(price, uom),
            amount=abs(left),
            reason=reason,
            subject=inv.doc.invoice_number,
        )


def _check_quantity(ctx: Context, bill: _Billed, shipped: Decimal | None) -> None:
    line = bill.line
    limits = ctx.limits(line).quantity
    if limits is None:
        return
    uom, price = line.quantity.uom, line.unit_price.amount if line.unit_price else None
    refs = (*dict.fromkeys(bill.refs), *ctx.order_ref)
    for kind, against, what in (
        (Kind.INVOICE_OVER_SHIPPED, shipped, "shipped"),
        (Kind.INVOICE_OVER_ORDERED, line.quantity.value, "ordered"),
    ):
        if against is not None and more_than(
            ctx, kind, ctx.line_key(line), refs, verb="invoiced", total=bill.quantity, against=against, what=what,
            uom=uom, price=price, limit=limits,
        ):  # fmt: skip
            return


def _check_header(ctx: Context, inv: ChainDoc[Invoice]) -> None:
    doc = inv.doc
    refs = (inv.ref, *ctx.order_ref)
    amount_limit = ctx.policy.tolerances.amount
    if doc.total is not None and amount_limit is not None and (doc.lines or not doc.credit_memo):
        computed = invoice_amount(doc)
        stated = doc.total.amount
        if not amount_limit.allows(computed, stated):
            ctx.add(
                Kind.INVOICE_TOTAL,
                None,
                refs,
                expected=money(computed),
                actual=money(stated),
                amount=abs(stated - computed),
                reason=f"invoice {doc.invoice_number} states a total of {money(stated)}, its lines, charges and "
                f"taxes come to {money(computed)}: {money(abs(stated - computed))} "
                f"{'over' if stated > computed else 'under'}",
                subject=doc.invoice_number,
            )
    if doc.credit_memo:
        return
    for charges in [doc.charges, *(line.charges for line in doc.lines)]:
        for c in charges:
            if c.kind != "charge" or (c.code or "") in ctx.policy.allowed_charges:
                continue
            name = _CHARGE_NAMES.get(c.code or "", c.description or f"charge {c.code or '(no code)'}")
            ctx.add(
                Kind.INVOICE_CHARGE,
                None,
                refs,
                expected="no charge (not in the partner's terms)",
                actual=f"{name} {money(c.amount.amount)}",
                amount=c.amount.amount,
                reason=f"invoice {doc.invoice_number} charges {name} {money(c.amount.amount)}, "
                "which the partner's terms do not allow",
                subject=f"{doc.invoice_number}:{c.code or name}",
            )


_CHARGE_NAMES = {"D240": "freight", "G830": "shipping and handling"}


def _check_duplicates(ctx: Context) -> None:
    for inv in ctx.chain.invoices:
        if inv.doc.purpose in (*_REPLACING, Purpose.CANCEL):
            continue
        seen = sorted(ctx.chain.invoices_seen.get(inv.doc.invoice_number, []), key=lambda s: (s.received_at, s.ref))
        first = next((s for s in seen if s.purpose not in (*_REPLACING, Purpose.CANCEL)), None)
        if first is None or first.ref == inv.ref:
            continue
        amount = inv.doc.total.amount if inv.doc.total is not None else invoice_amount(inv.doc)
        where = f" (on PO {first.po_number})" if first.po_number and first.po_number != ctx.po else ""
        ctx.add(
            Kind.INVOICE_DUPLICATE,
            None,
            (inv.ref, first.ref),
            expected=f"a new invoice number (first seen {first.received_at:%Y-%m-%d} {first.ref}{where})",
            actual=f"invoice {inv.doc.invoice_number} again",
            amount=amount,
            reason=f"invoice number {inv.doc.invoice_number} was already received from this supplier"
            f"{where}; this second invoice ({money(amount)}) must not be paid",
            subject=inv.ref,
        )
