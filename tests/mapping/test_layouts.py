"""Export layouts (CSV, fixed width, XML): the shipped examples against their cases, the compiler's
located problems, and each way a document can fail to fit a layout."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.mapping.problems import MapLoadError
from gateway.outbound import RenderError
from gateway.outbound.functions import outbound_functions
from gateway.outbound.layout import Layout, build_layouts
from gateway.outbound.layout_render import parse_document, render_layout
from gateway.outbound_loader import load_layouts

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "maps" / "outbound" / "cases"
INVOICE = json.loads((CASES / "ap-invoice-lines-csv" / "invoice.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def shipped() -> dict[str, Layout]:
    return load_layouts(REPO)


def layout(text: str) -> Layout:
    """One layout compiled from YAML text (problems raise MapLoadError)."""
    found = build_layouts({"maps/outbound/t.yaml": textwrap.dedent(text)}, {}, outbound_functions())
    return next(iter(found.values()))


def problems(text: str) -> list[str]:
    with pytest.raises(MapLoadError) as caught:
        layout(text)
    return [str(p) for p in caught.value.problems]


def render(lay: Layout, doc: dict[str, Any]) -> bytes:
    return render_layout(lay, parse_document(lay, doc))


def failures(lay: Layout, doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RenderError) as caught:
        render(lay, doc)
    return [(e.code, e.location.path or "") for e in caught.value.errors]


def test_the_shipped_layouts_write_their_cases_byte_for_byte(shipped: dict[str, Layout]) -> None:
    cases = sorted(CASES.glob("*/*.json"))
    assert {c.parent.name for c in cases} == set(shipped) == {"ap-invoice-lines-csv", "po-receipt-fixed", "asn-xml"}
    for case in cases:
        lay = shipped[case.parent.name]
        expected = case.with_suffix(".expected").read_bytes()
        assert render(lay, json.loads(case.read_text("utf-8"))) == expected, case


def test_the_ap_csv_has_a_header_and_one_row_per_invoice_line(shipped: dict[str, Layout]) -> None:
    rows = render(shipped["ap-invoice-lines-csv"], INVOICE).decode().split("\r\n")
    assert rows[0].startswith("VendorId,InvoiceNumber,InvoiceDate,DocumentType,PONumber,LineNumber")
    assert len(rows) == 1 + len(INVOICE["lines"]) + 1 and rows[-1] == ""
    assert rows[2].split(",")[9:12] == ["30", "CA", "64.10"]  # format_number places: 2 keeps the cents


def test_the_fixed_width_records_have_their_declared_widths(shipped: dict[str, Layout]) -> None:
    lay = shipped["po-receipt-fixed"]
    doc = json.loads((CASES / "po-receipt-fixed" / "several-lines.json").read_text("utf-8"))
    lines = render(lay, doc).decode("ascii").split("\r\n")[:-1]
    widths = [sum(f.width or 0 for f in r.fields) for r in lay.records]
    assert [len(line) for line in lines] == [widths[0]] + [widths[1]] * len(doc["lines"])
    assert lines[1][29:49].rstrip() == "200311" and lines[1][49:61] == "000000020000"


def test_the_xml_asn_is_well_formed_in_its_namespace(shipped: dict[str, Layout]) -> None:
    doc = json.loads((CASES / "asn-xml" / "pack-items.json").read_text("utf-8"))
    root = etree.fromstring(render(shipped["asn-xml"], doc))
    ns = {"a": "urn:hospital-edi-gateway:asn:1"}
    assert root.get("shipmentId") == doc["shipment_id"]
    serials = root.xpath("//a:Pack/a:Item/a:Serial/text()", namespaces=ns)
    assert serials == ["SN-7781002"]


FIXED = """
    map: t
    document: invoice
    target: {format: fixed}
    each: lines
    fields:
      - {name: Item, value: item.vendor_part, width: 8}
      - {name: Price, value: {from: unit_price.amount, fn: format_number, places: 2}, width: 8, align: right, pad: "0"}
"""


def test_a_value_longer_than_its_field_fails_the_document_and_is_never_cut() -> None:
    found = failures(layout(FIXED), INVOICE)
    assert ("LAY-001", "lines[0].item.vendor_part") in found  # NW-GAUZE-44 is 11 wide
    assert all(code == "LAY-001" for code, _ in found)


def test_negative_amounts_keep_their_sign_in_front_of_zero_padding() -> None:
    doc = json.loads(json.dumps(INVOICE))
    doc["lines"] = [doc["lines"][0]]
    doc["lines"][0]["item"]["vendor_part"] = "G44"
    doc["lines"][0]["unit_price"]["amount"] = "-12.5"
    assert render(layout(FIXED), doc) == b"G44     -0012.50\r\n"


def test_a_value_finer_than_the_places_fails_rather_than_rounding() -> None:
    doc = json.loads(json.dumps(INVOICE))
    doc["lines"][1]["unit_price"]["amount"] = str(Decimal("64.105"))
    doc["lines"] = doc["lines"][1:2]
    doc["lines"][0]["item"]["vendor_part"] = "IV"
    assert failures(layout(FIXED), doc) == [("LAY-002", "lines[0].unit_price.amount")]


def test_required_empty_control_characters_and_encoding_are_located() -> None:
    lay = layout("""
        map: t
        document: invoice
        target: {format: fixed, encoding: ascii}
        fields:
          - {name: PO, value: po_number, width: 20, required: true}
          - {name: Name, value: "parties[role=bill_to].name", width: 40}
          - {name: Note, value: notes.0, width: 10}
    """)
    doc = json.loads(json.dumps(INVOICE))
    doc["po_number"] = None
    doc["parties"][1]["name"] = "LAKESIDE HÔPITAL"
    doc["notes"] = ["a\nb"]
    assert sorted(failures(lay, doc)) == [
        ("LAY-004", "po_number"),
        ("LAY-005", "notes.0"),
        ("LAY-006", "parties[role=bill_to].name"),
    ]


def test_a_document_of_another_type_is_refused() -> None:
    lay = layout(FIXED)
    with pytest.raises(RenderError) as caught:
        parse_document(lay, {"document_type": "ship_notice"})
    assert caught.value.code == "LAY-007"
    broken = {**INVOICE, "invoice_date": "yesterday"}
    with pytest.raises(RenderError) as caught:
        parse_document(lay, broken)
    assert caught.value.code == "LAY-008" and caught.value.location.path == "invoice_date"


def test_csv_quotes_what_needs_quoting_and_honours_the_delimiter() -> None:
    lay = layout("""
        map: t
        document: invoice
        target: {format: csv, delimiter: ";", header: false, line_ending: lf}
        each: lines
        fields:
          - {name: D, value: description}
          - {name: Q, value: {from: quantity.value, fn: format_number}}
    """)
    doc = json.loads(json.dumps(INVOICE))
    doc["lines"] = doc["lines"][:1]
    doc["lines"][0]["description"] = 'GAUZE; "STERILE"'
    assert render(lay, doc) == b'"GAUZE; ""STERILE""";20\n'


def test_every_problem_in_a_layout_is_reported_at_once_with_its_place() -> None:
    found = problems("""
        map: t
        document: invoice
        target: {format: fixed, delimiter: ","}
        each: line
        fields:
          - {name: A, value: invoice_date, width: 8}
          - {name: B, value: invoice_numbr, width: 0}
          - {name: C, value: po_number, width: 4, align: middle}
    """)
    text = "\n".join(found)
    assert "t.yaml:4:" in text and "MAP-640" in text  # delimiter is for csv
    assert "MAP-610" in text and "did you mean lines?" in text
    found = problems("""
        map: t
        document: invoice
        target: {format: fixed}
        fields:
          - {name: A, value: invoice_date, width: 8}
          - {name: B, value: invoice_numbr, width: 0}
          - {name: C, value: po_number, width: 4, align: middle}
    """)
    text = "\n".join(found)
    assert "MAP-612" in text and "format_date" in text  # a date needs a formatting function
    assert "did you mean invoice_number?" in text
    assert text.count("MAP-643") == 2


def test_xml_names_and_csv_header_with_several_records_are_refused() -> None:
    text = "\n".join(
        problems("""
        map: t
        document: invoice
        target: {format: xml}
        root:
          name: 1Invoice
          children: [{name: Line, each: invoice_number}]
    """)
    )
    assert "MAP-646" in text and "MAP-644" in text
    text = "\n".join(
        problems("""
        map: t
        document: invoice
        target: {format: csv}
        records:
          - {fields: [{name: A, value: invoice_number}]}
          - {each: lines, fields: [{name: B, value: line_number}]}
    """)
    )
    assert "MAP-645" in text


def test_x12_outbound_maps_ignore_layouts_and_layouts_ignore_x12_maps(catalog: Any) -> None:
    from gateway.outbound_loader import load_outbound

    library = load_outbound(REPO, catalog)
    assert "ap-invoice-lines-csv" not in library.maps and "x12-850-004010-out" in library.maps
    assert "x12-850-004010-out" not in load_layouts(REPO)


def test_a_layout_header_is_checked_as_an_outbound_maps_is() -> None:
    """One check for `map:` and `document:` (gateway.outbound.compiler.check_header): the same MAP-602 as an
    X12 outbound map for a missing name and for an unknown document type."""
    found = problems("""
        document: invoice
        target: {format: csv}
        fields: [{name: A, value: invoice_number}]
    """)
    assert any("MAP-602 a layout needs a `map:` name" in line for line in found), found
    assert not any("MAP-601" in line for line in found), found
    found = problems("""
        map: t
        document: invoce
        target: {format: csv}
        fields: [{name: A, value: invoice_number}]
    """)
    assert any("MAP-602 `document` must be one of" in line and "did you mean invoice?" in line for line in found)
