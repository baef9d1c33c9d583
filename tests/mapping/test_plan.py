"""The generated object functions (gateway.mapping.plan) against the node-by-node evaluation."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import REPO

from gateway.cases import find_cases
from gateway.mapping import plan
from gateway.mapping.functions import standard_functions
from gateway.mapping.library import MapLibrary
from gateway.mapping.nodes import Obj
from gateway.partners.profile import PartnerDirectory
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace, load_workspace


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return load_workspace(REPO)


def _run(ws: Workspace, data: bytes, partner: str | None, map_name: str | None) -> list[tuple[Any, ...]]:
    out = []
    info = FileInput(name="case", partner_id=partner, map_name=map_name)
    for t in ws.translator().translate(data, info):
        if isinstance(t, Translation):
            doc = t.document.model_dump(mode="json") if t.document is not None else None
            if doc is not None:
                doc["provenance"].pop("correlation_id", None)
            out.append((doc, [(e.code, e.message, e.location) for e in t.errors], [w.code for w in t.warnings]))
    return out


def test_every_golden_case_evaluates_the_same_field_by_field(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = list(find_cases(ws))
    assert len(cases) > 20
    generated = [_run(ws, c.input.read_bytes(), c.partner, c.map_name) for c in cases]
    monkeypatch.setattr(Obj, "evaluate", Obj.evaluate_fields)
    monkeypatch.setattr(Obj, "function", lambda self: self.evaluate_fields)
    # A workspace of its own: the first one's nodes hold the generated functions they resolved (a list's
    # items, a nested object), which the reference pass must not call.
    fresh = load_workspace(REPO)
    reference = [_run(fresh, c.input.read_bytes(), c.partner, c.map_name) for c in cases]
    assert generated == reference


def _interchange(sets: bytes) -> bytes:
    """``sets`` in a 004010 purchase-order group and interchange."""
    return (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*004010~" + sets + b"GE*1*1~IEA*1*000000001~"
    )


IMPLIED = """\
map: t-implied
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
      unit_price: {amount: {from: PO104, fn: implied_decimal}}
"""


def test_a_failing_function_deep_in_a_list_fails_the_same_way(catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """PO104 ``1.5`` is no implied decimal: the same MAP-500, key trail and segment either way."""
    lib = MapLibrary.build({"m.yaml": IMPLIED}, {}, catalog, standard_functions())
    data = _interchange(
        b"ST*850*0002~BEG*00*SA*PO2**20261123~PO1*1*2*EA*450**VN*X1~PO1*2*1*EA*1.5**VN*X2~CTT*2~SE*6*0002~"
    )

    def run() -> list[tuple[str, str, Any]]:
        tr = Translator(catalog, lib, PartnerDirectory([]))
        (r,) = [t for t in tr.translate(data, FileInput("t.edi", map_name="t-implied")) if isinstance(t, Translation)]
        return [(e.code, e.message, e.location) for e in r.errors]

    generated = run()
    assert generated and generated[0][0] == "MAP-500" and "lines[1].unit_price.amount" in generated[0][1]
    monkeypatch.setattr(Obj, "evaluate", Obj.evaluate_fields)
    monkeypatch.setattr(Obj, "function", lambda self: self.evaluate_fields)
    assert run() == generated


def test_the_generated_source_reads_plain_elements_in_line(ws: Workspace) -> None:
    cmap = ws.library.get("x12-856-004010")
    assert cmap is not None
    source = cmap.root.function().source  # type: ignore[attr-defined]
    assert "own.get('BSN')" in source and "seg = s" in source and "exc.trail.append('shipment_id')" in source


CONDITIONS = """\
map: t-when
document: purchase_order
source: {format: x12, set: "850", version: "004010"}
fields:
  po_number: BEG03
  order_date: {from: BEG05, fn: date}
  lines:
    each: PO1
    value:
      line_number: {from: PO101, when: PO106}
      quantity: {value: {from: PO102, fn: decimal}, uom: {from: PO103, when: {path: PO106, not_in: [UP, EN]}}}
      item:
        vendor_part: {from: PO107, when: {path: PO106, equals: VN}}
        buyer_item: {from: PO107, when: {path: PO106, not_equals: VN}}
        gtin: {from: PO107, when: {path: PO106, in: [UP, EN]}}
        ndc: {from: PO107, when: {path: PO108, exists: false}}
        udi: {from: PO107, when: {path: "REF[REF01=ZZ]/REF02", exists: true}}
"""


def test_conditions_tested_in_line_hold_as_the_node_by_node_evaluation(
    catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``when`` form the generated functions write in line, on lines that pass and fail it."""
    lib = MapLibrary.build({"m.yaml": CONDITIONS}, {}, catalog, standard_functions())
    data = _interchange(
        b"ST*850*0002~BEG*00*SA*PO2**20261123~PO1*1*2*EA*450**VN*X1~PO1*2*1*EA*1**UP*012345678905~"
        b"PO1*3*1*EA*1**BP*B3*VN*V3~PO1*4*1*EA*1~REF*ZZ*U4~PO1**1*EA*1**EN*4006381333931~CTT*5~SE*10*0002~"
    )
    cmap = lib.get("t-when")
    assert cmap is not None
    line = cmap.root.fields["lines"].value  # type: ignore[attr-defined]
    for obj in (line, line.fields["item"]):
        assert "cond = " in obj.function().source

    def run() -> list[Any]:  # (a library of its own: nodes keep the callables they first resolved)
        fresh = MapLibrary.build({"m.yaml": CONDITIONS}, {}, catalog, standard_functions())
        tr = Translator(catalog, fresh, PartnerDirectory([]))
        (r,) = [t for t in tr.translate(data, FileInput("t.edi", map_name="t-when")) if isinstance(t, Translation)]
        assert r.document is not None, r.errors
        doc = r.document.model_dump(mode="json")
        doc["provenance"].pop("correlation_id", None)
        return [doc, [(e.code, e.message, e.location) for e in r.errors]]

    generated = run()
    items = [line["item"] for line in generated[0]["lines"]]
    assert [i.get("vendor_part") for i in items] == ["X1", None, None, None, None]
    assert [i.get("gtin") for i in items] == [None, "012345678905", None, None, "4006381333931"]
    monkeypatch.setattr(Obj, "evaluate", Obj.evaluate_fields)
    monkeypatch.setattr(Obj, "function", lambda self: self.evaluate_fields)
    assert run() == generated


NESTED = """\
map: t-nested
document: purchase_order
source: {format: x12, set: "850", version: "004010"}
fields:
  po_number: BEG03
  lines:
    each: PO1
    value:
      line_number: PO101
      quantity: {value: {from: PO102, fn: decimal}, uom: PO103}
      unit_price:
        when: PO106
        amount: {from: PO104, fn: implied_decimal}
"""


@pytest.mark.parametrize("depth", [plan.INLINE_DEPTH, 0])
def test_nested_objects_written_in_line_or_called_fail_as_field_by_field(
    catalog, monkeypatch: pytest.MonkeyPatch, depth: int
) -> None:
    """A nested object written into its parent's function (or, past INLINE_DEPTH, called), one with a
    ``when``: the same MAP-500 and key trail as the node-by-node evaluation, the line without PO106 skipped."""
    monkeypatch.setattr(plan, "INLINE_DEPTH", depth)
    data = _interchange(b"ST*850*0002~BEG*00*SA*PO2**20261123~PO1*1*2*EA*1.5~PO1*2*1*EA*1.5**VN*X2~CTT*2~SE*6*0002~")

    def run() -> list[tuple[str, str, Any]]:
        lib = MapLibrary.build({"m.yaml": NESTED}, {}, catalog, standard_functions())
        tr = Translator(catalog, lib, PartnerDirectory([]))
        (r,) = [t for t in tr.translate(data, FileInput("t.edi", map_name="t-nested")) if isinstance(t, Translation)]
        return [(e.code, e.message, e.location) for e in r.errors]

    generated = run()
    assert generated and generated[0][0] == "MAP-500" and "lines[1].unit_price.amount" in generated[0][1]
    lib = MapLibrary.build({"m.yaml": NESTED}, {}, catalog, standard_functions())
    cmap = lib.get("t-nested")
    assert cmap is not None
    source = cmap.root.fields["lines"].value.function().source  # type: ignore[attr-defined]
    assert ("out1 = {}" in source) == (depth > 0)
    monkeypatch.setattr(Obj, "evaluate", Obj.evaluate_fields)
    monkeypatch.setattr(Obj, "function", lambda self: self.evaluate_fields)
    assert run() == generated
