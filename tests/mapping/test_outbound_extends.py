"""Outbound maps with ``extends`` (gateway/outbound/extends.py) and partner outbound maps in
``partners/<id>/outbound/``: a partner that differs from the base 850 in one qualifier needs a
few lines, not a copy of the whole map."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import REPO, control_sequence

from gateway.canonical import ItemIds, PurchaseOrder, PurchaseOrderLine, Quantity
from gateway.mapping.problems import MapLoadError
from gateway.outbound import OutboundLibrary, outbound_functions, render_850
from gateway.outbound_loader import load_outbound
from gateway.partners.profile import Profile
from gateway.workspace import load_workspace
from gateway.x12.validate.validator import Validator

BASE = REPO / "maps" / "outbound" / "850-004010.yaml"
TABLES = {str(p): p.read_text() for p in sorted((REPO / "maps" / "outbound" / "tables").glob("*.yaml"))}
WHEN = datetime(2026, 11, 23, 9, 30)


def _profile(map_name: str) -> Profile:
    return Profile.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "x12": {
                "production": {"qualifier": "ZZ", "id": "ACME"},
                "us": {"qualifier": "ZZ", "id": "MERCYHOSP"},
            },
            "documents": {"850": {"map": map_name, "direction": "outbound"}},
        }
    )


def _po() -> PurchaseOrder:
    return PurchaseOrder(
        po_number="PO-1",
        order_date=date(2026, 11, 23),
        purpose_code="00",
        lines=[
            PurchaseOrderLine(
                line_number="1",
                quantity=Quantity(value=Decimal(2), uom="EA"),
                item=ItemIds(vendor_part="GLV-1", buyer_item="100234"),
                description="GLOVES",
            )
        ],
    )


def _library(catalog, child: str) -> OutboundLibrary:
    maps = {"maps/outbound/850-004010.yaml": BASE.read_text(), "partners/acme/outbound/850.yaml": child}
    return OutboundLibrary.build(maps, TABLES, catalog, outbound_functions())


def _errors(catalog, data: bytes) -> list[str]:
    """Every error finding our own validator has on ``data`` (an 850 we send must validate)."""
    report = Validator(catalog).validate(data)
    found = [*report.findings]
    for ic in report.interchanges:
        found += [
            *ic.findings,
            *(f for g in ic.groups for f in [*g.findings, *(f for s in g.sets for f in s.findings)]),
        ]
    return [str(f) for f in found if f.is_error]


def _body(catalog, library: OutboundLibrary, name: str, po: PurchaseOrder | None = None) -> list[str]:
    data = render_850(po or _po(), _profile(name), library.get(name), control_numbers=control_sequence(), when=WHEN)  # type: ignore[arg-type]
    assert _errors(catalog, data) == []
    return data.decode().splitlines()[3:-3]


def test_one_qualifier_changed_in_three_lines(catalog) -> None:
    child = "map: acme-850-out\nextends: x12-850-004010-out\nelements:\n  PO106: {qualifiers: {vendor_part: VP}}\n"
    library = _library(catalog, child)
    base = _body(catalog, library, "x12-850-004010-out")
    mine = _body(catalog, library, "acme-850-out")
    assert "PO1*1*2*EA***VN*GLV-1*IN*100234~" in base
    assert "PO1*1*2*EA***VP*GLV-1*IN*100234~" in mine
    assert [s for s in base if not s.startswith("PO1")] == [s for s in mine if not s.startswith("PO1")]
    assert library.get("x12-850-004010-out") is not None  # the base itself is untouched


def test_replace_an_element_remove_a_segment_and_merge_tables(catalog) -> None:
    child = (
        "map: acme-850-out\n"
        "extends: x12-850-004010-out\n"
        "tables:\n"
        "  purpose_out: {codes: {original: '06'}}\n"
        "elements:\n"
        "  BEG02: {from: order_type, default: NE}\n"
        "remove: [PID]\n"
    )
    po = _po()
    po.purpose_code = None  # BEG01 then comes from the purpose_out table, the map's own here
    mine = _body(catalog, _library(catalog, child), "acme-850-out", po)
    assert mine[0] == "BEG*06*NE*PO-1**20261123~"
    assert not any(s.startswith("PID") for s in mine)


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        ("extends: x12-850-4010-out\n", "MAP-621 extends unknown outbound map 'x12-850-4010-out' (did you mean"),
        ("extends: x12-850-004010-out\nelements:\n  REF02: {const: X}\n", "MAP-624 the base map has 4 REF entries"),
        (
            "extends: x12-850-004010-out\nelements:\n  REF02#9: {const: X}\n",
            "MAP-624 the base map has 4 REF entries, not 9",
        ),
        ("extends: x12-850-004010-out\nelements:\n  PO1-6: {const: X}\n", "MAP-623 'PO1-6' is not an element address"),
        ("extends: x12-850-004010-out\nremove: [TD5]\n", "MAP-624 the base map has no TD5 entry"),
        ("extends: x12-850-004010-out\ndocument: invoice\n", "MAP-627 acme-850-out extends x12-850-004010-out"),
        ("elements:\n  PO106: {const: X}\ndocument: purchase_order\n", "MAP-626 `elements` changes a base map"),
        ("extends: acme-850-out\n", "MAP-622 extends cycle"),
        (
            "extends: x12-850-004010-out\nelements:\n  PO106: {qualifiers: {vendor_prt: VP}}\n",
            "MAP-610 ItemIds has no field 'vendor_prt' (did you mean vendor_part?)",
        ),
    ],
)
def test_problems_are_reported_with_their_place(catalog, child: str, expected: str) -> None:
    with pytest.raises(MapLoadError) as err:
        _library(catalog, "map: acme-850-out\n" + child)
    found = [str(p) for p in err.value.problems]
    assert any(expected in p for p in found), found
    assert any(p.startswith(("partners/acme/outbound/850.yaml:", "maps/outbound/850-004010.yaml:")) for p in found)


def test_partner_folder_maps_are_loaded_and_named_by_the_profile(tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(REPO / "maps", home / "maps")
    (home / "partners" / "acme" / "outbound").mkdir(parents=True)
    (home / "partners" / "acme" / "outbound" / "850.yaml").write_text(
        "map: acme-850-out\nextends: x12-850-004010-out\nelements:\n  PO106: {qualifiers: {vendor_part: VP}}\n"
    )
    (home / "partners" / "acme.yaml").write_text(
        "id: acme\nname: Acme\nx12:\n  production: {qualifier: ZZ, id: ACME}\n  us: {qualifier: ZZ, id: MERCYHOSP}\n"
        'documents:\n  "850": {map: acme-850-out, direction: outbound}\n'
    )
    ws = load_workspace(home)
    library = load_outbound(home, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
    cmap = library.for_partner(ws.partners.get("acme"), "850")  # type: ignore[arg-type]
    assert (cmap.name, cmap.origin) == ("acme-850-out", "partners/acme/outbound/850.yaml")
    assert "acme-850-out" not in ws.library.maps  # the inbound loader never reads partners/<id>/outbound


def test_shipped_sample_summitmed_writes_vp(catalog) -> None:
    ws = load_workspace(REPO)
    library = load_outbound(REPO, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
    summit = ws.partners.get("summitmed")
    assert summit is not None
    cmap = library.for_partner(summit, "850")
    assert cmap.origin == "partners/summitmed/outbound/850.yaml"
    data = render_850(_po(), summit, cmap, control_numbers=control_sequence(), when=WHEN).decode()
    assert "*VP*GLV-1*" in data and "*VN*" not in data
    assert len((REPO / "partners" / "summitmed" / "outbound" / "850.yaml").read_text().splitlines()) < 10
