"""Outbound maps: canonical PO → X12 850 (004010, 005010) → canonical PO through the inbound base maps.

The shipped outbound maps (maps/outbound/) are checked against the shipped inbound base maps
(maps/x12/850-*.yaml): what one writes the other must read back unchanged. Profiles are built
here so the tests do not depend on partners/.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, control_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.canonical import (
    Address,
    DatedValue,
    Identifier,
    ItemIds,
    Money,
    Party,
    Provenance,
    PurchaseOrder,
    PurchaseOrderLine,
    Quantity,
    Reference,
)
from gateway.cli.render_cli import render as render_command
from gateway.errors import ConfigError
from gateway.mapping.library import MapLibrary
from gateway.mapping.marked import load_marked
from gateway.mapping.problems import MapLoadError, Problems
from gateway.outbound import OutboundLibrary, RenderError, format_decimal, outbound_functions, render_850
from gateway.outbound_loader import load_outbound
from gateway.partners.profile import PartnerDirectory, Profile
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import load_workspace
from gateway.x12.validate.validator import Validator

VERSIONS = ("004010", "005010")
WHEN = datetime(2026, 11, 23, 9, 30)
OUTBOUND = REPO / "maps" / "outbound"


def profile(version: str, **x12: object) -> Profile:
    """MedSupply-like (4010, * > ~) or OrthoSupply-like (5010, | ^ { ~) partner."""
    delimiters = (
        {"element": "*", "component": ">", "segment": "~", "suffix": "\n"}
        if version == "004010"
        else {"element": "|", "component": "^", "repetition": "{", "segment": "~", "suffix": "\n"}
    )
    settings_ = {
        "version": version,
        "production": {"qualifier": "ZZ", "id": "SUPPLIER"},
        "test": {"qualifier": "ZZ", "id": "SUPPLIERTEST"},
        "us": {"qualifier": "ZZ", "id": "MERCYHOSP", "gs": "MERCYGS"},
        "delimiters": delimiters,
        **x12,
    }
    return Profile.model_validate({"id": "supplier", "name": "Supplier", "x12": settings_})


@pytest.fixture(scope="module")
def outbound(catalog) -> OutboundLibrary:
    return load_outbound(REPO, catalog)


@pytest.fixture(scope="module")
def inbound(catalog) -> MapLibrary:
    maps = {str(p): p.read_text() for p in sorted((REPO / "maps" / "x12").glob("850-*.yaml"))}
    tables = {str(p): p.read_text() for p in sorted((REPO / "maps" / "tables").glob("*.yaml"))}
    return MapLibrary.build(maps, tables, catalog, outbound_functions())


def rich_po(*, test: bool = False) -> PurchaseOrder:
    """Several lines with every item id kind, parties with addresses, references, dates, notes."""
    return PurchaseOrder(
        provenance=Provenance(test=test),
        purpose_code="00",
        po_number="4500012345",
        order_date=date(2026, 11, 23),
        order_type="SA",
        release_number="R1",
        currency="USD",
        references=[
            Reference(qualifier="DP", value="ICU-4WEST"),
            Reference(qualifier="CT", value="GPO-77", description="Vizient"),
        ],
        dates=[
            DatedValue(qualifier="002", value=date(2026, 11, 30)),
            DatedValue(qualifier="010", value=date(2026, 11, 28), time="1330"),
        ],
        requested_delivery=date(2026, 11, 30),
        notes=["DELIVER TO DOCK 2 BEFORE 10AM", "CALL 555-0100 ON ARRIVAL"],
        parties=[
            Party(
                role="buyer",
                role_code="BY",
                name="MERCY GENERAL HOSPITAL",
                ids=[Identifier(qualifier="92", value="MGH01")],
            ),
            Party(
                role="ship_to",
                role_code="ST",
                name="MERCY GENERAL RECEIVING DOCK 2",
                ids=[Identifier(qualifier="92", value="MGH-DOCK2")],
                address=Address(
                    lines=["100 HOSPITAL WAY", "BUILDING C"],
                    city="SPRINGFIELD",
                    state="IL",
                    postal_code="62701",
                    country="US",
                ),
                contact="JANE ROSS",
            ),
            Party(role="bill_to", role_code="BT", name="MERCY HEALTH AP", address=Address(city="CHICAGO", state="IL")),
        ],
        lines=[
            PurchaseOrderLine(
                line_number="1",
                quantity=Quantity(value=Decimal("10"), uom="BX"),
                unit_price=Money(amount=Decimal("42.50")),
                item=ItemIds(vendor_part="GLV-NIT-M", buyer_item="100234", gtin="00012345678905"),
                description="NITRILE EXAM GLOVES MEDIUM 100/BX",
                requested_delivery=date(2026, 12, 1),
            ),
            PurchaseOrderLine(
                line_number="2",
                quantity=Quantity(value=Decimal("4.5"), uom="CA"),
                unit_price=Money(amount=Decimal("118.0001")),
                item=ItemIds(
                    vendor_part="SYR-10ML", ndc="12345678901", other=[Identifier(qualifier="CB", value="CAT-9")]
                ),
                references=[Reference(qualifier="PD", value="PROMO-4")],
            ),
            PurchaseOrderLine(
                line_number="3",
                quantity=Quantity(value=Decimal("2"), uom="EA"),
                unit_price=Money(amount=Decimal("1450.00")),
                item=ItemIds(vendor_part="IMP-HIP-52", manufacturer_part="HX-52-TI", buyer_item="300455"),
                description="ACETABULAR CUP 52MM TITANIUM",
                references=[Reference(qualifier="LT", value="LOT123"), Reference(qualifier="SE", value="SN0001")],
                lot="LOT123",
                serial="SN0001",
            ),
        ],
    )


def write(po: PurchaseOrder, outbound: OutboundLibrary, version: str, **x12: object) -> bytes:
    p = profile(version, **x12)
    return render_850(po, p, outbound.for_partner(p, "850"), control_numbers=control_sequence(), when=WHEN)


def read(catalog, inbound: MapLibrary, data: bytes) -> PurchaseOrder:
    results = [
        r
        for r in Translator(catalog, inbound, PartnerDirectory([])).translate(data, FileInput("out.edi"))
        if isinstance(r, Translation)
    ]
    assert len(results) == 1 and results[0].ok, [str(e) for r in results for e in r.errors]
    doc = results[0].document
    assert isinstance(doc, PurchaseOrder)
    return doc


def comparable(po: PurchaseOrder) -> dict[str, object]:
    """Everything but provenance, which differs by design (control numbers, version, correlation id)."""
    return po.model_dump(exclude={"provenance"})


def needs_inbound(inbound: MapLibrary, version: str) -> None:
    if inbound.base_for("850", version) is None:
        pytest.skip(f"no inbound base map x12-850-{version} yet (maps/x12/850-{version}.yaml)")


def errors_of(catalog, data: bytes) -> list[str]:
    report = Validator(catalog).validate(data)
    found = [*report.findings]
    for ic in report.interchanges:
        found += [
            *ic.findings,
            *(f for g in ic.groups for f in [*g.findings, *(f for s in g.sets for f in s.findings)]),
        ]
    return [str(f) for f in found if f.is_error]


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_round_trip_rich_po(catalog, outbound, inbound, version) -> None:
    needs_inbound(inbound, version)
    po = rich_po()
    data = write(po, outbound, version)
    assert errors_of(catalog, data) == []
    back = read(catalog, inbound, data)
    assert comparable(back) == comparable(po)
    assert back.provenance.version == version and back.provenance.test is False


def test_4010_text(outbound) -> None:
    lines = write(rich_po(), outbound, "004010").decode().splitlines()
    assert (
        lines[0]
        == "ISA*00*          *00*          *ZZ*MERCYHOSP      *ZZ*SUPPLIER       *261123*0930*U*00401*000000001*0*P*>~"
    )
    assert lines[1] == "GS*PO*MERCYGS*SUPPLIER*20261123*0930*1*X*004010~"
    body = lines[3:-3]
    assert body[:3] == ["BEG*00*SA*4500012345*R1*20261123~", "CUR*BY*USD~", "REF*DP*ICU-4WEST~"]
    assert "DTM*010*20261128*1330~" in body and body.count("DTM*002*20261130~") == 1  # requested delivery once
    assert body[body.index("N9*L1*NOTES~") + 1] == "MSG*DELIVER TO DOCK 2 BEFORE 10AM~"
    assert "N1*BT*MERCY HEALTH AP~" in body and "N4*CHICAGO*IL~" in body and "PER*IC*JANE ROSS~" in body
    assert "PO1*1*10*BX*42.5**VN*GLV-NIT-M*IN*100234*UP*00012345678905~" in body
    assert "PO1*2*4.5*CA*118.0001**VN*SYR-10ML*N4*12345678901*CB*CAT-9~" in body
    assert body.count("REF*LT*LOT123~") == 1 and body.count("REF*SE*SN0001~") == 1  # not written twice
    assert body[-1] == "CTT*3~" and lines[-3] == f"SE*{len(body) + 2}*0001~"


def test_5010_uses_partner_delimiters_and_mtx(outbound) -> None:
    text = write(rich_po(), outbound, "005010").decode()
    assert text.startswith("ISA|00|") and "|{|00501|000000001|0|P|^~\n" in text
    assert "N9|L1|NOTES~\nMTX||DELIVER TO DOCK 2 BEFORE 10AM~\n" in text


def test_test_document_goes_to_the_test_identity_with_isa15_t(catalog, outbound, inbound) -> None:
    data = write(rich_po(test=True), outbound, "004010")
    isa = data.decode().split("~")[0].split("*")
    assert isa[8].strip() == "SUPPLIERTEST" and isa[15] == "T"
    assert read(catalog, inbound, data).provenance.test is True


def test_erp_po_with_lot_but_no_lt_reference_writes_one_lt(outbound) -> None:
    po = rich_po()
    po.lines[0].lot = "L-77"
    po.requested_delivery = date(2026, 12, 24)
    po.dates = []
    body = write(po, outbound, "004010").decode()
    assert body.count("REF*LT*L-77~") == 1 and body.count("DTM*002*20261224~") == 1


def test_optional_segments_vanish(outbound) -> None:
    po = PurchaseOrder(
        po_number="9",
        order_date=date(2026, 1, 2),
        order_type="SA",
        purpose_code="00",
        lines=[PurchaseOrderLine(line_number="1", quantity=Quantity(value=Decimal("1")))],
        total=Money(amount=Decimal("12.30")),
    )
    body = write(po, outbound, "004010").decode().splitlines()[3:-3]
    assert body == ["BEG*00*SA*9**20260102~", "PO1*1*1~", "CTT*1~", "AMT*TT*12.3~"]  # no currency: no CUR


def test_reverse_tables_when_no_raw_code(outbound) -> None:
    po = rich_po()
    po.purpose_code = None
    po.purpose = "replace"
    po.parties[0].role_code = None
    text = write(po, outbound, "004010").decode()
    assert "BEG*05*SA*" in text and "N1*BY*MERCY GENERAL HOSPITAL*92*MGH01~" in text


def test_format_decimal() -> None:
    assert [format_decimal(Decimal(v)) for v in ("42.50", "1E+3", "-0.00", "0.000100", "-7.10")] == [
        "42.5",
        "1000",
        "0",
        "0.0001",
        "-7.1",
    ]


# --- errors on documents ------------------------------------------------------------------------


def test_delimiter_in_data_names_the_field(outbound) -> None:
    po = rich_po()
    po.lines[1].item.vendor_part = "SYR*10ML"
    po.notes = ["A~B"]
    with pytest.raises(RenderError) as err:
        write(po, outbound, "004010")
    errors = err.value.errors
    assert [(e.code, e.location.path, e.location.segment_id, e.location.element) for e in errors] == [
        ("OUT-001", "notes[0]", "MSG", 1),
        ("OUT-001", "lines[1].item.vendor_part", "PO1", 7),
    ]
    assert err.value.code == "OUT-001" and "element separator '*'" in str(err.value)
    write(po.model_copy(update={"notes": []}), outbound, "005010")  # `*` is plain data for a pipe partner


def test_every_problem_at_once_and_validator_findings_point_at_fields(outbound) -> None:
    po = rich_po()
    po.purpose_code, po.purpose = None, "other"
    po.lines[0].item.udi = "(01)00012345678905"
    with pytest.raises(RenderError) as err:
        write(po, outbound, "004010")
    assert [(e.code, e.location.path) for e in err.value.errors] == [
        ("OUT-002", "purpose"),
        ("OUT-004", "lines[0].item.udi"),
    ]
    po = rich_po()
    po.parties[1].address.state = "ILL"  # type: ignore[union-attr]
    po.lines[2].quantity.uom = "BOX"
    with pytest.raises(RenderError) as err:
        write(po, outbound, "004010")
    assert [(e.code, e.location.path, e.location.segment_id) for e in err.value.errors] == [
        ("X12-V205", "parties[1].address.state", "N4"),
        ("X12-V205", "lines[2].quantity.uom", "PO1"),
    ]
    assert err.value.location.partner == "supplier"


def test_too_many_item_ids(outbound) -> None:
    po = rich_po()
    po.lines[0].item.other = [Identifier(qualifier="CB", value=str(i)) for i in range(9)]
    with pytest.raises(RenderError) as err:
        write(po, outbound, "004010")
    assert err.value.code == "OUT-005" and err.value.location.path == "lines[0].item"


def test_profile_problems_are_config_errors(outbound) -> None:
    with pytest.raises(ConfigError) as err:
        write(rich_po(), outbound, "004010", us=None)
    assert err.value.code == "OUT-020"
    p = Profile.model_validate(
        {**profile("004010").model_dump(), "documents": {"850": {"map": "x12-850-004010", "direction": "outbound"}}}
    )
    with pytest.raises(ConfigError) as err:
        outbound.for_partner(p, "850")
    assert err.value.code == "OUT-021" and "did you mean x12-850-004010-out?" in err.value.message
    p = Profile.model_validate(
        {**profile("004010").model_dump(), "documents": {"850": {"map": "x12-850-005010-out", "direction": "outbound"}}}
    )
    with pytest.raises(ConfigError) as err:
        outbound.for_partner(p, "850")
    assert err.value.code == "OUT-023"
    named = {"purchase_order": {"map": "x12-850-004010-out", "direction": "outbound"}}
    p = Profile.model_validate({**profile("004010").model_dump(), "documents": named})
    assert outbound.for_partner(p, "850").name == "x12-850-004010-out"


def test_check_partner_locates_problems_in_the_profile(outbound) -> None:
    text = 'id: supplier\nname: S\nx12:\n  version: "004010"\n  production: {qualifier: ZZ, id: S}\ndocuments:\n  "850": {map: x12-850-4010-out, direction: outbound}\n'
    raw = load_marked(text, "partners/supplier.yaml")
    problems = Problems()
    outbound.check_partner(Profile.model_validate(dict(raw)), raw, problems)
    assert [str(p) for p in problems.items] == [
        "partners/supplier.yaml:7:11: PRT-021 outbound map 'x12-850-4010-out' is not defined in maps/outbound/ "
        "or partners/*/outbound/ (did you mean x12-850-004010-out?) [documents.850.map]"
    ]


# --- load-time errors ---------------------------------------------------------------------------

BAD_MAP = """\
map: bad-out
document: purchase_order
target: {format: x12, set: "850", version: "004010"}
segmnts: []
segments:
  - BEG: [purpose_code, order_type, po_numbr, release_number, order_date]
  - CUR: [{const: BY}, {from: currency, fn: uper}]
  - XYZ: [po_number]
  - each: parties
    segments:
      - N1: [role_code, name]
      - N4: [address.city]
      - N3: [address.lines.0]
  - each: lines
    segments:
      - PO1: [line_number, {item_ids: item, qualifiers: {vendor_prt: VN}}]
      - REF: {when: {path: "references[qualifer=LT]", exists: false}, elements: [{const: LT}, lot]}
  - each: references
    segments:
      - REF: [qualifier, {from: value, fn: table, table: purpose_ot}]
      - DTM: [{const: "002"}]
  - CTT: [lines, count]
"""


def test_load_errors_all_at_once_with_line_col_and_hints(catalog) -> None:
    tables = {"maps/outbound/tables/purpose_out.yaml": (OUTBOUND / "tables" / "purpose_out.yaml").read_text()}
    with pytest.raises(MapLoadError) as err:
        OutboundLibrary.build({"maps/outbound/bad.yaml": BAD_MAP}, tables, catalog, outbound_functions())
    got = [f"{p.mark}: {p.code} {p.message}" for p in err.value.problems]
    assert got == [
        "maps/outbound/bad.yaml:4:1: MAP-601 unknown key 'segmnts' (did you mean segments?)",
        "maps/outbound/bad.yaml:6:37: MAP-610 PurchaseOrder has no field 'po_numbr' (did you mean po_number?)",
        "maps/outbound/bad.yaml:6:63: MAP-612 'order_date' is a date: give `fn: format_date` to write it as X12 text",
        "maps/outbound/bad.yaml:7:45: MAP-009 no function named 'uper' (did you mean upper?)",
        "maps/outbound/bad.yaml:8:5: MAP-606 segment XYZ is not used in 850 004010",
        "maps/outbound/bad.yaml:13:9: MAP-607 N3 must come before N4 in loop N1 of the 850 004010",
        "maps/outbound/bad.yaml:16:58: MAP-610 ItemIds has no field 'vendor_prt' (did you mean vendor_part?)",
        "maps/outbound/bad.yaml:17:28: MAP-611 'references[qualifer=LT]': cannot pick references items by 'qualifer' (did you mean qualifier?)",
        "maps/outbound/bad.yaml:20:9: MAP-607 REF must come before loop PO1 in the 850 004010",
        "maps/outbound/bad.yaml:20:58: MAP-011 no code table named 'purpose_ot' (did you mean purpose_out?)",
        "maps/outbound/bad.yaml:21:9: MAP-607 DTM must come before loop PO1 in the 850 004010",
        "maps/outbound/bad.yaml:22:11: MAP-612 'lines' is a list: give `fn: count` to write it as X12 text",
        "maps/outbound/bad.yaml:22:18: MAP-610 PurchaseOrder has no field 'count'",
    ]
    assert str(err.value).startswith("[MAP-000] maps/outbound/bad.yaml:4:1")


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ("  - CTT: [{from: lines, fn: count}]\n", "MAP-620 the 850 004010 requires BEG; the map never writes it"),
        (
            "  - BEG: [{const: '00'}, {const: SA}, po_number, null, {from: order_date, fn: format_date}]\n"
            "  - each: references\n    segments: [{REF: [qualifier, value]}, {PER: [{const: IC}, value]}]\n"
            "  - each: lines\n    segments: [{PO1: [line_number]}]\n",
            "MAP-619 each: references repeats PER, REF outside a loop",
        ),
        (
            "  - BEG: [{const: '00'}, {const: SA}, po_number, null, {from: order_date, fn: format_date}, {const: x}, "
            "{const: x}, {const: x}, {const: x}, {const: x}, {const: x}, {const: x}, {const: x}]\n",
            "MAP-608 BEG has 12 elements; 13 given",
        ),
        ("  - each: po_number\n    segments: [{REF: [{const: x}, .]}]\n", "MAP-617 each: po_number is not a list"),
        ("  - ST: [{const: '850'}]\n", "MAP-606 ST is written by the envelope"),
    ],
)
def test_structure_problems(catalog, segments, expected) -> None:
    text = (
        'map: m\ndocument: purchase_order\ntarget: {format: x12, set: "850", version: "004010"}\nsegments:\n' + segments
    )
    with pytest.raises(MapLoadError) as err:
        OutboundLibrary.build({"m.yaml": text}, {}, catalog, outbound_functions())
    assert any(expected in f"{p.code} {p.message}" for p in err.value.problems), [str(p) for p in err.value.problems]


def test_shipped_maps_compile_and_workspace_ignores_them(outbound) -> None:
    assert sorted(outbound.maps) == ["summitmed-850-out", "x12-850-004010-out", "x12-850-005010-out"]
    assert outbound.base_for("850", "005010").name == "x12-850-005010-out"  # type: ignore[union-attr]
    assert {"purpose_out", "party_role_out"} <= set(outbound.tables)


def test_workspace_loader_skips_outbound_maps_and_documents(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    ws = load_workspace(home)
    assert "x12-850-004010" in ws.library.maps and not any(m.endswith("-out") for m in ws.library.maps)
    library = load_outbound(home, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
    assert library.for_partner(ws.partners.get("acme"), "850").name == "x12-850-004010-out"  # type: ignore[arg-type]


def test_shipped_partners_render_valid_850s(catalog) -> None:
    """Every partner in partners/ that receives our 850 gets a valid one (its identity and delimiters)."""
    ws = load_workspace(REPO)
    try:
        library = load_outbound(REPO, ws.catalog, partners=ws.partners, profile_files=ws.profile_files)
    except MapLoadError as exc:
        pytest.skip(f"partners/ name outbound maps that are not in maps/outbound/:\n{exc}")
    receiving = [
        p for p in ws.partners.profiles.values() if any(d.direction == "outbound" for d in p.documents.values())
    ]
    for p in receiving:
        data = render_850(rich_po(), p, library.for_partner(p, "850"), control_numbers=control_sequence(), when=WHEN)
        assert errors_of(catalog, data) == [], p.id


# --- property: random valid POs round-trip ---------------------------------------------------------

#: printable ASCII without either partner's delimiters (* > ~ for 4010; | ^ { ~ for 5010)
SAFE = "".join(ch for ch in map(chr, range(32, 127)) if ch not in "*>~|^{")
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PURPOSE = {"00": "original", "01": "cancel", "03": "cancel", "04": "change", "05": "replace", "06": "original"}
ROLES = {
    "BY": "buyer",
    "ST": "ship_to",
    "BT": "bill_to",
    "SE": "seller",
    "VN": "seller",
    "SU": "supplier",
    "RE": "remit_to",
    "MA": "ship_to",
}


def text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(SAFE, min_size=low, max_size=high).map(str.strip).filter(lambda s: len(s) >= low)


def code(size: int, alphabet: str = UPPER) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size)


dates = st.dates(date(1950, 1, 1), date(2099, 12, 31))
amounts = st.decimals(min_value=0, max_value=Decimal("999999"), places=4, allow_nan=False, allow_infinity=False)
times = st.builds(lambda h, m: f"{h:02d}{m:02d}", st.integers(0, 23), st.integers(0, 59))


@st.composite
def parties(draw: st.DrawFn) -> Party:
    role_code = draw(st.sampled_from(sorted(ROLES)))
    address = draw(
        st.none()
        | st.builds(
            Address,
            lines=st.lists(text(1, 55), max_size=2),
            city=st.none() | text(2, 30),
            state=st.none() | code(2),
            postal_code=st.none() | code(5, "0123456789"),
            country=st.none() | code(2),
        ).filter(lambda a: any(a.model_dump().values()))
    )
    return Party(
        role=ROLES[role_code],
        role_code=role_code,
        name=draw(text(1, 60)),
        ids=draw(
            st.lists(
                st.builds(Identifier, qualifier=st.sampled_from(["1", "9", "92", "91", "UL"]), value=text(2, 80)),
                max_size=1,
            )
        ),
        address=address,
        contact=draw(st.none() | text(1, 60)),
    )


@st.composite
def lines(draw: st.DrawFn, number: int) -> PurchaseOrderLine:
    refs = draw(
        st.lists(
            st.builds(
                Reference,
                qualifier=st.sampled_from(["PD", "CT", "DP", "VR"]),
                value=text(1, 30),
                description=st.none() | text(1, 80),
            ),
            max_size=2,
        )
    )
    lot, serial = draw(st.none() | text(1, 30)), draw(st.none() | text(1, 30))
    refs += [Reference(qualifier=q, value=v) for q, v in (("LT", lot), ("SE", serial)) if v is not None]
    item = ItemIds(
        **{k: draw(st.none() | text(1, 48)) for k in ("vendor_part", "buyer_item", "manufacturer_part", "gtin", "ndc")},
        other=draw(
            st.lists(
                st.builds(Identifier, qualifier=st.sampled_from(["CB", "ZZ", "PD"]), value=text(1, 48)), max_size=2
            )
        ),
    )
    return PurchaseOrderLine(
        line_number=str(number),
        quantity=Quantity(value=draw(amounts), uom=draw(st.none() | code(2))),
        unit_price=draw(st.none() | amounts.map(lambda a: Money(amount=a))),
        item=item,
        description=draw(st.none() | text(1, 80)),
        requested_delivery=draw(st.none() | dates),
        references=refs,
        lot=lot,
        serial=serial,
    )


@st.composite
def purchase_orders(draw: st.DrawFn) -> PurchaseOrder:
    """Valid POs in the form the inbound maps produce (raw codes kept, lot/serial also as references)."""
    purpose_code = draw(st.sampled_from(sorted(PURPOSE)))
    header_dates = draw(
        st.lists(
            st.builds(
                DatedValue, qualifier=st.sampled_from(["002", "010", "037", "038"]), value=dates, time=st.none() | times
            ),
            max_size=4,
        )
    )
    requested = next((d.value for d in header_dates if d.qualifier == "002"), None)
    count = draw(st.integers(1, 4))
    return PurchaseOrder(
        provenance=Provenance(test=draw(st.booleans())),
        purpose=PURPOSE[purpose_code],
        purpose_code=purpose_code,
        po_number=draw(text(1, 22)),
        order_date=draw(dates),
        order_type=draw(code(2)),
        release_number=draw(st.none() | text(1, 30)),
        currency=draw(code(3)),
        references=draw(
            st.lists(
                st.builds(Reference, qualifier=code(2), value=text(1, 30), description=st.none() | text(1, 80)),
                max_size=3,
            )
        ),
        dates=header_dates,
        requested_delivery=requested,
        notes=draw(st.lists(text(1, 200), max_size=3)),
        parties=draw(st.lists(parties(), max_size=4)),
        lines=[draw(lines(n)) for n in range(1, count + 1)],
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_random_pos_round_trip(catalog, outbound, inbound, version) -> None:
    needs_inbound(inbound, version)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(purchase_orders())
    def check(po: PurchaseOrder) -> None:
        data = write(po, outbound, version)
        back = read(catalog, inbound, data)
        assert comparable(back) == comparable(po)
        assert back.provenance.test == po.provenance.test

    check()


# --- the command ----------------------------------------------------------------------------------

PARTNER = """\
id: acme
name: Acme Medical Supply
x12:
  version: "004010"
  production: {qualifier: ZZ, id: ACMEMED}
  us: {qualifier: ZZ, id: MERCYHOSP}
documents:
  "850": {map: x12-850-004010-out, direction: outbound}
"""


def make_home(tmp_path: Path) -> Path:
    """A deployment folder: the shipped 850 4010 inbound map and tables, the outbound maps, one partner."""
    home = tmp_path / "home"
    (home / "maps" / "x12").mkdir(parents=True)
    shutil.copy(REPO / "maps" / "x12" / "850-004010.yaml", home / "maps" / "x12")
    shutil.copytree(REPO / "maps" / "tables", home / "maps" / "tables")
    shutil.copytree(OUTBOUND, home / "maps" / "outbound")
    (home / "partners").mkdir()
    (home / "partners" / "acme.yaml").write_text(PARTNER)
    return home


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(render_command, [*args, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def test_cli_writes_a_valid_850(catalog, tmp_path: Path) -> None:
    home = make_home(tmp_path)
    order = tmp_path / "po.json"
    order.write_text(rich_po().model_dump_json())
    code, out, err = run(home, "--partner", "acme", str(order), "--test-control", "42")
    assert code == 0, err
    assert out.startswith("ISA*00*") and "*000000042*0*T*>~" in out and "\nGS*PO*MERCYHOSP*ACMEMED*" in out
    assert errors_of(catalog, out.encode()) == []
    target = tmp_path / "out" / "po.edi"
    target.parent.mkdir()
    code, out, err = run(home, "--partner", "acme", str(order), "--out", str(target), "--test-control", "43")
    assert code == 0, err
    assert "po.edi: 850 for acme (map x12-850-004010-out), PO 4500012345, 3 line(s)" in out
    assert errors_of(catalog, target.read_bytes()) == [] and [p.name for p in target.parent.iterdir()] == ["po.edi"]


def test_cli_errors(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    order = tmp_path / "po.json"
    doc = json.loads(rich_po().model_dump_json())
    doc["lines"][0]["quantity"]["value"] = "ten"
    del doc["po_number"]
    order.write_text(json.dumps(doc))
    code, _, err = run(home, "--partner", "acme", str(order))
    assert (
        code == 1
        and "po.json: po_number: Field required" in err
        and "lines.0.quantity.value: Input should be a valid decimal" in err
    )
    order.write_text("{not json")
    code, _, err = run(home, "--partner", "acme", str(order))
    assert code == 1 and "Invalid JSON" in err
    doc = json.loads(rich_po().model_dump_json())
    doc["lines"][1]["description"] = "10~20 MG"
    order.write_text(json.dumps(doc))
    code, out, err = run(home, "--partner", "acme", str(order))
    assert code == 1 and out == ""
    assert "lines[1].description: [OUT-001] PID05: '10~20 MG' contains the segment terminator '~'" in err
    code, _, err = run(home, "--partner", "nobody", str(order))
    assert code == 2 and "no partner profile 'nobody'" in err
    (home / "partners" / "acme.yaml").write_text(PARTNER.replace("x12-850-004010-out", "x12-850-004010"))
    code, _, err = run(home, "--partner", "acme", str(order))
    assert code == 2 and "partners/acme.yaml:8:11: PRT-021 outbound map 'x12-850-004010' is not defined" in err
