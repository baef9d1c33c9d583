"""What `bench/gen_store.py` writes inside rows: canonical documents, the X12 bytes of a file, located
errors, delivery responses. Pure functions of their arguments (the generator's seeded RNG picks them).

The canonical documents carry the fields the real ones do where the dashboard and `search_keys` look
(PO, invoice and ASN numbers, lots, serials, bills of lading, lines with quantities and prices), so
`gateway.store.search.keys_of` finds in them what it finds in translated documents.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from decimal import Decimal

ITEMS = [("GLV-NITRILE-M", "Nitrile exam gloves, medium", "BX", Decimal("8.95")),
         ("SYR-10ML-LL", "Syringe 10 mL luer lock", "CS", Decimal("41.20")),
         ("GAUZE-4X4-ST", "Gauze sponge 4x4 sterile", "CS", Decimal("63.00")),
         ("CATH-IV-20G", "IV catheter 20G", "BX", Decimal("112.50")),
         ("MASK-N95-R", "N95 respirator, regular", "BX", Decimal("24.75")),
         ("SUT-4-0-NYL", "Suture 4-0 nylon", "BX", Decimal("88.10")),
         ("ECG-ELEC-50", "ECG electrodes (50)", "PK", Decimal("12.40")),
         ("DRP-SURG-LG", "Surgical drape, large", "CS", Decimal("145.00"))]  # fmt: skip
"""Hospital supplies: item, description, unit, price."""

SET_CODES = {"po_acknowledgment": ("855", "PR"), "ship_notice": ("856", "SH"), "invoice": ("810", "IN"),
             "acknowledgment": ("997", "FA"), "purchase_order": ("850", "PO")}  # fmt: skip


def lines_of(rng: random.Random, count: int) -> list[dict[str, object]]:
    """``count`` order lines of hospital supplies."""
    out = []
    for n in range(1, count + 1):
        item, desc, uom, price = ITEMS[rng.randrange(len(ITEMS))]
        qty = rng.choice((1, 2, 5, 10, 12, 20, 50))
        out.append({"line_number": str(n), "item": {"vendor_part": item, "description": desc},
                    "quantity": {"value": str(qty), "uom": uom}, "unit_price": str(price)})  # fmt: skip
    return out


def canonical(doc_type: str, rng: random.Random, po: str, number: str, at: datetime, partner: str) -> dict[str, object]:
    """The canonical document of ``doc_type`` about PO ``po`` (``number``: its own id)."""
    lines = lines_of(rng, rng.randint(1, 4))
    base: dict[str, object] = {"document_type": doc_type, "partner": partner, "provenance": {"format": "x12"}}
    if doc_type == "purchase_order":
        base |= {"po_number": po, "order_date": at.date().isoformat(), "ship_to": {"name": "Mercy General",
                 "id": "MERCY-DOCK-2"}, "lines": lines}  # fmt: skip
    elif doc_type == "po_acknowledgment":
        base |= {"po_number": po, "acknowledgment_date": at.date().isoformat(), "ack_type": "AC",
                 "lines": [dict(line, status="IA") for line in lines]}  # fmt: skip
    elif doc_type == "ship_notice":
        items = [dict(line, lot=f"L{rng.randrange(10**6):06d}", serial=f"SN{number}-{i}") for i, line in
                 enumerate(lines, 1)]  # fmt: skip
        base |= {"shipment_id": number, "bill_of_lading": f"BOL{number}", "ship_date": at.date().isoformat(),
                 "orders": [{"po_number": po, "items": items}]}  # fmt: skip
    elif doc_type == "invoice":
        total = sum(Decimal(str(line["unit_price"])) * int(str(line["quantity"]["value"])) for line in lines)  # type: ignore[index]
        base |= {"invoice_number": number, "po_number": po, "invoice_date": at.date().isoformat(),
                 "terms": "NET30", "lines": lines, "total": str(total)}  # fmt: skip
    else:
        base |= {"kind": "997", "acknowledges": {"group_control": number, "functional_id": "PO"}, "code": "A"}
    return base


def x12_file(sender: str, isa13: str, gs06: str, doc_type: str, sets: list[tuple[str, str]], at: datetime) -> bytes:
    """A small but well-formed X12 interchange: one group, one set per ``(ST02, key)`` in ``sets``."""
    code, fid = SET_CODES[doc_type]
    d, t = at.strftime("%y%m%d"), at.strftime("%H%M")
    out = [f"ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*MERCYHOSP      *{d}*{t}*U*00401*{isa13}*0*P*>",
           f"GS*{fid}*{sender}*MERCYHOSP*20{d}*{t}*{gs06}*X*004010"]  # fmt: skip
    for st02, key in sets:
        body = {"855": [f"BAK*00*AC*{key}*20{d}", "PO1*1*10*BX*8.95**VC*GLV-NITRILE-M", "ACK*IA*10*BX"],
                "856": [f"BSN*00*{key}*20{d}*{t}", "HL*1**S", "HL*2*1*O", f"PRF*{key}", "HL*3*2*I",
                        "LIN**VC*GLV-NITRILE-M*LT*L000001", "SN1**10*BX"],
                "810": [f"BIG*20{d}*{key}**{key}", "IT1*1*10*BX*8.95**VC*GLV-NITRILE-M", "TDS*8950"],
                "997": [f"AK1*PO*{key}", "AK9*A*1*1*1"]}.get(code, [f"BEG*00*SA*{key}**20{d}"])  # fmt: skip
        segs = [f"ST*{code}*{st02}", *body]
        out += [*segs, f"SE*{len(segs) + 1}*{st02}"]
    out += [f"GE*{len(sets)}*{gs06}", f"IEA*1*{isa13}"]
    return ("~\n".join(out) + "~\n").encode()


def set_error(st02: str, partner: str) -> list[dict[str, object]]:
    """The located error of a rejected set, as ``errors_json`` writes it."""
    location = {"partner": partner, "transaction_set": st02, "segment_id": "IT1", "segment_index": 3, "element": 4}
    return [{"code": "X12-ELEM-INVALID", "message": "IT104 (unit price) '8,95' is not a decimal number",
             "where": f"set {st02} segment 3 (IT1) element 4", "location": location}]  # fmt: skip


def response(outcome: str, rng: random.Random) -> tuple[str | None, str | None]:
    """(error, response JSON) of one delivery attempt."""
    if outcome == "delivered":
        return None, json.dumps({"status": 201, "body": {"id": rng.randrange(10**8)}})
    if outcome == "retry":
        return "HTTP 503 Service Unavailable", json.dumps({"status": 503, "body": "upstream busy"})
    return "HTTP 422 Unprocessable Entity: vendor not found", json.dumps(
        {"status": 422, "body": {"error": "vendor not found in AP master"}}
    )
