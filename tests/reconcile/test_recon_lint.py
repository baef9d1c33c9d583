"""``reconciliation:`` as `gateway config lint` checks it: every problem at once, located, with its code."""

from __future__ import annotations

from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main
from gateway.config_check import check_config
from gateway.delivery.registry import Registry
from gateway.mapping.marked import load_marked

GLOBAL = """\
reconciliation:
  uom:
    - {from: CA, to: CA, factor: 1}
    - {from: CA, to: EA, factor: 10}
    - {from: EA, to: CA, factor: 0.2}
  item_id_order: [gtin, vendor_part, gtin]
  allowed_charges: [freight, D240]
  items:
    GLV-NIT-M: {}
  tolerances:
    price: {lower_percent: 100}
"""

PARTNER_SEMANTIC = """\
id: medsupply
reconciliation:
  allowed_charges: [fuel]
"""


def _codes(text: str, partner: str | None = None) -> list[str]:
    raw = load_marked(text, "gateway.yaml")
    partners = {"medsupply": load_marked(partner, "partners/medsupply.yaml")} if partner else None
    checked = check_config(raw, Registry(), partners)
    return [f"{p.code} {p.mark.line if p.mark else '-'} {p.message}" for p in checked.problems.items]


def test_every_problem_at_once_with_its_code_and_line() -> None:
    found = _codes(GLOBAL)
    assert [f.split()[0] for f in found] == ["CFG-060", "CFG-061", "CFG-062", "CFG-063", "CFG-064", "CFG-065"], found
    assert found[0].startswith("CFG-060 3 a conversion from CA to itself")
    assert found[1].startswith("CFG-061 5 1 EA is 0.1 CA in an earlier conversion, 0.2 here")
    assert "allowed charge 'freight' is not a SAC02 code" in found[3]


def test_partner_problems_have_their_own_codes() -> None:
    assert _codes("{}", PARTNER_SEMANTIC) == [
        "PRT-043 3 partner medsupply: allowed charge 'fuel' is not a SAC02 code (a letter and three digits, "
        "e.g. D240 freight)"
    ]


def test_config_lint_command_reports_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "partners").mkdir()
    profile = (REPO / "partners" / "medsupply.yaml").read_text("utf-8") + "reconciliation:\n  lot_tracked: [X]\n"
    (tmp_path / "partners" / "medsupply.yaml").write_text(profile, "utf-8")
    (tmp_path / "gateway.yaml").write_text(GLOBAL, "utf-8")
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "CFG-062" in result.output and "item_id_order lists gtin twice" in result.output


def test_chargeable_supplies_are_linted() -> None:
    chargeable = "reconciliation:\n  chargeable: {items: [IMP-HIP-52, IMP-HIP-52]}\n"
    found = _codes(chargeable)
    assert [f.split()[0] for f in found] == ["CFG-067", "CFG-068"], found
    assert found[0] == "CFG-067 2 chargeable lists IMP-HIP-52 twice"
    assert "no routing rule names doc_type billing_event" in found[1]
    routed = chargeable + "routes:\n  - {name: bill, match: {doc_type: billing_event}, to: [x]}\ndestinations:\n"
    routed += "  x: {type: files, folder: out}\n"
    assert [f.split()[0] for f in _codes(routed) if f.startswith("CFG-06")] == ["CFG-067"]
    partner = "id: medsupply\nreconciliation:\n  chargeable: {items: []}\n"
    assert [f.split()[0] for f in _codes("{}", partner)] == ["CFG-066"]  # nothing chargeable: nothing to route
    partner = "id: medsupply\nreconciliation:\n  chargeable: {items: [IMP-HIP-52]}\n"
    assert _codes("{}", partner)[0].startswith("CFG-068 3 partner medsupply: chargeable items, but no routing rule")
