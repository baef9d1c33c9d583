"""Routing rules over real canonical documents (the golden cases' JSON, and one translated here)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import REPO
from pydantic import ValidationError

from gateway.routing import (
    DEFAULT_OUTBOUND,
    PARTNER_OUTBOX,
    Match,
    Predicate,
    RouteInput,
    Rule,
    outbound_rules,
    parse_path,
    route,
    rules_for,
    sends,
)
from gateway.translate import FileInput, Translation
from gateway.workspace import load_workspace

CASES = REPO / "partners"


def golden(path: str) -> dict[str, Any]:
    data = json.loads((CASES / path).read_text("utf-8"))
    return data[0] if isinstance(data, list) else data


INVOICE = golden("medsupply/cases/810-invoice.json")  # total 2362.00, ship-to 92 MGH-DOCK2, CT reference
ASN = golden("medsupply/cases/856-xref-and-uom.json")  # orders > packs > items with a lot
IMPLANT_PO = golden("carelink/cases/order_bill_only.json")  # cXML, test, ship-to addressID MGH-OR-3


def where(path: str, op: str, value: Any = None) -> Match:
    return Match(where=[Predicate(path=path, op=op, value=value)])  # type: ignore[arg-type]


def holds(document: dict[str, Any], path: str, op: str, value: Any = None) -> bool:
    return Predicate(path=path, op=op, value=value).holds(document)  # type: ignore[arg-type]


INBOUND_INVOICE = RouteInput("medsupply", "invoice", "inbound", False)


def test_the_first_matching_rule_wins() -> None:
    rules = [
        Rule(name="invoices", match=Match(doc_type="invoice"), to=["ap-api"]),
        Rule(name="default", match=Match(direction="inbound"), to=["canonical-json"]),
    ]
    decision = route(INBOUND_INVOICE, INVOICE, rules)
    assert decision.rules == ("invoices",) and decision.destinations == ("ap-api",) and not decision.unrouted
    asn = route(RouteInput("medsupply", "ship_notice"), ASN, rules)
    assert asn.rules == ("default",) and asn.destinations == ("canonical-json",)


def test_stop_false_lets_later_rules_add_destinations_each_once_in_order() -> None:
    rules = [
        Rule(name="big", match=where("total.amount", "gt", 1000), to=["ap-review", "erp"], stop=False),
        Rule(name="invoices", match=Match(doc_type="invoice"), to=["erp", "ap-api"]),
        Rule(name="default", to=["canonical-json"]),
    ]
    decision = route(INBOUND_INVOICE, INVOICE, rules)
    assert decision.rules == ("big", "invoices")
    assert decision.destinations == ("ap-review", "erp", "ap-api")
    assert decision.as_dict() == {"rules": ["big", "invoices"], "destinations": ["ap-review", "erp", "ap-api"]}


def test_no_rule_matched_is_unrouted_with_every_rules_reason() -> None:
    rules = [
        Rule(name="summit", match=Match(partner=["summitmed", "coastal"]), to=["a"]),
        Rule(name="prod-invoices", match=Match(doc_type="invoice", test=False), to=["b"]),
        Rule(name="dock1", match=where("parties[role=ship_to].ids[qualifier=92].value", "eq", "MGH-DOCK1"), to=["c"]),
        Rule(name="inbound", match=Match(direction="inbound"), to=["d"]),
    ]
    decision = route(RouteInput("medsupply", "997", "outbound"), None, rules[:1] + rules[3:])
    assert decision.unrouted and not decision.destinations and not decision.rules
    assert decision.reason.startswith("no rule matches outbound 997 from medsupply: ")
    assert "summit: partner is medsupply, not coastal, summitmed" in decision.reason
    assert "inbound: direction is outbound, not inbound" in decision.reason
    test_invoice = route(RouteInput("medsupply", "invoice", test=True), INVOICE, rules[1:3])
    assert test_invoice.unrouted
    assert "prod-invoices: test data, the rule takes production only" in test_invoice.reason
    assert "dock1: parties[role=ship_to].ids[qualifier=92].value eq MGH-DOCK1 does not hold" in test_invoice.reason
    assert test_invoice.as_dict()["unrouted"] is True
    assert "no routes are configured" in route(INBOUND_INVOICE, INVOICE, []).reason


def test_selectors_pick_list_elements_by_a_key() -> None:
    # The ship-to's buyer-assigned id (qualifier 92, as the 810's N1*ST*...*92 sends it).
    assert holds(INVOICE, "parties[role=ship_to].ids[qualifier=92].value", "eq", "MGH-DOCK2")
    assert not holds(INVOICE, "parties[role=remit_to].ids[qualifier=92].value", "eq", "MGH-DOCK2")
    assert holds(INVOICE, "parties[role_code=RE].name", "matches", "^MEDSUPPLY")
    assert holds(INVOICE, "references[qualifier=CT].value", "eq", "GPO-CONTRACT-7731")
    assert holds(INVOICE, "references[qualifier=CT]", "exists")
    assert holds(INVOICE, "references[qualifier=DP]", "missing")
    # cXML keys its parties by addressID: the implant order for operating room 3.
    assert holds(IMPLANT_PO, "parties[role=ship_to].ids[qualifier=addressID].value", "in", ["MGH-OR-3", "MGH-OR-4"])


def test_lists_are_searched_element_wise() -> None:
    assert holds(INVOICE, "lines.item.vendor_part", "eq", "IMP-HIP-52")
    assert holds(INVOICE, "lines.unit_price.amount", "ge", "1450")
    assert not holds(INVOICE, "lines.unit_price.amount", "gt", 1450)
    # Down the ship-notice hierarchy: order > pack > item, any lot that looks like ours.
    assert holds(ASN, "orders.packs.items.lot", "matches", r"^L\d{6}$")
    assert holds(ASN, "orders.items.line_number", "eq", 4)
    # ne and not_in hold when no value found matches (a missing field is ne anything).
    assert not holds(INVOICE, "lines.item.vendor_part", "ne", "IMP-HIP-52")
    assert holds(INVOICE, "lines.item.vendor_part", "not_in", ["X", "Y"])
    assert holds(INVOICE, "lines.lot", "ne", "L1")


def test_numbers_compare_as_decimals_codes_and_dates_as_text() -> None:
    assert INVOICE["total"]["amount"] == "2362.00", "canonical JSON keeps amounts as strings"
    assert holds(INVOICE, "total.amount", "eq", 2362)
    assert holds(INVOICE, "total.amount", "eq", "2362.0")
    assert holds(INVOICE, "total.amount", "gt", "999.99")  # as text "2362.00" < "999.99"
    assert holds(INVOICE, "total.amount", "lt", 10000.5)
    assert holds(INVOICE, "terms.type_code", "eq", "01")
    assert not holds(INVOICE, "terms.type_code", "eq", 1), "a zero-padded code is not the number 1"
    assert holds(INVOICE, "invoice_date", "ge", "2026-12-01") and holds(INVOICE, "invoice_date", "lt", "2027-01-01")
    assert holds(INVOICE, "credit_memo", "eq", False)
    assert holds(IMPLANT_PO, "provenance.test", "eq", True)


def test_partner_rules_come_first_for_their_partner_only() -> None:
    own = [Rule(name="implants", match=Match(doc_type="purchase_order"), to=["billing"])]
    global_rules = [Rule(name="default", to=["canonical-json"])]
    carelink = rules_for("carelink", own, global_rules)
    assert [r.name for r in carelink] == ["carelink/implants", "default"]
    meta = RouteInput("carelink", "purchase_order", test=True)
    assert route(meta, IMPLANT_PO, carelink).destinations == ("billing",)
    # Even handed to another partner's documents, a profile's rule matches its own partner only.
    other = route(RouteInput("medsupply", "purchase_order"), IMPLANT_PO, carelink)
    assert other.rules == ("default",)
    assert rules_for(None, own, global_rules) == global_rules


def test_a_document_translated_here_routes_like_its_golden_json() -> None:
    ws = load_workspace(REPO)
    data = (CASES / "medsupply" / "cases" / "810-invoice.edi").read_bytes()
    (result,) = [
        t
        for t in ws.translator().translate(data, FileInput("810.edi", partner_id="medsupply"))
        if isinstance(t, Translation)
    ]
    assert result.document is not None
    document = result.document.model_dump(mode="json", exclude_none=True)
    rules = [
        Rule(
            name="dock2-big",
            match=Match(
                where=[
                    Predicate(path="parties[role=ship_to].ids[qualifier=92].value", op="eq", value="MGH-DOCK2"),
                    Predicate(path="total.amount", op="gt", value="1000"),
                ]
            ),
            to=["ap-review"],
        ),
    ]
    meta = RouteInput(result.partner, str(result.document_type), "inbound", document["provenance"]["test"])
    assert route(meta, document, rules).destinations == ("ap-review",)


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ({"path": "a", "op": "greater", "value": 1}, "unknown op 'greater' (ops: eq, ne, in"),
        ({"path": "a", "op": "matchs", "value": "x"}, "unknown op 'matchs' (did you mean matches?)"),
        ({"path": "total.amount", "op": "gt"}, "op gt needs a value"),
        ({"path": "total.amount", "op": "exists", "value": 1}, "op exists takes no value"),
        ({"path": "a", "op": "in", "value": "A"}, "needs a list of values"),
        ({"path": "a", "op": "eq", "value": ["A"]}, "not a list"),
        ({"path": "a", "op": "matches", "value": "(unclosed"}, "bad regular expression"),
        ({"path": "parties[role].id", "op": "exists"}, "bad path"),
        ({"path": "a", "op": "eq", "value": {"x": 1}}, "a value is a text, a number"),
    ],
)
def test_bad_predicates_say_what_is_wrong(predicate: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Predicate.model_validate(predicate)


def test_unknown_document_types_and_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="did you mean invoice"):
        Match(doc_type="invoices")
    with pytest.raises(ValidationError, match="Extra inputs"):
        Rule.model_validate({"name": "x", "to": ["a"], "stpo": False})
    with pytest.raises(ValidationError, match="at least 1 item"):
        Rule(name="x", to=[])


def test_paths_parse_into_steps() -> None:
    steps = parse_path("parties[role=ship_to].ids[qualifier=92].value")
    assert [(s.key, s.selectors) for s in steps] == [
        ("parties", (("role", "ship_to"),)),
        ("ids", (("qualifier", "92"),)),
        ("value", ()),
    ]
    assert parse_path("a[x=1][y=2]")[0].selectors == (("x", "1"), ("y", "2"))


def test_covers_is_what_shadowing_means() -> None:
    everything = Match()
    invoices = Match(doc_type=["invoice", "ship_notice"])
    assert everything.covers(invoices) and invoices.covers(Match(doc_type="invoice", partner="medsupply"))
    assert not invoices.covers(everything)
    assert not where("total.amount", "gt", 1).covers(invoices), "a rule with predicates may let documents through"
    assert not Match(direction="inbound").covers(Match(test=True))


# --- what we send partners --------------------------------------------------------------------

PO = json.loads((REPO / "samples" / "canonical" / "purchase-order.json").read_text("utf-8"))


def test_outbound_rules_are_those_that_can_take_what_we_send_and_the_default_ends_them() -> None:
    catch_all = Rule(name="everything", to=["canonical-json"])
    inbound = Rule(name="in", match=Match(direction="inbound", doc_type="850"), to=["x"])  # never outbound
    copy = Rule(name="copy", match=Match(doc_type="850"), to=["po-archive"], stop=False)
    assert [sends(r) for r in (catch_all, inbound, copy, DEFAULT_OUTBOUND)] == [False, False, True, True]
    # gateway.yaml with no outbound rule: the default ends the list, after the profile's own
    assert [r.name for r in outbound_rules("acme", [copy], [catch_all])] == ["acme/copy", "default-outbound"]
    decision = route(RouteInput("acme", "850", "outbound"), PO, outbound_rules("acme", [copy], [catch_all]))
    assert decision.destinations == ("po-archive", PARTNER_OUTBOX)
    ack = route(RouteInput("acme", "997", "outbound"), None, outbound_rules("acme", [copy], [catch_all]))
    assert ack.rules == ("default-outbound",) and ack.destinations == (PARTNER_OUTBOX,)
    # gateway.yaml's outbound rules decide alone: what they do not match is unrouted, with each rule's miss
    acks = Rule(
        name="acks", match=Match(direction="outbound", doc_type=["997", "999"], test=False), to=[PARTNER_OUTBOX]
    )
    rules = outbound_rules("medsupply", [], [catch_all, acks])
    assert [r.name for r in rules] == ["acks"]
    test_ack = route(RouteInput("medsupply", "997", "outbound", test=True), None, rules)
    assert test_ack.unrouted and test_ack.reason == (
        "no rule matches outbound 997 from medsupply: acks: test data, the rule takes production only"
    )


def test_an_850_is_routed_on_its_canonical_purchase_order() -> None:
    urgent = Rule(name="urgent", match=Match(doc_type="850", where=[Predicate(path="po_number", op="matches",
                  value="^URG-")]), to=["audit"])  # fmt: skip
    rules = outbound_rules("medsupply", [], [urgent])
    assert route(RouteInput("medsupply", "850", "outbound"), {**PO, "po_number": "URG-7"}, rules).destinations == (
        "audit",
    )
    missed = route(RouteInput("medsupply", "850", "outbound"), PO, rules)
    assert missed.unrouted and "urgent: po_number matches ^URG- does not hold" in missed.reason


@pytest.mark.parametrize(
    ("doc_type", "path", "refused"),
    [
        ("850", "ordr_date", "purchase_order: no 'ordr_date' (did you mean 'order_date'?)"),
        (["850", "invoice"], "order_date", None),
        (["ack_rejected", "invoice"], "payload.reason", None),  # an alert's payload is not a canonical type
        ("997", "anything.at_all", None),
        (None, "shipment_id", None),
        (None, "shipment_idd", "ship_notice: no 'shipment_idd' (did you mean 'shipment_id'?)"),
    ],
)
def test_predicate_paths_are_checked_against_the_canonical_types_matched(
    doc_type: object, path: str, refused: str | None
) -> None:
    rule = {"name": "r", "match": {"doc_type": doc_type, "where": [{"path": path, "op": "exists"}]}, "to": ["d"]}
    if refused is None:
        Rule.model_validate(rule)
    else:
        with pytest.raises(ValidationError, match=re.escape(refused)):
            Rule.model_validate(rule)
