"""``gateway config lint`` (and ``partners lint``): every configuration problem at once, located."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import REPO
from pydantic import Field

import gateway.components
from gateway.cli.config_cli import lint_config
from gateway.cli.main import main
from gateway.config_check import check_config
from gateway.delivery.base import DestinationConfig, SecretRef
from gateway.delivery.registry import Registry
from gateway.mapping.marked import load_marked
from gateway.settings import EXAMPLE


class FilesConfig(DestinationConfig):
    """A stand-in for the files destination's config."""

    folder: str = "outbox/canonical"
    name: str = "{partner}/{doc_type}-{file_id}-{position}.json"


class RestConfig(DestinationConfig):
    """A stand-in with a secret, as the REST destination will have."""

    url: str
    token: SecretRef | None = None
    headers: dict[str, SecretRef] = Field(default_factory=dict)


def registry() -> Registry:
    found = Registry()
    found.register("destination", "files", FilesConfig, lambda *a: None, "files")
    found.register("destination", "rest", RestConfig, lambda *a: None, "rest")
    return found


BROKEN = """\
destinations:
  canonical-json:
    type: files
  erp:
    type: fils
  ap-api:
    type: rest
    url: https://ap.example/invoices
    token: {env: GATEWAY_TEST_UNSET_TOKEN}
    headers:
      X-Api-Key: {file: /nonexistent/key}
    retry: {max_attempts: 0, delays: [5, 30]}
  archive:
    type: files
    nmae: "{file_id}.json"
routes:
  - name: everything
    to: [canonical-json]
  - name: invoices
    match: {doc_type: invoice, partner: medsuply}
    to: [ap-apii, erp]
  - name: bad
    match:
      where:
        - {path: total.amount, op: greater, value: 1}
        - {path: lines.lot, op: matches, value: "(L"}
    to: [erp]
"""

PROFILE_ROUTES = """
routes:
  - name: implants
    match: {doc_type: ship_notice, partner: coastal}
    to: [billing]
  - name: implants
    to: [canonical-json]
"""


def deployment(tmp_path: Path, settings: str | None = BROKEN) -> Path:
    home = tmp_path / "edi"
    (home / "partners").mkdir(parents=True)
    shutil.copy(REPO / "partners" / "medsupply.yaml", home / "partners")
    shutil.copytree(REPO / "partners" / "medsupply", home / "partners" / "medsupply")
    if settings is not None:
        (home / "gateway.yaml").write_text(settings, "utf-8")
    return home


def lines(checked: Any) -> list[str]:
    return sorted(str(p) for p in checked.problems.items)


def find(found: list[str], *parts: str) -> str:
    hits = [line for line in found if all(part in line for part in parts)]
    assert len(hits) == 1, (parts, found)
    return hits[0]


def test_every_problem_at_once_each_at_its_line_and_column(tmp_path: Path) -> None:
    home = deployment(tmp_path)
    found = lines(lint_config(home, registry()))
    assert find(found, "CFG-011").startswith("gateway.yaml:5:11: CFG-011 destination 'erp': unknown type 'fils' ")
    assert "(did you mean files?)" in find(found, "CFG-011")
    assert find(found, "GATEWAY_TEST_UNSET_TOKEN").startswith("gateway.yaml:9:5: CFG-014 ")
    assert "[destinations.ap-api.token]" in find(found, "GATEWAY_TEST_UNSET_TOKEN")
    assert find(found, "/nonexistent/key").startswith("gateway.yaml:11:7: CFG-014 ")
    assert find(found, "CFG-013").startswith("gateway.yaml:12:13: CFG-013 ")
    assert "[destinations.ap-api.retry.max_attempts]" in find(found, "CFG-013")
    assert find(found, "nmae").startswith("gateway.yaml:15:5: CFG-012 unknown key 'nmae' (did you mean name?)")
    assert find(found, "ap-apii").startswith("gateway.yaml:21:10: CFG-016 rule 'invoices' sends to 'ap-apii'")
    assert "(did you mean ap-api?)" in find(found, "ap-apii")
    assert find(found, "medsuply").startswith("gateway.yaml:20:41: CFG-019 ")
    assert "(did you mean medsupply?)" in find(found, "medsuply")
    shadow = find(found, "CFG-017")
    assert shadow.startswith("gateway.yaml:19:5: CFG-017 rule 'invoices' is never reached: rule 'everything' (line 17)")
    op = find(found, "'greater'")
    assert op.startswith("gateway.yaml:25:32: CFG-004 Value error, unknown op 'greater' (ops: eq, ne, in,")
    assert op.endswith("[routes.2.match.where.0.op]")
    assert find(found, "bad regular expression").startswith("gateway.yaml:26:42: CFG-004 ")
    assert len(found) == 10, found


def test_a_partners_routes_are_checked_in_its_profile(tmp_path: Path) -> None:
    home = deployment(tmp_path, settings=None)
    profile = home / "partners" / "medsupply.yaml"
    base = profile.read_text("utf-8")
    profile.write_text(base + PROFILE_ROUTES, "utf-8")
    line = len(base.splitlines()) + 2  # the first `- name:`
    found = lines(lint_config(home, registry()))
    assert find(found, "CFG-021").startswith(f"partners/medsupply.yaml:{line + 2}:")
    assert find(found, "billing").startswith(f"partners/medsupply.yaml:{line + 3}:")
    assert "(defined: canonical-json, partner-outbox)" in find(found, "billing"), "the shipped destinations"
    assert find(found, "CFG-018").startswith(f"partners/medsupply.yaml:{line + 4}:")
    assert len(found) == 3, found
    profile.write_text(base + "routes:\n  - {name: x, to: [canonical-json], stpo: true}\n", "utf-8")
    (bad,) = lint_config(home, registry()).problems.items
    assert str(bad).startswith(f"partners/medsupply.yaml:{line}:37: PRT-003 unknown key 'stpo' (did you mean stop?)")


def test_the_shipped_example_and_no_file_at_all_are_clean(tmp_path: Path) -> None:
    assert not lint_config(deployment(tmp_path / "a", settings=EXAMPLE), registry()).problems.items
    checked = lint_config(deployment(tmp_path / "b", settings=None), registry())
    assert not checked.problems.items and (checked.destinations, checked.routes) == (1, 1)


def test_the_shipped_default_destination_fits_a_files_component() -> None:
    raw = load_marked(EXAMPLE, "gateway.yaml")
    assert not check_config(raw, registry(), {}).problems.items
    empty = check_config(raw, Registry(), {})
    assert [p.code for p in empty.problems.items] == ["CFG-011"]
    assert "no destination types are registered" in empty.problems.items[0].message


def test_secrets_that_are_set_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret\n", "utf-8")
    text = f"destinations:\n  api:\n    type: rest\n    url: https://x\n    token: {{env: GW_T}}\n    headers:\n      K: {{file: {key}}}\n"
    text += "routes:\n  - {name: all, to: [api]}\n"
    monkeypatch.setenv("GW_T", "abc")
    assert not check_config(load_marked(text, "g.yaml"), registry(), None).problems.items
    both = text.replace("{env: GW_T}", f"{{env: GW_T, file: {key}}}")
    (problem,) = check_config(load_marked(both, "g.yaml"), registry(), None).problems.items
    assert problem.code == "CFG-014" and "exactly one" in problem.message


def test_bad_yaml_is_one_problem(tmp_path: Path) -> None:
    home = deployment(tmp_path, settings="routes: [unclosed\n")
    (problem,) = lint_config(home, registry()).problems.items
    assert problem.code == "CFG-002" and str(problem).startswith("gateway.yaml:2:1:")


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's registry (gateway.components.default_registry) with the stand-in components."""
    monkeypatch.setattr(gateway.components, "default_registry", registry)


def test_config_lint_exits_2_listing_every_problem(tmp_path: Path, stand_in: None) -> None:
    home = deployment(tmp_path)
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "gateway.yaml:5:11: CFG-011" in result.output and "gateway.yaml:21:10: CFG-016" in result.output
    assert "10 problem(s) in the configuration (4 destination(s), 3 route(s), 0 partner route(s))" in result.output


def test_config_lint_clean_is_exit_0_and_one_line(tmp_path: Path, stand_in: None) -> None:
    home = deployment(tmp_path, settings=EXAMPLE)
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: 1 destination(s), 1 route(s), 0 partner route(s)\n"


def test_partners_lint_runs_the_configuration_check(tmp_path: Path, stand_in: None) -> None:
    home = deployment(tmp_path)
    result = CliRunner().invoke(main, ["partners", "lint", str(home)])
    assert result.exit_code == 2 and "gateway.yaml:21:10: CFG-016" in result.output, result.output
    # A profile's bad route is reported once, though both checks see it.
    (home / "gateway.yaml").unlink()
    profile = home / "partners" / "medsupply.yaml"
    profile.write_text(profile.read_text("utf-8") + "routes:\n  - {name: x, to: [nowhere], stpo: true}\n", "utf-8")
    result = CliRunner().invoke(main, ["partners", "lint", str(profile)])
    assert result.exit_code == 2 and len([x for x in result.output.splitlines() if "'stpo'" in x]) == 1, result.output
    # Linting one profile reports its own routes' problems, not gateway.yaml's.
    profile.write_text(profile.read_text("utf-8").replace(", stpo: true", ""), "utf-8")
    (home / "gateway.yaml").write_text(BROKEN, "utf-8")
    result = CliRunner().invoke(main, ["partners", "lint", str(profile)])
    assert result.exit_code == 2 and "'nowhere'" in result.output and "gateway.yaml" not in result.output


def test_the_examples_in_docs_routing_md_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.components import default_registry

    text = (REPO / "docs" / "routing.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) == 5
    # The outbound example, the retry-policy example and the worked example, with the real components.
    monkeypatch.setenv("AP_WEBHOOK_SECRET", "whsec_c2VjcmV0")
    monkeypatch.setenv("ERP_DB_PASSWORD", "x")
    token = tmp_path / "billing-token"
    token.write_text("t")
    worked = blocks[4].replace("/etc/gateway/billing-token", str(token))
    for example in (blocks[2], blocks[3], worked):
        checked = check_config(load_marked(example, "docs/routing.md"), default_registry(), None)
        assert not checked.problems.items, [str(p) for p in checked.problems.items]
    doc = "\n".join(blocks[:2]).replace("destinations:\n", "destinations:\n  ap-review: {type: files}\n", 1)
    doc = doc.replace(
        "  canonical-json:\n", "  billing-api: {type: files}\n  erp-staging: {type: files}\n  canonical-json:\n"
    )
    checked = check_config(load_marked(doc, "docs/routing.md"), registry(), None)
    assert not checked.problems.items, [str(p) for p in checked.problems.items]
    assert (checked.destinations, checked.routes) == (4, 3)


OUTBOUND = """\
destinations:
  canonical-json: {type: files}
  po-archive: {type: files, folder: archive-out}
routes:
  - name: everything
    to: [canonical-json]
  - name: orders
    match: {doc_type: "850"}
    to: [partner-outbox, po-archiv]
  - name: all-out
    match: {direction: outbound}
    to: [partner-outbx]
  - name: acks
    match: {doc_type: ["997", "99"]}
    to: [po-archive]
  - name: acks-again
    match: {direction: outbound, doc_type: "997"}
    to: [po-archive]
"""


def test_outbound_rules_are_linted_on_their_own_side(tmp_path: Path) -> None:
    """An inbound catch-all hides no outbound rule; an outbound catch-all hides the outbound rules after it;
    `partner-outbox` is always a destination; misspellings get a did-you-mean."""
    found = lines(lint_config(deployment(tmp_path, OUTBOUND), registry()))
    assert find(found, "po-archiv'").startswith("gateway.yaml:9:26: CFG-016 rule 'orders' sends to 'po-archiv'")
    assert "(did you mean po-archive?)" in find(found, "po-archiv'")
    assert "(did you mean partner-outbox?)" in find(found, "partner-outbx")
    assert find(found, "'99'").startswith("gateway.yaml:14:13: CFG-004 ")
    assert "unknown document type '99' (did you mean 999?)" in find(found, "'99'")
    shadow = find(found, "CFG-017")
    assert shadow.startswith("gateway.yaml:16:5: CFG-017 rule 'acks-again' is never reached: rule 'all-out' (line 10)")
    assert len(found) == 4, found


def test_a_misspelt_predicate_path_is_found_where_it_is_written(tmp_path: Path) -> None:
    # Before, it passed lint and the rule then matched nothing, silently.
    settings = """\
routes:
  - name: big-invoices
    match:
      doc_type: invoice
      where:
        - {path: totl.amount, op: gt, value: 1000}
    to: [canonical-json]
  - name: dock-2
    match:
      where:
        - {path: "parties[role=ship_to].ids[qualifer=92].value", op: eq, value: MGH-DOCK2}
    to: [canonical-json]
  - name: fine
    match:
      where:
        - {path: "parties[role=ship_to].ids[qualifier=92].value", op: eq, value: MGH-DOCK2}
        - {path: shipment_id, op: exists}
    to: [canonical-json]
"""
    found = lines(lint_config(deployment(tmp_path, settings), registry()))
    total = find(found, "totl")
    assert total.startswith("gateway.yaml:3:5: CFG-004 ")
    assert (
        "where[0] path 'totl.amount' names nothing in a document: invoice: no 'totl' (did you mean 'total'?)" in total
    )
    assert "[qualifer=...] selects by a field" in find(found, "qualifer")
    assert len(found) == 2, found
