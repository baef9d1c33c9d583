"""Reconciliation's outputs routed like documents, end to end: exceptions opened by `gateway run --once`
POSTed as JSON alerts to a REST endpoint on loopback (once: `gateway recon run` does not alert again),
and the chargeable implant's billing event withheld while its line has an open price exception, then
released by `gateway recon waive` and delivered once. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runtimekit import REPO, gateway, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures
from support.httpd import Receiver
from test_runtime_recon import _drop, _numbered, _sample, hooks_destination, recon, recon_home, set_reconciliation


def _posted(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received if r.path == f"/hooks/{kind}"]


def test_exception_alerts_and_billing_events(tmp_path: Path, store_url: str) -> None:
    with Receiver() as hooks:
        home = recon_home(tmp_path, store_url, "hooks", hooks_destination(hooks))
        set_reconciliation(home, chargeable={"items": ["IMP-HIP-52"]})
        _drop(
            home.path / "send" / "medsupply",
            "po.json",
            (REPO / "samples" / "canonical" / "purchase-order.json").read_bytes(),
        )
        inbox = home.inbox / "medsupply"
        ack = _sample("855-4010-medsupply-ack.edi").replace("PO1*3*2*EA*1450.00*", "PO1*3*2*EA*1495.00*")
        _drop(inbox, "855.edi", _numbered(ack, 201))  # the implant acknowledged 45.00 over contract
        _drop(inbox, "856.edi", _numbered(_sample("856-4010-medsupply-asn.edi"), 301))
        done = gateway(home, "run", "--once")
        assert done.returncode == 0, done.stdout + done.stderr

        listed = json.loads(recon(home, "list", "--json").stdout)  # a ship_late opened and resolved by the 856 too
        alerts = _posted(hooks, "recon_exception")
        assert sorted(a["exception_id"] for a in alerts) == sorted(e["id"] for e in listed), (alerts, listed)
        price = next(a for a in alerts if a["kind"] == "ack_price")
        stored = next(e for e in listed if e["kind"] == "ack_price")
        assert price == {
            "alert": "recon_exception", "exception_id": stored["id"], "kind": "ack_price", "severity": "high",
            "status": "open", "partner_id": "medsupply", "po_number": "4500012345", "line": "3",
            "expected": stored["expected"], "actual": stored["actual"], "amount": "90.00",
            "reason": stored["reason"], "documents": stored["documents"], "opened_at": price["opened_at"],
        }, price  # fmt: skip
        assert "1495.00" in price["actual"] and "1450.00" in price["expected"]
        assert all(r.headers["content-type"] == "application/json" for r in hooks.received)
        assert _posted(hooks, "billing_event") == []  # withheld: line 3 has an open price exception

        again = recon(home, "run")
        assert again.exit_code == 0 and "recorded" not in again.output, again.output
        waived = recon(home, "waive", str(stored["id"]), "--reason", "price increase agreed")
        assert waived.exit_code == 0 and "1 billing event(s) released" in waived.output, waived.output
        (event,) = _posted(hooks, "billing_event")
        assert {k: event[k] for k in ("po_number", "po_line", "ship_notice", "lot", "serial", "quantity", "uom")} == {
            "po_number": "4500012345", "po_line": "3", "ship_notice": "SHP-0098812", "lot": "HX2611",
            "serial": "SN-0045512", "quantity": "2", "uom": "EA",
        }  # fmt: skip
        assert (event["contract_price"], event["amount"], event["item"]["vendor_part"]) == (
            "1450.00",
            "2900.00",
            "IMP-HIP-52",
        )
        assert event["partner_id"] == "medsupply" and event["ship_notice_document"].startswith("document:")

        again = recon(home, "run")
        assert again.exit_code == 0 and "recorded" not in again.output, again.output
        assert len(_posted(hooks, "billing_event")) == 1 and len(_posted(hooks, "recon_exception")) == len(alerts)
