"""The generated object functions (gateway.mapping.plan) against the node-by-node evaluation."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import REPO

from gateway.cases import find_cases
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
    reference = [_run(ws, c.input.read_bytes(), c.partner, c.map_name) for c in cases]
    assert generated == reference


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
    data = (
        b"ISA*00*          *00*          *ZZ*A              *ZZ*B              *261123*0930*U*00401*000000001*0*P*>~"
        b"GS*PO*A*B*20261123*0930*1*X*004010~"
        b"ST*850*0002~BEG*00*SA*PO2**20261123~PO1*1*2*EA*450**VN*X1~PO1*2*1*EA*1.5**VN*X2~CTT*2~SE*6*0002~"
        b"GE*1*1~IEA*1*000000001~"
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
    assert "segs = own.get('BSN')" in source and "exc.trail.append('shipment_id')" in source
