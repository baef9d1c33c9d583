"""The shipped X12 maps: golden cases of the base maps and the X12 partners, and the shared corpus.

- every golden case of an X12 base map (``maps/x12/cases/``) and of an X12 partner
  (``partners/<id>/cases/``) translates to its expected JSON;
- every base map (850/855/856/810 in 004010 and 005010) exists and has a case, every X12
  partner has at least two;
- every 850/855/856/810 set in ../shared/corpus/x12 that the validator accepts translates
  through the base map for its set and version, except the sets listed in
  ``KNOWN_MAPPING_FAILURES`` (each with its reason); values are spot-checked on several files
  per set.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import CORPUS, REPO, interchange

from gateway.canonical import Invoice, PurchaseOrder, PurchaseOrderAcknowledgment, ShipNotice
from gateway.canonical.documents import AckBucket, ShippedItem
from gateway.cases import Case, find_cases, run_case
from gateway.partners.profile import PartnerDirectory
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace, load_workspace

SETS = ("850", "855", "856", "810")
VERSIONS = ("004010", "005010")
X12_PARTNERS = ("medsupply", "orthosupply", "summitmed")


@pytest.fixture(scope="module")
def ws() -> Workspace:
    """The repository's own maps, tables and partner profiles."""
    return load_workspace(REPO)


def _x12_cases() -> list[Case]:
    """Cases of the X12 base maps and X12 partners (CSV/XML partners' cases are tested with them)."""
    try:
        ws = load_workspace(REPO)
    except Exception:  # noqa: BLE001 - reported by test_workspace_loads, not at collection
        return []
    out = []
    for case in find_cases(ws):
        profile = ws.partners.get(case.partner) if case.partner else None
        if (case.map_name or "").startswith("x12-") or (profile is not None and profile.format == "x12"):
            out.append(case)
    return out


CASES = _x12_cases()


def test_workspace_loads(ws: Workspace) -> None:
    assert ws.library.maps


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden_case(ws: Workspace, case: Case) -> None:
    result = run_case(ws, case)
    assert not result.missing_expected, f"{case.expected} is missing (gateway partners test --update)"
    assert result.passed, "\n".join(result.diff)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("set_id", SETS)
def test_every_base_map_exists_and_has_cases(ws: Workspace, set_id: str, version: str) -> None:
    base = ws.library.base_for(set_id, version)
    assert base is not None and base.name == f"x12-{set_id}-{version}"
    assert any(c.map_name == base.name for c in CASES), f"no golden case for {base.name}"


@pytest.mark.parametrize("partner", X12_PARTNERS)
def test_every_x12_partner_has_two_cases(ws: Workspace, partner: str) -> None:
    assert ws.partners.get(partner) is not None
    assert len([c for c in CASES if c.partner == partner]) >= 2


# --- the shared corpus ----------------------------------------------------------------------

X12 = CORPUS / "x12"
CORPUS_FILES = (
    sorted(p for s in SETS if (X12 / s).is_dir() for p in (X12 / s).rglob("*") if p.is_file()) if X12.is_dir() else []
)

#: Sets the validator accepts that the base map cannot turn into a canonical document, and why.
#: PO101 is optional in X12 and these retail files leave it out; the canonical PO and ack lines
#: require ``line_number`` (the hospital's reconciliation key).
KNOWN_MAPPING_FAILURES: dict[str, str] = {}  # line_number is optional since PO101 is; none fail today


@pytest.fixture(scope="module")
def base_translator(ws: Workspace) -> Translator:
    """A translator with no partner profiles: every set goes through the base map for its set and version."""
    return Translator(ws.catalog, ws.library, PartnerDirectory([]))


def translate(translator: Translator, path: Path) -> list[Translation]:
    return [t for t in translator.translate(path.read_bytes(), FileInput(name=path.name)) if isinstance(t, Translation)]


def _is_mapping_failure(t: Translation) -> bool:
    return bool(t.errors) and all(str(e.code).startswith("MAP-") for e in t.errors)


@pytest.mark.corpus
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: str(p.relative_to(X12)))
def test_corpus_sets_that_validate_translate(corpus: Path, base_translator: Translator, path: Path) -> None:
    key = str(path.relative_to(X12))
    results = translate(base_translator, path)
    assert results, f"{key}: no transaction set read"
    failures = [t for t in results if _is_mapping_failure(t)]
    for t in results:
        if t.ok:
            assert t.base_map and t.map_name == f"x12-{t.set_id}-{t.version}"
    if key in KNOWN_MAPPING_FAILURES:
        assert failures, f"{key} now translates: remove it from KNOWN_MAPPING_FAILURES"
        for t in failures:
            assert any("line_number" in e.message for e in t.errors), [e.message for e in t.errors]
        return
    assert not failures, "\n".join(f"ST {t.set_control}: {e.code} {e.message}" for t in failures for e in t.errors)


def _docs(translator: Translator, name: str) -> list:
    path = X12 / name
    return [t.document for t in translate(translator, path) if t.ok]


def _all_items(notice: ShipNotice) -> list[ShippedItem]:
    items: list[ShippedItem] = []

    def walk(packs: list) -> None:
        for pack in packs:
            items.extend(pack.items)
            walk(pack.packs)

    for order in notice.orders:
        items.extend(order.items)
        walk(order.packs)
    return items


@pytest.mark.corpus
def test_corpus_850_values(corpus: Path, base_translator: Translator) -> None:
    (po,) = _docs(base_translator, "850/node-x12__850.edi")
    assert isinstance(po, PurchaseOrder)
    assert po.po_number == "08292233294" and po.order_date == date(2010, 11, 27)
    first = po.lines[0]
    assert (first.line_number, first.quantity.value, first.quantity.uom) == ("1", Decimal("120"), "EA")
    assert first.unit_price is not None and first.unit_price.amount == Decimal("9.25")
    assert first.item.vendor_part == "AB3542" and first.description == "SMALL WIDGET"

    (po,) = _docs(base_translator, "850/edinet__x12.850.edi")
    assert po.po_number == "1000012"
    (line,) = po.lines
    assert line.quantity.value == 1 and line.unit_price.amount == Decimal("19.95")
    assert line.item.vendor_part == "0054321"


@pytest.mark.corpus
def test_corpus_855_values(corpus: Path, base_translator: Translator) -> None:
    (ack,) = _docs(base_translator, "855/node-x12__855.edi")
    assert isinstance(ack, PurchaseOrderAcknowledgment)
    assert ack.po_number == "POTEST1112" and ack.ack_type_code == "AD" and ack.ack_type.value == "accepted"
    first = ack.lines[0]
    assert first.quantity is not None and (first.quantity.value, first.quantity.uom) == (Decimal("3"), "UN")
    assert first.unit_price is not None and first.unit_price.amount == Decimal("4.5")
    assert first.item.gtin == "9780446360265"
    (status,) = first.statuses
    assert (status.bucket, status.raw_code, status.quantity.value) == (AckBucket.ACCEPTED, "IA", 3)
    assert status.substitute_item is None  # ACK27-29 (BI*ACK*AC) are not item id pairs
    assert ack.lines[1].statuses[0].bucket is AckBucket.REJECTED

    (ack,) = _docs(base_translator, "855/stedi__X12_5010_855_inbound.edi")
    assert ack.provenance.version == "005010" and ack.po_number == "365465413"
    line = ack.lines[0]
    assert line.line_number == "item-1" and line.item.vendor_part == "VND1234567"
    assert line.quantity.value == 8 and line.unit_price.amount == 400
    assert [s.raw_code for s in line.statuses] == ["IA"]

    (ack,) = _docs(base_translator, "855/stupidedi__004010_PR855_pass_1.edi")
    assert ack.supplier_order_number == "338093" and ack.acknowledgment_date == date(2017, 5, 2)


@pytest.mark.corpus
def test_corpus_856_values(corpus: Path, base_translator: Translator) -> None:
    (asn,) = _docs(base_translator, "856/vscode-edi__old.edi")
    assert isinstance(asn, ShipNotice)
    assert asn.shipment_id == "177164933" and asn.ship_date == date(2019, 9, 16)
    assert asn.bill_of_lading == "1Z764R371309889853"
    (order,) = asn.orders
    assert order.po_number == "6218" and order.po_date == date(2019, 9, 16)
    (pack,) = order.packs
    assert pack.sscc == "0354023220190916"
    (item,) = pack.items
    assert item.lot == "3308212" and item.item.ndc == "50242005306"
    assert item.quantity.value == 4 and item.ordered_quantity is not None and item.ordered_quantity.value == 4
    assert item.expiration_date == date(2021, 10, 31)  # sent as DTM*208

    (asn,) = _docs(base_translator, "856/ediengine__856.Crossdock.OK.edi")
    assert asn.package_count == 5 and asn.carrier == "OVNT"
    assert asn.gross_weight is not None and (asn.gross_weight.value, asn.gross_weight.uom) == (Decimal("24"), "LB")
    assert [o.po_number for o in asn.orders] == ["POREF00", "POREF01"]
    assert [p.sscc for p in asn.orders[0].packs][:2] == ["00000715670002152360", "00000715670002152377"]
    assert all(i.quantity.value == 12 and i.quantity.uom == "EA" for i in _all_items(asn))

    (asn,) = _docs(base_translator, "856/botsplugins__retailer_856_1.x12")
    assert len(_all_items(asn)) == 58  # every HL*I of the file, under its packs


@pytest.mark.corpus
def test_corpus_810_values(corpus: Path, base_translator: Translator) -> None:
    docs = _docs(base_translator, "810/botsplugins__810-004010-01.x12")
    second = docs[1]
    assert isinstance(second, Invoice)
    assert second.invoice_number == "465267" and second.po_number == "539893"
    assert second.total is not None and second.total.amount == Decimal("1129.92")
    (line,) = second.lines
    assert (line.quantity.value, line.quantity.uom, line.unit_price.amount) == (Decimal("11"), "CA", Decimal("96"))
    assert [(c.kind, c.code, c.amount.amount) for c in line.charges] == [("charge", "D360", Decimal("73.92"))]

    (inv,) = _docs(base_translator, "810/edinet__x12.810a.edi")
    assert inv.invoice_number == "DO091003TESTINV01" and inv.total.amount == Decimal("365.96")
    first = inv.lines[0]
    assert first.unit_price.amount == Decimal("99.99") and first.item.vendor_part == "ID001"
    assert [c.code for c in first.charges] == ["G830"]  # SAC*N (no allowance or charge) skipped
    assert inv.terms is not None and inv.terms.discount_percent == 10 and inv.terms.discount_days == 10

    (inv,) = _docs(base_translator, "810/pythonedi__test_edi.txt")
    first = inv.lines[0]
    assert (first.quantity.uom, first.unit_price.amount) == ("BG", Decimal("25.6000"))
    assert first.item.manufacturer_part == "365985" and not inv.credit_memo


# --- engine behaviour the shipped maps rely on ------------------------------------------------


def test_ack_item_pairs_stop_at_ack26(ws: Workspace) -> None:
    """ACK27-29 (agency, source, industry code) are not qualifier/id pairs: no substitute item."""
    body = [
        "BAK*00*AC*PO-1*20261201",
        "PO1*1*3*EA*4.50**VN*X-1",
        "ACK*IA*3*EA************************BI*ACK*AC",
        "PO1*2*1*EA*9**VN*X-2",
        "ACK*IS*1*EA*068*20261203**VN*X-2B*UP*000111222333",
    ]
    translator = Translator(ws.catalog, ws.library, PartnerDirectory([]))
    (result,) = [
        t
        for t in translator.translate(interchange([body], functional_id="PR"), FileInput("t.edi"))
        if isinstance(t, Translation)
    ]
    assert result.ok, result.errors
    first, second = result.document.lines
    assert first.statuses[0].substitute_item is None
    sub = second.statuses[0].substitute_item
    assert sub is not None and (sub.vendor_part, sub.gtin) == ("X-2B", "000111222333")


def test_nested_packs_do_not_repeat_themselves(ws: Workspace) -> None:
    """``each: HL[HL03=P]`` inside a pack yields its child packs, never the pack's own HL."""
    body = [
        "BSN*00*S1*20261201*1200",
        "HL*1**S",
        "HL*2*1*O",
        "PRF*PO-1",
        "HL*3*2*P",
        "MAN*GM*00000000000000000017",
        "HL*4*3*I",
        "LIN*1*VN*X-1",
        "SN1**1*EA",
    ]
    translator = Translator(ws.catalog, ws.library, PartnerDirectory([]))
    (result,) = [
        t
        for t in translator.translate(interchange([body], functional_id="SH"), FileInput("t.edi"))
        if isinstance(t, Translation)
    ]
    assert result.ok, result.errors
    (pack,) = result.document.orders[0].packs
    assert pack.packs == [] and [i.line_number for i in pack.items] == ["1"]
