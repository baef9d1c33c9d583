"""cXML base maps, the XML and CSV sample partners (carelink, coastal), the shared corpus, malformed input.

The golden cases are the specification of the maps; the corpus tests check that real-world cXML and
CSV, which nobody wrote for this project, translate with the values a person reads in the file.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.cases import Case, find_cases, run_case
from gateway.errors import GatewayError
from gateway.mapping.functions import FunctionFailed, standard_functions
from gateway.mapping.library import MapLibrary
from gateway.partners.profile import PartnerDirectory
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace, load_workspace

REPO = Path(__file__).resolve().parents[2]
CXML_MAPS = (
    "cxml-order-request",
    "cxml-confirmation-request",
    "cxml-ship-notice-request",
    "cxml-invoice-detail-request",
)
PARTNERS = ("carelink", "coastal")


def _workspace() -> Workspace:
    return load_workspace(REPO)


def _my_cases() -> list[Case]:
    return [c for c in find_cases(_workspace()) if c.partner in PARTNERS or c.map_name in CXML_MAPS]


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return _workspace()


def translate(ws: Workspace, data: bytes, name: str, partner: str | None = None) -> list[Translation]:
    info = FileInput(name=name, partner_id=partner)
    return [t for t in ws.translator().translate(data, info) if isinstance(t, Translation)]


def only_document(results: list[Translation]) -> Any:
    assert len(results) == 1, results
    result = results[0]
    assert result.ok, [f"{e.code} {e}" for e in result.errors]
    return result.document


# --- golden cases ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", _my_cases(), ids=lambda c: c.name)
def test_golden_case(ws: Workspace, case: Case) -> None:
    result = run_case(ws, case)
    assert result.passed, "\n".join(result.diff)


def test_every_cxml_map_and_sample_partner_has_cases() -> None:
    cases = _my_cases()
    for name in CXML_MAPS:
        assert any(c.map_name == name for c in cases), f"no golden case for {name}"
    for partner in PARTNERS:
        assert len([c for c in cases if c.partner == partner]) >= 3, partner
    multi = [c for c in cases if c.partner == "coastal" and c.expected.read_text().count('"document_type"') >= 2]
    assert multi, "coastal needs a file holding several documents"


def test_cxml_sender_is_found_from_the_from_credential(ws: Workspace) -> None:
    data = (REPO / "partners/carelink/cases/order_bill_only.xml").read_bytes()
    (result,) = translate(ws, data, "order.xml")  # no partner given: found from Header/From/Credential
    assert result.partner == "carelink" and result.map_name == "carelink-order-request"
    doc = result.document
    assert doc is not None and doc.provenance.partner == "carelink"
    assert doc.provenance.test is True and doc.provenance.version == "cXML 1.2.056"
    assert doc.lines[0].lot == "KT3-2611A" and doc.lines[0].serial == "T3L-0004471"


def test_coastal_files_pick_their_map_by_name(ws: Workspace) -> None:
    data = (REPO / "partners/coastal/cases/inv_20260315.csv").read_bytes()
    (result,) = translate(ws, data, "prices.csv", partner="coastal")
    assert not result.ok and result.errors[0].code == "FMT-001"
    assert "no CSV map matching prices.csv" in result.errors[0].message


# --- the shared corpus: cXML ----------------------------------------------------------------


def _order_php(doc: Any) -> None:
    assert doc.po_number == "DO1234" and doc.order_date == date(2000, 10, 12)
    assert doc.provenance.test is True and doc.provenance.version == "cXML 1.2.050"
    assert doc.currency == "EUR" and doc.total.amount == Decimal("85.00")
    assert doc.parties[0].role == "ship_to" and doc.parties[0].name == "Acme"
    assert doc.parties[1].address.country == "DE"
    line = doc.lines[1]
    assert (line.line_number, line.quantity.value, line.quantity.uom) == ("2", Decimal("20"), "EA")
    assert line.unit_price.amount == Decimal("3.20") and line.item.vendor_part == "1233245"
    assert line.requested_delivery == date(2020, 2, 28)


def _order_handling(doc: Any) -> None:
    assert doc.po_number == "acme-1-1" and doc.requested_delivery == date(2025, 1, 28)
    assert doc.provenance.version == "cXML 1.2.060" and doc.provenance.test is True
    (line,) = doc.lines
    assert line.item.vendor_part == line.item.buyer_item == "QA-ACME-AUTOTEST"
    assert line.unit_price.amount == Decimal("10.00") and doc.total.amount == Decimal("10.00")


def _order_ruby(doc: Any) -> None:
    assert doc.po_number == "3309" and doc.total.amount == Decimal("91.71")
    assert [p.role_code for p in doc.parties] == ["ShipTo", "BillTo", "endUser"]
    assert doc.parties[0].ids[0].value == "21444"
    line = doc.lines[1]
    assert line.quantity.value == Decimal("9") and line.unit_price.amount == Decimal("9.29")
    cost_center = next(r for r in line.references if r.qualifier == "Cost Center")
    assert cost_center.value == "c50"
    assert doc.references == []  # the empty <Extrinsic name="legacy_po"/> is no reference


def _order_ruby_200(doc: Any) -> None:
    assert doc.po_number == "6112" and doc.total.amount == Decimal("1505.0")
    assert doc.notes == ["header comment goes here if entered by user"]
    assert doc.parties[1].role == "bill_to" and doc.parties[1].ids[0].value == "142"
    assert [line.quantity.value for line in doc.lines] == [Decimal("1"), Decimal("2")]
    assert doc.lines[0].item.vendor_part == "223-4511"


def _ship_notice_php(doc: Any) -> None:
    assert doc.shipment_id == "S2-123" and doc.notice_date == date(2000, 10, 14)
    assert doc.shipped_at.isoformat() == "2000-10-14T08:30:19-08:00"
    assert doc.carrier == "FDE" and doc.tracking_numbers == ["8202 8261 1194"]
    assert [o.po_number for o in doc.orders] == ["DO1234"] and doc.orders[0].items == []
    assert doc.notes == ["Got it all into one shipment."]


def _invoice_backed_and_unbacked(doc: Any) -> None:
    assert doc.invoice_number == "INVOICENUMBER" and doc.invoice_date == date(2010, 12, 16)
    assert doc.po_number is None  # two InvoiceDetailOrders: the lines carry their PO
    assert [line.po_number for line in doc.lines] == ["E14994", None]  # the second is not PO-backed
    assert doc.lines[0].quantity.value == Decimal("3") and doc.lines[0].unit_price.amount == Decimal("100")
    assert doc.total.amount == Decimal("0") and doc.terms.net_days == 30
    assert doc.references[0].qualifier == "masterAgreement"


def _invoice_multiple_pos(doc: Any) -> None:
    assert doc.invoice_number == "INV00001" and doc.po_number is None
    assert [(line.po_number, line.line_number) for line in doc.lines] == [("2252", "1"), ("2253", "1")]
    assert doc.lines[0].quantity.value == Decimal("2.00") and doc.lines[1].unit_price.amount == Decimal("10")
    shipping = next(c for c in doc.charges if c.code == "D240")
    assert shipping.amount.amount == Decimal("0")


def _invoice_taxes_at_line(doc: Any) -> None:
    assert doc.invoice_number == "3495" and doc.po_number == "123"
    (tax,) = doc.lines[0].taxes
    assert (tax.type_code, tax.amount.amount, tax.percent) == ("CA", Decimal("8"), Decimal("8.25"))
    assert [t.amount.amount for t in doc.taxes] == [Decimal("8")]
    assert {c.description: c.amount.amount for c in doc.charges} == {
        "shipping": Decimal("30"),
        "special handling": Decimal("5"),
    }
    assert doc.total is None  # <NetAmount><Money currency="USD"/></NetAmount>: no amount given


def _invoice_taxes_at_total(doc: Any) -> None:
    assert doc.invoice_number == "3492" and doc.lines[0].taxes == []
    (tax,) = doc.taxes
    assert (tax.type_code, tax.amount.amount, tax.percent) == ("CA", Decimal("8"), Decimal("8.25"))


CXML_CORPUS = {
    "cxml-php__samples_OrderRequest.xml": ("cxml-order-request", _order_php),
    "cxml-php__Handling_order_request.xml": ("cxml-order-request", _order_handling),
    "cxml-ruby__order_request.xml": ("cxml-order-request", _order_ruby),
    "cxml-ruby__purchase_order_request_200.xml": ("cxml-order-request", _order_ruby_200),
    "cxml-php__samples_ShipNoticeRequest.xml": ("cxml-ship-notice-request", _ship_notice_php),
    "cxml-ruby__invoice_backed_and_unbacked_by_pos.xml": ("cxml-invoice-detail-request", _invoice_backed_and_unbacked),
    "cxml-ruby__invoice_backed_by_multiple_pos.xml": ("cxml-invoice-detail-request", _invoice_multiple_pos),
    "cxml-ruby__invoice_taxes_at_line.xml": ("cxml-invoice-detail-request", _invoice_taxes_at_line),
    "cxml-ruby__invoice_taxes_at_total.xml": ("cxml-invoice-detail-request", _invoice_taxes_at_total),
}
#: Request types no map takes: a clear FMT-002 naming what the file carries.
CXML_UNMAPPED = {
    "cxml-php__samples_StatusUpdateRequest.xml": "StatusUpdateRequest",
    "cxml-php__Builder_poom.xml": "PunchOutOrderMessage",
}
#: A mapped request type whose sample carries template placeholders (invoiceDate="invoice_date",
#: currency="currency_code"): it must fail with a located error, not translate.
CXML_PLACEHOLDERS = "cxml-ruby__invoice_taxes_at_line_multiple_taxes.xml"


def test_every_cxml_corpus_file_is_covered(corpus: Path) -> None:
    files = {p.name for p in (corpus / "xml/cxml").glob("*.xml")}
    assert files == set(CXML_CORPUS) | set(CXML_UNMAPPED) | {CXML_PLACEHOLDERS}


@pytest.mark.parametrize("name", sorted(CXML_CORPUS))
def test_cxml_corpus_translates(corpus: Path, ws: Workspace, name: str) -> None:
    map_name, check = CXML_CORPUS[name]
    results = translate(ws, (corpus / "xml/cxml" / name).read_bytes(), name)
    doc = only_document(results)
    assert results[0].map_name == map_name and results[0].partner is None and results[0].base_map
    assert doc.provenance.format == "xml" and doc.provenance.version.startswith("cXML 1.2.")
    check(doc)


@pytest.mark.parametrize("name", sorted(CXML_UNMAPPED))
def test_cxml_corpus_unmapped_request_types_fail_clearly(corpus: Path, ws: Workspace, name: str) -> None:
    (result,) = translate(ws, (corpus / "xml/cxml" / name).read_bytes(), name)
    (error,) = result.errors
    assert error.code == "FMT-002" and error.location.file == name
    assert f"cXML <{CXML_UNMAPPED[name]}>" in error.message and "cxml-order-request" in error.message


def test_cxml_corpus_placeholder_values_give_a_located_error(corpus: Path, ws: Workspace) -> None:
    (result,) = translate(ws, (corpus / "xml/cxml" / CXML_PLACEHOLDERS).read_bytes(), CXML_PLACEHOLDERS)
    (error,) = result.errors
    assert error.code == "MAP-500" and "'invoice_date' is not a date" in error.message
    loc = error.location
    assert (loc.file, loc.line, loc.path) == (CXML_PLACEHOLDERS, 49, "invoice_date")  # the header's line


# --- the shared corpus: CSV through test-local maps -----------------------------------------

ALTO_HEADERS = """\
map: t-alto-etrhdr
document: invoice
description: Bots' alto ETRHDR invoice headers, one invoice per row (header-less, comma)
source:
  format: csv
  dialect:
    header: false
    columns: [InvoiceNo, Account, DateFormat, InvoiceDate, OrderDate, PONumber, Net, Tax, Total]
  group_by: [InvoiceNo]
fields:
  invoice_number: InvoiceNo
  invoice_date: {from: InvoiceDate, fn: date, format: CCYYMMDD}
  po_number: PONumber
  po_date: {from: OrderDate, fn: date, format: CCYYMMDD}
  parties:
    - {role: {const: buyer}, ids: [{qualifier: {const: account}, value: Account}]}
  taxes:
    - amount: {amount: {from: Tax, fn: decimal}}
  total: {amount: {from: Total, fn: decimal}}
"""

# No canonical document is a price catalog: the acknowledgment's lines (item ids and a price, no
# quantity) are the closest fit for a parsing test. The file's own header has "GTIN/EAN", which a
# CSV path cannot name ("/" picks a row), so `columns` renames the header.
PRICAT = """\
map: t-pricat
document: po_acknowledgment
source:
  format: csv
  dialect:
    delimiter: ";"
    header: true
    columns: [GTIN, ArticleNumber, Description, Size, Color, BuyerProductGroup, RetailPrice, DateFrom, PromoPrice, DateUntil]
fields:
  po_number: {const: pricat-articledata01}
  acknowledgment_date: {from: DateFrom, fn: date, format: DD-MM-CCYY}
  currency: {const: EUR}
  lines:
    each: rows
    value:
      line_number: BuyerProductGroup
      unit_price:
        amount: {first_of: [PromoPrice, RetailPrice], fn: decimal_comma}
        currency: {const: EUR}
      item:
        gtin: GTIN
        vendor_part: ArticleNumber
        other: [{qualifier: {const: color}, value: Color}, {qualifier: {const: size}, value: Size}]
"""


def _csv_translator(catalog: Any, map_text: str) -> Translator:
    lib = MapLibrary.build({"test-map.yaml": map_text}, {}, catalog, standard_functions())
    return Translator(catalog, lib, PartnerDirectory([]))


def _csv(translator: Translator, data: bytes, name: str, map_name: str) -> list[Translation]:
    return list(translator.csv(data, FileInput(name=name, map_name=map_name)))


def test_corpus_alto_invoice_headers(corpus: Path, catalog: Any) -> None:
    name = "botsplugins__alto_ETRHDR.csv"
    results = _csv(_csv_translator(catalog, ALTO_HEADERS), (corpus / "csv" / name).read_bytes(), name, "t-alto-etrhdr")
    assert [r.ok for r in results] == [True] * 4
    first, last = results[0].document, results[-1].document
    assert (first.invoice_number, first.po_number) == ("102561333", "P313455")
    assert (first.invoice_date, first.po_date) == (date(2009, 9, 18), date(2009, 9, 14))
    assert first.taxes[0].amount.amount == Decimal("42.15") and first.total.amount == Decimal("379.37")
    assert first.parties[0].ids[0].value == "102627752"
    assert (last.invoice_number, last.total.amount) == ("102561343", Decimal("2045.93"))


def test_corpus_pricat_semicolon_with_header(corpus: Path, catalog: Any) -> None:
    name = "botsplugins__pricat_articledata01.csv"
    (result,) = _csv(_csv_translator(catalog, PRICAT), (corpus / "csv" / name).read_bytes(), name, "t-pricat")
    assert result.ok, result.errors
    doc = result.document
    assert doc.acknowledgment_date == date(2008, 6, 30)  # "       30-06-2008": padding trimmed
    assert [line.line_number for line in doc.lines] == ["1234567890XXX", "1234567891XXX", "1234567892XXX"]
    assert [line.unit_price.amount for line in doc.lines] == [Decimal("40"), Decimal("40"), Decimal("30.00")]
    first = doc.lines[0].item
    assert (first.gtin, first.vendor_part) == ("8712345678906", "123456")
    assert [(o.qualifier, o.value) for o in first.other] == [("color", "white"), ("size", "L")]
    assert [o.qualifier for o in doc.lines[1].item.other] == ["size"]  # the empty colour cell is absent


# --- malformed input: located errors --------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE cXML [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<cXML><Request><OrderRequest><OrderRequestHeader orderID="&lol3;"/></OrderRequest></Request></cXML>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE cXML [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<cXML><Request><OrderRequest><OrderRequestHeader orderID="&secret;"/></OrderRequest></Request></cXML>
"""

NOT_WELL_FORMED = b"""<?xml version="1.0"?>
<cXML>
  <Request><OrderRequest></Request>
</cXML>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_declarations_are_refused_with_their_place(ws: Workspace, data: bytes) -> None:
    (result,) = translate(ws, data, "evil.xml")
    (error,) = result.errors
    assert error.code == "XML-001" and result.document is None
    assert error.location.file == "evil.xml" and error.location.byte_offset == data.index(b"<!ENTITY")
    assert "/etc/passwd" not in str(error)


def test_not_well_formed_xml_names_the_line(ws: Workspace) -> None:
    (result,) = translate(ws, NOT_WELL_FORMED, "broken.xml")
    (error,) = result.errors
    assert error.code == "XML-002" and error.location.file == "broken.xml"
    assert "at line 3" in error.message


def test_bad_decimal_comma_fails_its_invoice_with_file_line_and_path(ws: Workspace) -> None:
    header = "InvoiceNo;InvoiceDate;DocType;PONumber;PODate;Currency;LineNo;ItemNo;Description;Qty;UOM;UnitPrice;"
    header += "LineAmount;TaxRate;TaxAmount;Freight;InvoiceTotal"
    rows = [
        header,
        "T-1;01.04.2026;RE;MGH-1;30.03.2026;USD;1;CMS-GLV-NIT-L;Gloves;2;BX;41,75;83,50;;;;83,50",
        "T-2;01.04.2026;RE;MGH-2;30.03.2026;USD;1;CMS-GLV-NIT-L;Gloves;1;BX;41,75;41,75;;;;41,75",
        "T-2;01.04.2026;RE;MGH-2;30.03.2026;USD;2;CMS-DRP-SURG-2;Drape;1;CS;69.00;69,00;;;;41,75",
    ]
    results = translate(ws, ("\n".join(rows) + "\n").encode(), "inv_test.csv", partner="coastal")
    assert [r.ok for r in results] == [True, False]  # the good invoice is not sunk by its neighbour
    (error,) = results[1].errors
    assert isinstance(error, GatewayError) and error.code == "MAP-500"
    assert "'69.00' is not a decimal-comma number" in error.message and "reading UnitPrice" in error.message
    loc = error.location
    assert (loc.file, loc.partner, loc.line, loc.path) == ("inv_test.csv", "coastal", 4, "lines[1].unit_price.amount")


def test_ragged_csv_row_is_located(ws: Workspace) -> None:
    data = b"InvoiceNo;InvoiceDate\nT-1;01.04.2026;extra\n"
    (result,) = translate(ws, data, "inv_short.csv", partner="coastal")
    (error,) = result.errors
    assert error.code == "CSV-004" and error.location.file == "inv_short.csv"
    assert "line 2 has 3 values" in error.message


# --- engine pieces these maps rely on -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.234,56", "1234.56"), ("1 234,56", "1234.56"), ("41,75", "41.75"), ("25", "25"), ("12,50-", "-12.50")],
)
def test_decimal_comma_reads_locale_numbers(text: str, expected: str) -> None:
    fn = standard_functions().get("decimal_comma")
    assert fn is not None and fn.fn(text, fn.params(), None) == Decimal(expected)


@pytest.mark.parametrize("text", ["12.40", "12,4O", "1.23,4", "-1,0-", ""])
def test_decimal_comma_refuses_what_it_would_misread(text: str) -> None:
    fn = standard_functions().get("decimal_comma")
    assert fn is not None
    with pytest.raises(FunctionFailed, match="not a decimal-comma number"):
        fn.fn(text, fn.params(), None)


def test_first_of_takes_inline_function_parameters(catalog: Any) -> None:
    text = """\
map: t-first-of
document: purchase_order
source: {format: xml, documents: /Order}
tables: {kinds: {codes: {new: original, upd: replace}}}
fields:
  po_number: "@id"
  order_date: {first_of: ["@date", "@created"], fn: date}
  purpose: {first_of: ["@kind", "@type"], fn: table, table: kinds}
"""
    lib = MapLibrary.build({"t.yaml": text}, {}, catalog, standard_functions())
    tr = Translator(catalog, lib, PartnerDirectory([]))
    data = b'<Order id="7" created="2026-01-02" type="upd"/>'
    (result,) = list(tr.xml(data, FileInput("t.xml", map_name="t-first-of")))
    assert result.ok, result.errors
    assert (result.document.order_date, result.document.purpose) == (date(2026, 1, 2), "replace")
