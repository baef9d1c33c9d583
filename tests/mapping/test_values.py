"""Values the base maps used to drop or invent (issue 9, "Values that are dropped or invented").

Each test builds a small file of its own (the shapes come from public files in ../shared/corpus:
``CTP**UCP`` with PO104 empty, ``PO4*4*4*EA``, ``ITD*01*3*1.000**15**16``, ``FOB*DF*AC*...``,
order-level REF and N1*BY in an 856, two cXML DeliverTo lines) and checks the canonical value.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ISA_5010, REPO, control_sequence, interchange

from gateway.canonical import AckBucket, AckType
from gateway.mapping.functions import EvalContext, FunctionFailed
from gateway.mapping.problems import MapLoadError
from gateway.outbound import outbound_functions, render_850
from gateway.outbound_loader import load_outbound
from gateway.partners.profile import PartnerDirectory, Profile
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace, load_workspace
from gateway.x12.validate.validator import Validator

ISA_US = "ISA*00*          *00*          *ZZ*USBUYER        *ZZ*RECEIVER       *261123*1200*U*00401*000000905*0*P*>"


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return load_workspace(REPO)


def _translate(ws: Workspace, data: bytes, *, profiles: list[Profile] | None = None, name: str = "t.edi") -> Any:
    translator = Translator(ws.catalog, ws.library, PartnerDirectory(profiles or []))
    results = [t for t in translator.translate(data, FileInput(name)) if isinstance(t, Translation)]
    assert len(results) == 1, results
    (result,) = results
    assert result.ok, result.errors
    return result.document


def _po(lines: list[str], header: list[str] | None = None, version: str = "004010") -> bytes:
    body = ["BEG*00*SA*PO-9**20261201", *(header or []), *lines, f"CTT*{sum(1 for x in lines if x[:4] == 'PO1*')}"]
    isa = ISA_5010 if version == "005010" else ISA_US
    return interchange([body], version=version, isa=isa)


# --- 1. prices in CTP ------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["004010", "005010"])
def test_ctp_unit_price_when_po104_is_empty_and_contract_price_kept(ws: Workspace, version: str) -> None:
    doc = _translate(
        ws,
        _po(
            [
                "PO1*1*10*EA***VN*GLV-1",
                "CTP**UCP*16.09",
                "CTP**CON*15.5",
                "CTP*RS*RES*29.95",
                "CTP******DIS*.57",
                "PO1*2*1*EA*4.25**VN*SYR-1",
                "CTP**UCP*9.99",
            ],
            version=version,
        ),
    )
    first, second = doc.lines
    assert first.unit_price.amount == Decimal("16.09")  # PO104 empty: CTP*UCP
    assert first.contract_price.amount == Decimal("15.5")
    assert [(p.qualifier, p.amount.amount if p.amount else None) for p in first.prices] == [
        ("UCP", Decimal("16.09")),
        ("CON", Decimal("15.5")),
        ("RES", Decimal("29.95")),
        (None, None),
    ]
    assert first.prices[2].class_of_trade == "RS"
    assert (first.prices[3].multiplier_qualifier, first.prices[3].multiplier) == ("DIS", Decimal(".57"))
    assert second.unit_price.amount == Decimal("4.25")  # PO104 wins over CTP
    assert second.contract_price is None


# --- 2. no invented currency -------------------------------------------------------------------


def test_no_currency_without_cur(ws: Workspace) -> None:
    doc = _translate(ws, _po(["PO1*1*10*EA*2.5**VN*A"]))
    assert doc.currency is None and doc.lines[0].unit_price.currency is None
    assert "currency" not in doc.model_dump(exclude_none=True)


def test_cur_is_read(ws: Workspace) -> None:
    doc = _translate(ws, _po(["PO1*1*10*EA*2.5**VN*A"], header=["CUR*BY*CAD"]))
    assert doc.currency == "CAD"


def _profile(currency: str | None) -> Profile:
    return Profile.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "currency": currency,
            "x12": {"production": {"qualifier": "ZZ", "id": "USBUYER"}},
        }
    )


def test_profile_currency_applies_to_documents_with_amounts(ws: Workspace) -> None:
    doc = _translate(ws, _po(["PO1*1*10*EA*2.5**VN*A"]), profiles=[_profile("EUR")])
    assert doc.currency == "EUR"
    doc = _translate(ws, _po(["PO1*1*10*EA*2.5**VN*A"], header=["CUR*BY*CAD"]), profiles=[_profile("EUR")])
    assert doc.currency == "CAD"  # the file's own word wins


def test_profile_currency_never_on_a_document_without_amounts(ws: Workspace) -> None:
    doc = _translate(ws, _po(["PO1*1*10*EA***VN*A"]), profiles=[_profile("EUR")])
    assert doc.currency is None
    body = ["BSN*00*S1*20261201*1200", "HL*1**S", "HL*2*1*O", "PRF*PO-1", "HL*3*2*I", "LIN*1*VN*X-1", "SN1**1*EA"]
    notice = _translate(ws, interchange([body], functional_id="SH", isa=ISA_US), profiles=[_profile("EUR")])
    assert notice.currency is None


@pytest.mark.parametrize("bad", ["usd", "US", "EURO", "12A"])
def test_profile_currency_is_validated(bad: str) -> None:
    with pytest.raises(ValueError, match="currency"):
        _profile(bad)


def test_no_base_map_or_partner_map_defaults_a_currency() -> None:
    for path in [*REPO.glob("maps/**/*.yaml"), *REPO.glob("partners/*/maps/*.yaml")]:
        assert "default: USD" not in path.read_text("utf-8"), path


# --- 4. losses seen in public files --------------------------------------------------------------


@pytest.mark.parametrize("version", ["004010", "005010"])
def test_850_pack_size_terms_and_fob(ws: Workspace, version: str) -> None:
    doc = _translate(
        ws,
        _po(
            ["PO1*1*4*EA*2**VN*A", "PO4*4*4*EA*PLT94**6*LR*19*CT"],
            header=["FOB*DF*AC*PPD+ADD LP STORE", "ITD*01*3*1.000**15**16*****1/15 NET 30"],
            version=version,
        ),
    )
    pack = doc.lines[0].pack
    assert (pack.pack, pack.size.value, pack.size.uom, pack.packaging_code) == (
        Decimal(4),
        Decimal(4),
        "EA",
        "PLT94",
    )
    assert (pack.gross_weight.value, pack.gross_weight.uom) == (Decimal(6), "LR")
    terms = doc.terms
    assert (terms.type_code, terms.basis_date_code, terms.discount_percent, terms.discount_days, terms.net_days) == (
        "01",
        "3",
        Decimal("1.000"),
        15,
        16,
    )
    assert terms.description == "1/15 NET 30"
    assert (doc.fob.payment_method, doc.fob.location_qualifier, doc.fob.location) == ("DF", "AC", "PPD+ADD LP STORE")


def test_810_terms_dates_and_discount_amount(ws: Workspace) -> None:
    body = [
        "BIG*20261201*INV-1**PO-1",
        "ITD*01*2*1*20020608*15*20020623*30*1250",
        "FOB*PP",
        "IT1*1*2*EA*5**VN*A",
        "TDS*1000",
        "CTT*1",
    ]
    doc = _translate(ws, interchange([body], functional_id="IN", isa=ISA_US))
    terms = doc.terms
    assert (terms.discount_due_date, terms.net_due_date) == (date(2002, 6, 8), date(2002, 6, 23))
    assert terms.discount_amount.amount == Decimal("12.50")  # ITD08 is N2
    assert doc.fob.payment_method == "PP"


def test_856_order_level_references_and_parties(ws: Workspace) -> None:
    body = [
        "BSN*00*S1*20261201*1200",
        "HL*1**S",
        "REF*BM*BOL-1",
        "HL*2*1*O",
        "PRF*PO-1",
        "REF*IA*VENDOR-77",
        "N1*BY*MERCY GENERAL*92*MGH01",
        "HL*3*2*I",
        "LIN*1*VN*X-1",
        "SN1**1*EA",
        "REF*LT*LOT-1",
    ]
    doc = _translate(ws, interchange([body], functional_id="SH", isa=ISA_US))
    (order,) = doc.orders
    assert [(r.qualifier, r.value) for r in order.references] == [("IA", "VENDOR-77")]
    assert [(p.role, p.role_code, p.name, p.ids[0].value) for p in order.parties] == [
        ("buyer", "BY", "MERCY GENERAL", "MGH01")
    ]
    assert [r.qualifier for r in doc.references] == ["BM"]  # the shipment's REF stays the shipment's


@pytest.mark.parametrize(
    ("version", "note"), [("004010", "MSG*DISCONTINUED BY MFR"), ("005010", "MTX**DISCONTINUED BY MFR")]
)
def test_855_line_reason_text(ws: Workspace, version: str, note: str) -> None:
    body = [
        "BAK*00*AC*PO-1*20261201",
        "PO1*1*3*EA*4.50**VN*X-1",
        "ACK*IR*3*EA",
        "N9*L1*REASON",
        note,
        "PO1*2*1*EA*9**VN*X-2",
        "ACK*IA*1*EA",
    ]
    isa = ISA_5010 if version == "005010" else ISA_US
    doc = _translate(ws, interchange([body], functional_id="PR", version=version, isa=isa))
    assert doc.lines[0].notes == ["DISCONTINUED BY MFR"]
    assert doc.lines[1].notes == []


# --- cXML ---------------------------------------------------------------------------------------


def _cxml(request: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<cXML payloadID="p@x" timestamp="2026-12-01T10:00:00-05:00"><Header>'
        '<From><Credential domain="NetworkID"><Identity>AN-TEST-1</Identity></Credential></From>'
        '<To><Credential domain="NetworkID"><Identity>AN-TEST-2</Identity></Credential></To>'
        '<Sender><Credential domain="NetworkID"><Identity>AN-TEST-1</Identity></Credential>'
        "<UserAgent>t</UserAgent></Sender></Header>"
        f'<Request deploymentMode="production">{request}</Request></cXML>'
    ).encode()


def _confirmation(header_type: str, items: str) -> bytes:
    return _cxml(
        f'<ConfirmationRequest><ConfirmationHeader type="{header_type}" noticeDate="2026-12-01" operation="new"/>'
        f'<OrderReference orderID="PO-1"/>{items}</ConfirmationRequest>'
    )


def _item_in(part: str) -> str:
    return f'<ItemIn quantity="1"><ItemID><SupplierPartID>{part}</SupplierPartID></ItemID></ItemIn>'


def test_cxml_detail_with_every_status_accept_is_accepted_without_substitutes(ws: Workspace) -> None:
    items = "".join(
        f'<ConfirmationItem quantity="1" lineNumber="{n}"><UnitOfMeasure>EA</UnitOfMeasure>'
        f'<ConfirmationStatus type="accept" quantity="1"><UnitOfMeasure>EA</UnitOfMeasure>{_item_in(part)}'
        "</ConfirmationStatus></ConfirmationItem>"
        for n, part in ((1, "A-1"), (2, "B-2"))
    )
    doc = _translate(ws, _confirmation("detail", items), name="c.xml")
    assert (doc.ack_type, doc.ack_type_code) == (AckType.ACCEPTED, "detail")
    assert [line.item.vendor_part for line in doc.lines] == ["A-1", "B-2"]
    assert all(s.substitute_item is None for line in doc.lines for s in line.statuses)
    assert doc.currency is None  # no Money anywhere: no currency


def test_cxml_detail_with_a_real_substitute_and_a_reason(ws: Workspace) -> None:
    items = (
        '<ConfirmationItem quantity="2" lineNumber="1"><UnitOfMeasure>EA</UnitOfMeasure>'
        f'<ConfirmationStatus type="accept" quantity="1"><UnitOfMeasure>EA</UnitOfMeasure>{_item_in("A-1")}'
        "</ConfirmationStatus>"
        f'<ConfirmationStatus type="detail" quantity="1"><UnitOfMeasure>EA</UnitOfMeasure>{_item_in("A-1-ALT")}'
        "<Comments>Substituted: original on allocation.</Comments></ConfirmationStatus></ConfirmationItem>"
    )
    doc = _translate(ws, _confirmation("detail", items), name="c.xml")
    assert doc.ack_type == AckType.ACCEPTED_WITH_CHANGE
    (line,) = doc.lines
    assert line.item.vendor_part == "A-1"
    accepted, changed = line.statuses
    assert accepted.bucket == AckBucket.ACCEPTED and accepted.substitute_item is None
    assert changed.substitute_item.vendor_part == "A-1-ALT"
    assert line.notes == ["Substituted: original on allocation."]


def test_cxml_second_deliver_to_line_is_kept(ws: Workspace) -> None:
    order = (
        '<OrderRequest><OrderRequestHeader orderID="PO-1" orderDate="2026-12-01" type="new">'
        '<ShipTo><Address addressID="D2"><Name>Mercy</Name><PostalAddress>'
        "<DeliverTo>Receiving Dock 2</DeliverTo><DeliverTo>Attn: Cath Lab</DeliverTo>"
        "<Street>1 Main St</Street><City>Springfield</City></PostalAddress></Address></ShipTo>"
        "</OrderRequestHeader>"
        '<ItemOut quantity="1" lineNumber="1"><ItemID><SupplierPartID>A</SupplierPartID></ItemID>'
        '<ItemDetail><UnitPrice><Money currency="USD">1.00</Money></UnitPrice><Description>a</Description>'
        "<UnitOfMeasure>EA</UnitOfMeasure></ItemDetail></ItemOut></OrderRequest>"
    )
    doc = _translate(ws, _cxml(order), name="o.xml")
    assert doc.parties[0].contact == "Receiving Dock 2, Attn: Cath Lab"
    assert doc.currency is None and doc.lines[0].unit_price.currency == "USD"  # stated on the amount only


# --- the public files the losses were seen in ---------------------------------------------------


def _corpus_docs(ws: Workspace, path: Path) -> list[Any]:
    translator = Translator(ws.catalog, ws.library, PartnerDirectory([]))
    results = [t for t in translator.translate(path.read_bytes(), FileInput(path.name)) if isinstance(t, Translation)]
    assert results and all(t.ok for t in results), [t.errors for t in results]
    return [t.document for t in results]


@pytest.mark.corpus
def test_corpus_vics_850_prices_pack_terms_fob(corpus: Path, ws: Workspace) -> None:
    """PO104 empty and the price in CTP*UCP; CTP*RES; PO4; FOB; ITD; CUR*BY*CAD."""
    po = _corpus_docs(ws, corpus / "x12" / "850" / "botsplugins__850-004010VICS-01.x12")[0]
    line = po.lines[0]
    assert line.unit_price.amount == Decimal("34.98")
    assert [(p.qualifier, p.amount.amount) for p in line.prices] == [
        ("UCP", Decimal("34.98")),
        ("RES", Decimal("69.95")),
    ]
    assert (line.pack.pack, line.pack.inner_pack) == (Decimal(1), Decimal(1))
    assert (po.fob.payment_method, po.fob.location) == ("PP", "BAY DC-MDC")
    assert (po.terms.type_code, po.terms.discount_percent, po.terms.discount_days, po.terms.net_days) == (
        "08",
        Decimal("2.5"),
        45,
        100,
    )
    assert po.currency == "CAD"


@pytest.mark.corpus
def test_corpus_crossdock_856_order_level_ref_and_buyer(corpus: Path, ws: Workspace) -> None:
    notice = _corpus_docs(ws, corpus / "x12" / "856" / "ediengine__856.Crossdock.OK.edi")[0]
    assert [(o.po_number, [(r.qualifier, r.value) for r in o.references]) for o in notice.orders] == [
        ("POREF00", [("IV", "0000021")]),
        ("POREF01", [("IV", "0000022")]),
    ]
    assert [(p.role, p.name) for o in notice.orders for p in o.parties] == [("buyer", "STORE"), ("buyer", "SRTORE")]
    assert notice.currency is None


@pytest.mark.corpus
def test_corpus_cxml_two_deliver_to_lines(corpus: Path, ws: Workspace) -> None:
    order = _corpus_docs(ws, corpus / "xml" / "cxml" / "cxml-php__Handling_order_request.xml")[0]
    assert {p.role_code: p.contact for p in order.parties}["ShipTo"] == "ACME, TEST.USA"


# --- what the inbound maps now read, the outbound maps write back -------------------------------


@pytest.mark.parametrize("version", ["004010", "005010"])
def test_new_po_values_round_trip_through_the_outbound_maps(ws: Workspace, version: str) -> None:
    source = _po(
        [
            "PO1*1*4*EA*2**VN*A",
            "CTP**CON*1.75",
            "CTP*RS*RES*3.99",
            "CTP******DIS*.57",
            "PO4*12*100*EA*CTN25*G*6.5*LB*******3",
            "PO1*2*1*EA***VN*B",
            "CTP**UCP*16.09",
        ],
        header=["CUR*BY*USD", "FOB*DF*OR*DOCK 4*01*EXW", "ITD*01*3*2*20261210*10*20261230*30*1250****2% 10 NET 30"],
        version=version,
    )
    po = _translate(ws, source)
    outbound = load_outbound(REPO, ws.catalog)
    partner = Profile.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "x12": {
                "version": version,
                "production": {"qualifier": "ZZ", "id": "ACME"},
                "us": {"qualifier": "ZZ", "id": "MERCYHOSP"},
            },
        }
    )
    sent = render_850(
        po,
        partner,
        outbound.for_partner(partner, "850"),
        control_numbers=control_sequence(),
        when=datetime(2026, 12, 1),
    )
    report = Validator(ws.catalog).validate(sent)
    assert all(s.accepted for ic in report.interchanges for g in ic.groups for s in g.sets), sent.decode()
    back = _translate(ws, sent)
    keep = {"lines", "terms", "fob", "currency"}
    assert back.model_dump(include=keep) == po.model_dump(include=keep)
    assert po.terms.discount_amount.amount == Decimal("12.50") and po.lines[0].pack.inner_pack == Decimal(3)


def test_format_implied_never_rounds() -> None:
    registry = outbound_functions()
    fn = registry.get("format_implied")
    assert fn is not None
    params = fn.params.model_validate({})
    assert fn.fn(Decimal("12.5"), params, EvalContext()) == "1250"
    assert fn.fn(Decimal("-0.07"), params, EvalContext()) == "-7"
    with pytest.raises(FunctionFailed, match="more than 2 decimal places"):
        fn.fn(Decimal("12.505"), params, EvalContext())


def test_a_bad_profile_currency_is_a_located_load_problem(tmp_path: Path) -> None:
    (tmp_path / "partners").mkdir()
    (tmp_path / "partners" / "acme.yaml").write_text(
        "id: acme\nname: Acme\ncurrency: usd\nx12:\n  production: {qualifier: ZZ, id: ACME}\n"
    )
    with pytest.raises(MapLoadError) as err:
        load_workspace(tmp_path)
    (problem,) = err.value.problems
    assert problem.code == "PRT-003" and problem.path == "currency"
    assert (problem.mark.source, problem.mark.line) == ("partners/acme.yaml", 3)
