"""Business-level checks: warnings located on the segment, never rejections (gateway/mapping/checks.py).

Small files of our own: a consistent file gives no warning; each inconsistency gives one warning
with its code and place, and the document is still produced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import REPO, interchange

from gateway.cases import find_cases
from gateway.cli.main import main
from gateway.partners.profile import PartnerDirectory
from gateway.translate import FileInput, Translation, Translator
from gateway.workspace import Workspace, load_workspace


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return load_workspace(REPO)


def _one(ws: Workspace, data: bytes, name: str = "t.edi") -> Translation:
    translator = Translator(ws.catalog, ws.library, PartnerDirectory([]))
    (result,) = [t for t in translator.translate(data, FileInput(name)) if isinstance(t, Translation)]
    assert result.ok, result.errors  # a warning never rejects
    return result


def _codes(result: Translation) -> list[str]:
    return [w.code for w in result.warnings]


PO_LINES = ["PO1*1*10*BX*2.5**VN*A", "PO1*2*4*CA*10**VN*B"]  # 25 + 40 = 65; quantities 14


def _po(ctt: str, extra: list[str] | None = None, lines: list[str] | None = None) -> bytes:
    return interchange([["BEG*00*SA*PO-1**20261201", *(lines or PO_LINES), ctt, *(extra or [])]])


def test_consistent_850_has_no_warning(ws: Workspace) -> None:
    assert _one(ws, _po("CTT*2*14", ["AMT*TT*65"])).warnings == []


def test_ctt01_line_count(ws: Workspace) -> None:
    result = _one(ws, _po("CTT*3"))
    (warning,) = result.warnings
    assert warning.code == "BIZ-001" and "CTT01 says 3" in warning.message and "2 PO1 lines" in warning.message
    loc = warning.location
    assert (loc.segment_id, loc.segment_index, loc.element, loc.transaction_set) == ("CTT", 5, 1, "0001")


def test_ctt02_hash_total(ws: Workspace) -> None:
    (warning,) = _one(ws, _po("CTT*2*15")).warnings
    assert warning.code == "BIZ-002" and "(14)" in warning.message
    assert (warning.location.segment_id, warning.location.element) == ("CTT", 2)


def test_ctt02_hash_truncated_to_its_rightmost_digits_is_accepted(ws: Workspace) -> None:
    lines = ["PO1*1*12345678901*EA*1**VN*A"]
    assert "BIZ-002" not in _codes(_one(ws, _po("CTT*1*2345678901", lines=lines)))


def test_amt_tt_against_the_lines(ws: Workspace) -> None:
    result = _one(ws, _po("CTT*2*14", ["AMT*TT*70"]))
    (warning,) = result.warnings
    assert warning.code == "BIZ-003" and "70" in warning.message and "65" in warning.message
    assert (warning.location.segment_id, warning.location.element) == ("AMT", 2)
    assert str(result.document.total.amount) == "70"  # the stated total is carried as stated


def test_duplicate_line_numbers(ws: Workspace) -> None:
    lines = ["PO1*1*10*BX*2.5**VN*A", "PO1*1*4*CA*10**VN*B"]
    (warning,) = _one(ws, _po("CTT*2", lines=lines)).warnings
    assert warning.code == "BIZ-004" and "lines 1 and 2" in warning.message
    assert (warning.location.segment_id, warning.location.segment_index) == ("PO1", 4)  # the second PO1


INVOICE = [
    "BIG*20261201*INV-1**PO-1",
    "IT1*1*10*EA*2.5**VN*A",  # 25.00
    "SAC*C*H090***150",  # line charge 1.50
    "IT1*2*1*EA*10**VN*B",  # 10.00
    "TDS*{tds}",
    "TXI*ST*2.10",
    "SAC*A*C310***500",  # allowance 5.00
    "CTT*2",
]


@pytest.mark.parametrize(("tds", "warned"), [("3360", False), ("3460", True)])
def test_810_tds_is_implied_two_decimals_against_lines_charges_and_taxes(ws: Workspace, tds: str, warned: bool) -> None:
    body = [seg.format(tds=tds) for seg in INVOICE]
    result = _one(ws, interchange([body], functional_id="IN"))
    assert _codes(result) == (["BIZ-003"] if warned else [])
    if warned:
        assert "TDS01 states 34.6" in result.warnings[0].message and "33.6" in result.warnings[0].message
        assert result.warnings[0].location.segment_id == "TDS"


def test_856_ctt01_counts_hl_segments(ws: Workspace) -> None:
    body = ["BSN*00*S1*20261201*1200", "HL*1**S", "HL*2*1*O", "PRF*PO-1", "HL*3*2*I", "LIN*1*VN*X", "SN1**5*EA"]
    assert _one(ws, interchange([[*body, "CTT*3*5"]], functional_id="SH")).warnings == []
    assert _codes(_one(ws, interchange([[*body, "CTT*2*5"]], functional_id="SH"))) == ["BIZ-001"]
    # many suppliers count item levels instead (CTT*1 for the one item): accepted as well
    assert _one(ws, interchange([[*body, "CTT*1*5"]], functional_id="SH")).warnings == []
    assert _codes(_one(ws, interchange([[*body, "CTT*3*6"]], functional_id="SH"))) == ["BIZ-002"]


@pytest.mark.parametrize(("ctt", "warned"), [("CTT*2*4", False), ("CTT*2*3", False), ("CTT*2*7", True)])
def test_855_hash_sums_po1_or_ack_quantities(ws: Workspace, ctt: str, warned: bool) -> None:
    body = ["BAK*00*AC*PO-1*20261201", "PO1*1*3*EA*1**VN*A", "ACK*IA*3*EA", "PO1*2*1*EA*1**VN*B", "ACK*IR*0*EA", ctt]
    assert _codes(_one(ws, interchange([body], functional_id="PR"))) == (["BIZ-002"] if warned else [])


# --- cXML ---------------------------------------------------------------------------------------


def _cxml(request: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<cXML payloadID="p@x" timestamp="2026-12-01T10:00:00">\n'
        '<Header><From><Credential domain="NetworkID"><Identity>X</Identity></Credential></From>'
        '<To><Credential domain="NetworkID"><Identity>Y</Identity></Credential></To>'
        '<Sender><Credential domain="NetworkID"><Identity>X</Identity></Credential><UserAgent>t</UserAgent>'
        f"</Sender></Header>\n<Request>\n{request}\n</Request></cXML>"
    ).encode()


def _order(total: str) -> bytes:
    items = "\n".join(
        f'<ItemOut quantity="{q}" lineNumber="{n}"><ItemID><SupplierPartID>P{n}</SupplierPartID></ItemID>'
        f'<ItemDetail><UnitPrice><Money currency="USD">{p}</Money></UnitPrice><Description>d</Description>'
        "<UnitOfMeasure>EA</UnitOfMeasure></ItemDetail></ItemOut>"
        for n, q, p in ((1, 2, "10.00"), (2, 3, "1.50"))
    )
    return _cxml(
        '<OrderRequest><OrderRequestHeader orderID="PO-1" orderDate="2026-12-01" type="new">\n'
        f'<Total><Money currency="USD">{total}</Money></Total></OrderRequestHeader>\n{items}</OrderRequest>'
    )


def test_cxml_total_against_its_items(ws: Workspace) -> None:
    assert _one(ws, _order("24.50"), "o.xml").warnings == []
    (warning,) = _one(ws, _order("30.00"), "o.xml").warnings
    assert warning.code == "BIZ-003" and "24.5" in warning.message
    assert warning.location.line == 6 and warning.location.file == "o.xml"  # <Total>


def test_cxml_confirmation_item_without_line_number_is_warned_with_its_line(ws: Workspace) -> None:
    request = (
        '<ConfirmationRequest><ConfirmationHeader type="detail" noticeDate="2026-12-01"/>'
        '<OrderReference orderID="PO-1"/>\n'
        '<ConfirmationItem quantity="1" lineNumber="1"><UnitOfMeasure>EA</UnitOfMeasure>'
        '<ConfirmationStatus type="accept" quantity="1"><UnitOfMeasure>EA</UnitOfMeasure></ConfirmationStatus>'
        "</ConfirmationItem>\n"
        '<ConfirmationItem quantity="1" lineNumber=""><UnitOfMeasure>EA</UnitOfMeasure>'
        '<ConfirmationStatus type="accept" quantity="1"><UnitOfMeasure>EA</UnitOfMeasure></ConfirmationStatus>'
        "</ConfirmationItem></ConfirmationRequest>"
    )
    result = _one(ws, _cxml(request), "c.xml")
    (warning,) = result.warnings
    assert warning.code == "BIZ-005" and "<ConfirmationItem>" in warning.message
    assert warning.location.line == 7
    assert [line.line_number for line in result.document.lines] == ["1", None]


def test_shipped_golden_cases_are_consistent(ws: Workspace) -> None:
    """The samples we ship agree with themselves: no business warning on any golden case."""
    translator = ws.translator()
    found: list[Any] = []
    for case in find_cases(ws):
        info = FileInput(Path(case.input).name, partner_id=case.partner, map_name=case.map_name)
        for t in translator.translate(case.input.read_bytes(), info):
            if isinstance(t, Translation):
                found.extend((case.name, w.code, w.message) for w in t.warnings)
    assert found == []


def test_translate_command_shows_warnings_and_still_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "po.edi"
    path.write_bytes(_po("CTT*3"))
    result = CliRunner().invoke(main, ["translate", "--home", str(REPO), str(path)])
    assert result.exit_code == 0, result.output
    assert "WARNING BIZ-001" in result.output and "CTT #5" in result.output
    result = CliRunner().invoke(main, ["translate", "--home", str(REPO), "--json", str(path)])
    (entry,) = json.loads(result.stdout)["results"]
    assert [w["code"] for w in entry["warnings"]] == ["BIZ-001"] and entry["warnings"][0]["location"]["element"] == 1


def test_810_summary_sac_repeating_the_line_charges_is_not_counted_twice(ws: Workspace) -> None:
    """As in a public 810: each line has SAC*C*G830 3.00 and the summary SAC*C*G830 6.00 totals them."""
    body = [
        "BIG*20261201*INV-1**PO-1",
        "IT1*1*2*EA*99.99**VN*A",
        "SAC*C*G830***300",
        "IT1*2*2*EA*79.99**VN*B",
        "SAC*C*G830***300",
        "TDS*36596",
        "SAC*C*G830***600",
        "CTT*2",
    ]
    assert _one(ws, interchange([body], functional_id="IN")).warnings == []
