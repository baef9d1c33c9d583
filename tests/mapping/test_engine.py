"""The map engine: load-time checks, extends, functions, run-time failures, the scope tree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.mapping.functions import CodeTable, EvalContext, FunctionFailed, standard_functions
from gateway.mapping.library import MapLibrary
from gateway.mapping.marked import load_marked
from gateway.mapping.problems import MapLoadError
from gateway.mapping.x12scope import build_scopes
from gateway.partners.profile import PartnerDirectory
from gateway.translate import FileInput, Translation, Translator
from gateway.x12.sets import iter_transaction_sets

BASE = """\
map: t-850
document: purchase_order
source: {format: x12, set: "850", version: "004010"}
fields:
  po_number: BEG03
  order_date: {from: BEG05, fn: date}
  lines:
    each: PO1
    value:
      line_number: PO101
      quantity: {value: {from: PO102, fn: decimal}, uom: PO103}
      unit_price: {amount: {from: PO104, fn: decimal}}
      item: {item_ids: PO1}
      description: "PID[PID01=F]/PID05"
"""

TABLES = {"item_qualifiers.yaml": "table: item_qualifiers\ncodes: {VN: vendor_part, IN: buyer_item, UP: gtin}\n"}


def build(catalog, maps: dict[str, str]) -> MapLibrary:
    return MapLibrary.build(maps, TABLES, catalog, standard_functions())


def translate(catalog, lib: MapLibrary, data: bytes, map_name: str = "t-850") -> list[Translation]:
    tr = Translator(catalog, lib, PartnerDirectory([]))
    return [t for t in tr.translate(data, FileInput("test.edi", map_name=map_name)) if isinstance(t, Translation)]


def test_load_errors_are_all_reported_with_line_col_and_hints(catalog):
    bad = """\
map: bad
document: purchase_order
source: {format: x12, set: "850", version: "004010"}
fields:
  po_numbr: BEG03
  order_date: {from: BEG99, fn: date}
  purpose: {from: BEG01, fn: tabel, table: purpose}
  references:
    each: RFE
    value: {qualifier: REF01, value: REF02}
  lines:
    each: PO1
    value:
      line_number: PO101
      quantity: {value: {from: PO102, fn: implied_decimal, placez: 2}, uom: PO103}
"""
    with pytest.raises(MapLoadError) as info:
        build(catalog, {"maps/bad.yaml": bad})
    text = str(info.value)
    problems = info.value.problems
    assert len(problems) == 5, text
    assert "maps/bad.yaml:5:3" in text and "did you mean po_number" in text
    assert "maps/bad.yaml:6:" in text and "BEG has elements 01 to" in text
    assert "did you mean table" in text
    assert "segment RFE is not used in 850 004010 (did you mean REF?)" in text
    assert "placez" in text
    assert all(p.mark is not None and p.mark.source == "maps/bad.yaml" for p in problems)


def test_yaml_syntax_error_is_located(catalog):
    with pytest.raises(MapLoadError) as info:
        build(catalog, {"maps/broken.yaml": "map: x\nfields: [a, b\n"})
    assert "maps/broken.yaml:" in str(info.value) and "MAP-040" in str(info.value)


def test_extends_overrides_only_what_differs(catalog, tmp_path):
    partner = """\
map: acme-850
extends: t-850
fields:
  lines.value.lot: "REF[REF01=LT]/REF02"
  lines.value.unit_price.amount: {from: PO104, fn: implied_decimal, places: 2}
"""
    lib = build(catalog, {"base.yaml": BASE, "acme.yaml": partner})
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*004010~ST*850*0001~BEG*00*SA*PO1**20261123~"
        b"PO1*1*2*EA*4250**VN*X1~PID*F****GLOVES~REF*LT*LOT9~CTT*1~SE*7*0001~GE*1*1~IEA*1*000000001~"
    )
    (doc,) = translate(catalog, lib, data, "acme-850")
    assert doc.ok, doc.errors
    line = doc.document.lines[0]
    assert line.unit_price.amount == Decimal("42.50")
    assert line.lot == "LOT9"
    assert line.description == "GLOVES" and line.item.vendor_part == "X1"
    (base,) = translate(catalog, lib, data, "t-850")
    assert base.document.lines[0].unit_price.amount == Decimal("4250") and base.document.lines[0].lot is None


def test_extends_unknown_and_cycles(catalog):
    with pytest.raises(MapLoadError) as info:
        build(
            catalog,
            {
                "a.yaml": "map: a\nextends: b\nfields: {}\n",
                "b.yaml": "map: b\nextends: a\nfields: {}\n",
                "c.yaml": "map: c\nextends: t-85O\nfields: {}\n",
                "base.yaml": BASE,
            },
        )
    text = str(info.value)
    assert "extends cycle" in text and "did you mean t-850" in text


def test_runtime_failure_names_map_path_and_segment_and_spares_siblings(catalog):
    implied = (
        "map: t-implied\nextends: t-850\nfields:\n  lines.value.unit_price.amount: {from: PO104, fn: implied_decimal}\n"
    )
    lib = build(catalog, {"base.yaml": BASE, "implied.yaml": implied})
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*004010~"
        b"ST*850*0001~BEG*00*SA*PO1**20261123~PO1*1*2*EA*450**VN*X1~CTT*1~SE*5*0001~"
        b"ST*850*0002~BEG*00*SA*PO2**20261123~PO1*1*2*EA*450**VN*X1~PO1*2*1*EA*1.5**VN*X2~CTT*2~SE*6*0002~"
        b"ST*850*0003~BEG*00*SA*PO3**20261123~PO1*1*7*EA*1**VN*X3~CTT*1~SE*5*0003~"
        b"GE*3*1~IEA*1*000000001~"
    )
    results = translate(catalog, lib, data, "t-implied")
    assert [r.ok for r in results] == [True, False, True]
    (err,) = results[1].errors
    assert err.code == "MAP-500"
    assert "t-implied" in err.message and "lines[1].unit_price.amount" in err.message and "1.5" in err.message
    assert err.location.transaction_set == "0002" and err.location.segment_id == "PO1" and err.location.element == 4
    assert err.location.segment_index == 4
    assert results[2].document.po_number == "PO3"


def test_validation_errors_fail_the_set_with_locations(catalog):
    lib = build(catalog, {"base.yaml": BASE})
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*004010~ST*850*0001~BEG*00*SA*PO1**2026XX23~CTT*1~SE*4*0001~GE*1*1~IEA*1*000000001~"
    )
    (r,) = translate(catalog, lib, data)
    assert not r.ok and r.document is None
    assert any(e.location.segment_id == "BEG" and e.location.element == 5 for e in r.errors)


def test_model_validation_failure_is_a_mapping_error(catalog):
    lib = build(catalog, {"base.yaml": BASE.replace("  po_number: BEG03\n", "  po_number: BEG04\n")})
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*004010~ST*850*0001~BEG*00*SA*PO1**20261123~PO1*1*1*EA~CTT*1~SE*5*0001~GE*1*1~IEA*1*000000001~"
    )
    (r,) = translate(catalog, lib, data)
    assert not r.ok and r.errors[0].code == "MAP-501" and "po_number" in r.errors[0].message


def test_functions():
    reg = standard_functions()
    ctx = EvalContext(
        tables={"t": CodeTable("t", {"A": "x"}, "dflt", True), "u": CodeTable("u", {"A": "x"})},
        xrefs={"items": {"THEIRS": "OURS"}},
    )

    def call(name, value, **params):
        spec = reg.get(name)
        return spec.fn(value, spec.params.model_validate(params), ctx)

    assert str(call("date", "20261123")) == "2026-11-23"
    assert str(call("date", "261123")) == "2026-11-23"
    assert str(call("date", "2026-11-23T10:00:00-08:00")) == "2026-11-23"
    assert str(call("date", "23.11.2026", format="DD.MM.CCYY")) == "2026-11-23"
    with pytest.raises(FunctionFailed):
        call("date", "20261323")
    assert call("implied_decimal", "12345", places=2) == Decimal("123.45")
    assert call("implied_decimal", "-5", places=2) == Decimal("-0.05")
    assert call("decimal_comma", "1.234,56") == Decimal("1234.56")
    with pytest.raises(FunctionFailed):
        call("decimal", "NaN")
    assert call("table", "A", table="t") == "x" and call("table", "Z", table="t") == "dflt"
    with pytest.raises(FunctionFailed, match="not in table"):
        call("table", "Z", table="u")
    assert call("xref", "THEIRS", xref="items") == "OURS" and call("xref", "OTHER", xref="items") == "OTHER"
    assert call("xref", "OTHER", xref="items", missing="none") is None
    assert call("concat", ["a", None, "b"], separator="-") == "a-b"
    assert call("first", [None, "", "z"]) == "z"
    assert str(call("datetime", ["20261123", "1410"])) == "2026-11-23 14:10:00"
    assert call("integer", "3") == 3


def test_registry_is_an_object_tests_can_extend(catalog):
    reg = standard_functions().copy()
    with pytest.raises(ValueError):
        reg.add(reg.get("date"))
    assert "date" in reg.names() and "date" in standard_functions().names()


def test_marked_yaml_keeps_codes_as_text():
    raw = load_marked("a: 002\nb: 01\nc: true\nd: null\n", "f.yaml")
    assert raw == {"a": "002", "b": "01", "c": True, "d": None}
    assert str(raw.key_marks["b"]) == "f.yaml:2:1"


def test_hl_tree_is_reparented_by_parent_id(catalog):
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*SH*A*B*20261123*0930*1*X*004010~ST*856*0001~BSN*00*S1*20261123*1000~"
        b"HL*1**S~HL*2*1*O~PRF*PO1~HL*3*2*P~MAN*GM*1~HL*4*3*I~LIN*1*VN*A~SN1**1*EA~"
        b"HL*5*1*O~PRF*PO2~HL*6*5*I~LIN*1*VN*B~SN1**2*EA~CTT*6~SE*17*0001~GE*1*1~IEA*1*000000001~"
    )
    (ts,) = list(iter_transaction_sets(data))
    root = build_scopes(ts.segments, catalog.definition("004010", "856"))
    (ship,) = root.loops["HL"]
    orders = ship.loops["HL"]
    assert [o.own["PRF"][0].element(1) for o in orders] == ["PO1", "PO2"]
    assert [h.trigger.element(3) for h in orders[0].loops["HL"]] == ["P"]
    assert orders[0].loops["HL"][0].loops["HL"][0].own["LIN"][0].element(3) == "A"
    assert orders[1].loops["HL"][0].own["SN1"][0].element(2) == "2"
    assert "CTT" in root.own


def test_an_xpath_that_fails_on_use_is_a_located_map_error(catalog):
    """An undeclared prefix compiles but fails when evaluated: a MAP-500 for that file, not a traceback."""
    xml_map = (
        "map: x-bad\ndocument: purchase_order\n"
        'source: {format: xml, documents: "/cXML/cx:Request"}\n'
        "fields: {po_number: '@orderID', order_date: {const: '2026-11-23', fn: date}}\n"
    )
    lib = build(catalog, {"x.yaml": xml_map})
    tr = Translator(catalog, lib, PartnerDirectory([]))
    (r,) = list(tr.translate(b"<cXML><Request/></cXML>", FileInput("x.xml", map_name="x-bad")))
    assert not r.ok and r.errors[0].code == "MAP-500" and "cx:Request" in r.errors[0].message


def test_a_partner_map_for_another_version_falls_back_to_the_base_map_and_says_so(catalog):
    from gateway.partners.profile import Profile

    base_5010 = BASE.replace('version: "004010"', 'version: "005010"').replace("map: t-850", "map: t-850-5010")
    lib = build(catalog, {"base.yaml": BASE, "base5.yaml": base_5010})
    acme = Profile.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "x12": {"production": {"qualifier": "ZZ", "id": "A"}},
            "documents": {"850": {"map": "t-850"}},
        }
    )
    tr = Translator(catalog, lib, PartnerDirectory([acme]))
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*^*00501*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*005010~ST*850*0001~BEG*00*SA*PO1**20261123~PO1*1*1*EA~CTT*1~SE*5*0001~"
        b"GE*1*1~IEA*1*000000001~"
    )
    (r,) = [t for t in tr.translate(data, FileInput("x.edi")) if isinstance(t, Translation)]
    assert r.ok, r.errors
    assert r.partner == "acme" and r.map_name == "t-850-5010" and r.base_map
