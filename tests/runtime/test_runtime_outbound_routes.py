"""Routing rules for what we send partners (our 997/999/TA1 and 850s), as a user runs it: with no outbound
rule every 850 and acknowledgment still goes to ``partner-outbox``; with rules, an 850 fans out to the
partner, an archive folder and a REST audit endpoint on loopback (a predicate over the canonical PO picks
which), acknowledgments are routed by type, the decision is recorded, and an 850 no rule matches is kept
``unrouted`` with the reason in ``status`` and ``messages``, never dropped. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from runtimekit import CANONICAL_FILES, REPO, Home, gateway, in_process, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures
from support.httpd import Receiver
from test_runtime_recon import _drop, _numbered, _sample

from gateway.cli.main import main
from gateway.store.store import Store
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

ORDER = json.loads((REPO / "samples" / "canonical" / "purchase-order.json").read_text("utf-8"))


def cli(home: Home, *args: str) -> Result:
    """A reading command in process (`gateway send` and `gateway run` run as real processes)."""
    return CliRunner().invoke(main, [*args, "--home", str(home.path)])


def _order_file(home: Home, name: str, po: str) -> Path:
    path = home.path / name
    path.write_text(json.dumps({**ORDER, "po_number": po}), "utf-8")
    return path


def _routes(audit_url: str) -> dict[str, Any]:
    return {
        "destinations": {
            "canonical-json": CANONICAL_FILES,
            "po-archive": {"type": "files", "folder": "archive-out", "name": "{partner}/{doc_type}-{control}.x12"},
            "audit": {"type": "rest", "url": audit_url + "/audit/{doc_type}", "retry": {"max_attempts": 1}},
        },
        "routes": [
            {"name": "default", "match": {"direction": "inbound"}, "to": ["canonical-json"]},
            {"name": "urgent-audit", "stop": False,
             "match": {"doc_type": "850", "where": [{"path": "po_number", "op": "matches", "value": "^URG-"}]},
             "to": ["audit"]},
            {"name": "orders", "match": {"doc_type": "850", "partner": "medsupply"}, "to": ["partner-outbox", "po-archive"]},
            {"name": "acks", "match": {"direction": "outbound", "doc_type": ["997", "999", "TA1"], "test": False},
             "to": ["partner-outbox", "po-archive"]},
        ],
    }  # fmt: skip


@pytest.mark.timeout(900)  # five `gateway` processes: minutes on a loaded 2-core machine
def test_outbound_rules_fan_out_record_and_hold_what_they_do_not_match(
    catalog: Catalog, tmp_path: Path, store_url: str
) -> None:
    with Receiver() as audit:
        home = make_home(tmp_path, store_url, stable_seconds=0, extra=_routes(audit.url))
        lint = cli(home, "config", "lint")
        assert lint.exit_code == 0, lint.output

        urgent = in_process(home, "send", "--partner", "medsupply", str(_order_file(home, "u.json", "URG-1")))
        assert urgent.returncode == 0, urgent.stdout + urgent.stderr
        assert "delivered 3 of 3 to audit, partner-outbox, po-archive" in urgent.stdout, urgent.stdout
        plain = in_process(home, "send", "--partner", "medsupply", str(_order_file(home, "p.json", "PO-PLAIN")))
        assert plain.returncode == 0 and "delivered 2 of 2 to partner-outbox, po-archive" in plain.stdout, plain.stdout
        # orthosupply's 850 matches no rule: recorded, numbered, kept unrouted, the reason said; exit 1
        lost = in_process(home, "send", "--partner", "orthosupply", str(_order_file(home, "o.json", "PO-ORTHO")))
        assert lost.returncode == 1, lost.stdout + lost.stderr
        assert "unrouted: PO PO-ORTHO" in lost.stderr and "partner is orthosupply, not medsupply" in lost.stderr

        # an inbound 855 from medsupply: its 997 goes where the acks rule says
        _drop(home.inbox / "medsupply", "855.edi", _numbered(_sample("855-4010-medsupply-ack.edi"), 201))
        run = gateway(home, "run", "--once")
        assert run.returncode == 0, run.stdout + run.stderr

        sent = sorted(p.name for p in (home.outbox / "medsupply").glob("*.x12"))
        assert sent == ["850-000000001.x12", "850-000000002.x12", "997-000000003.x12"], sent
        archived = sorted(p.name for p in (home.path / "archive-out" / "medsupply").glob("*.x12"))
        assert archived == sent, "every 850 and the 997 copied to the archive folder too"
        for name in sent:
            data = (home.outbox / "medsupply" / name).read_bytes()
            assert data == (home.path / "archive-out" / "medsupply" / name).read_bytes()
            assert Validator(catalog).validate(data).valid, name
        assert not (home.outbox / "orthosupply").exists() or not list((home.outbox / "orthosupply").iterdir())

        (posted,) = audit.received  # only the URG- order, as X12, with its idempotency key
        assert posted.path == "/audit/850" and posted.headers["content-type"] == "application/edi-x12"
        assert b"BEG*00*" in posted.body and b"URG-1" in posted.body and posted.key

        with Store(home.store_url) as store:
            rows = {r.control_number: r for r in store.list_outbound(limit=10)}
            assert rows["000000001"].route == {"rules": ["urgent-audit", "orders"],
                                               "destinations": ["audit", "partner-outbox", "po-archive"]}  # fmt: skip
            assert rows["000000002"].route == {"rules": ["orders"], "destinations": ["partner-outbox", "po-archive"]}
            ack = next(r for r in rows.values() if r.kind == "997")
            assert ack.route == {"rules": ["acks"], "destinations": ["partner-outbox", "po-archive"]}
            assert {d.rule for d in store.list_deliveries(outbound_id=ack.id)} == {"acks"}
            (unrouted,) = store.list_outbound(status="unrouted")
            assert unrouted.partner_id == "orthosupply" and unrouted.route is not None
            assert (
                unrouted.route["unrouted"]
                and "no rule matches outbound 850 from orthosupply" in unrouted.route["reason"]
            )
            assert store.list_deliveries(outbound_id=unrouted.id) == []

        status = cli(home, "status")
        assert f"unrouted           outbound {unrouted.id} 850 to orthosupply: no rule matches" in status.output, (
            status.output
        )
        shown = cli(home, "messages", "show", f"out-{unrouted.id}")
        assert "status unrouted" in shown.output and "(unrouted: no rule matches outbound 850" in shown.output
        shown = cli(home, "messages", "show", f"out-{ack.id}")
        assert "routed: rules acks -> destinations partner-outbox, po-archive" in shown.output, shown.output


def test_without_outbound_rules_everything_we_send_goes_to_the_partner(tmp_path: Path, store_url: str) -> None:
    """Rules for inbound documents only (a catch-all among them): our 850 and 997 still reach the partner,
    and a profile's `stop: false` copy adds a destination without taking that away."""
    home = make_home(
        tmp_path,
        store_url,
        stable_seconds=0,
        extra={
            "destinations": {"everything": {"type": "files", "folder": "all", "name": "{partner}/{doc_type}-{file_id}-{position}.json"},
                             "copies": {"type": "files", "folder": "copies", "name": "{partner}/{doc_type}-{control}.x12"}},
            "routes": [{"name": "catch-all", "match": {}, "to": ["everything"]}],
        },
    )  # fmt: skip
    profile = home.path / "partners" / "medsupply.yaml"
    profile.write_text(
        profile.read_text("utf-8")
        + "\nroutes:\n  - {name: copy-850s, match: {doc_type: '850'}, to: [copies], stop: false}\n",
        "utf-8",
    )
    sent = in_process(home, "send", "--partner", "medsupply", str(_order_file(home, "p.json", "PO-DEFAULT")))
    assert sent.returncode == 0 and "delivered 2 of 2 to copies, partner-outbox" in sent.stdout, (
        sent.stdout + sent.stderr
    )
    _drop(home.inbox / "medsupply", "855.edi", _numbered(_sample("855-4010-medsupply-ack.edi"), 202))
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(p.name for p in (home.outbox / "medsupply").glob("*.x12")) == [
        "850-000000001.x12",
        "997-000000002.x12",
    ]
    assert [p.name for p in (home.path / "copies" / "medsupply").iterdir()] == ["850-000000001.x12"]
    assert list((home.path / "all" / "medsupply").glob("po_acknowledgment-*.json")), "the 855 went to the catch-all"
    with Store(home.store_url) as store:
        ack = store.list_outbound(kind="997")[0]
        assert ack.route == {"rules": ["default-outbound"], "destinations": ["partner-outbox"]}
        order = store.list_outbound(kind="850")[0]
        assert order.route == {"rules": ["medsupply/copy-850s", "default-outbound"],
                               "destinations": ["copies", "partner-outbox"]}  # fmt: skip
