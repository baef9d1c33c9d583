"""Acknowledgment tracking, the whole exchange: 850s sent through the send path, the partner's 997, 999
and TA1 fed back through the inbox and processed by the runtime, matched by the tracker under a
controlled clock (overdue, late), alerts routed to a REST endpoint on loopback, and a resend with a
new ISA13 that our validator accepts, linked to the original; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from runtimekit import (  # noqa: F401 - pytest fixtures among them
    CANONICAL_FILES,
    Home,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
)
from support.httpd import Receiver

from gateway.canonical import PurchaseOrder
from gateway.cli.acks_cli import acks
from gateway.cli.main import main
from gateway.runtime.ackresend import resend_outbound
from gateway.runtime.send import OrderSender
from gateway.runtime.service import Service, ensure_folders
from gateway.settings import load_settings
from gateway.store import Store
from gateway.workspace import Workspace, load_workspace
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

ORDER = json.loads((Path(__file__).resolve().parents[2] / "samples/canonical/purchase-order.json").read_text())


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += timedelta(hours=hours)


def ack_interchange(control: int, body: list[str], *, version: str = "00401") -> bytes:
    """An interchange from MedSupply to us holding ``body`` (GS..GE / TA1 segments)."""
    sep = "U" if version == "00401" else "^"
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{'MEDSUPPLY':<15}*ZZ*{'MERCYHOSP':<15}*261206*1200*{sep}*{version}*"
        f"{control:09d}*0*P*>"
    )
    groups = sum(1 for s in body if s.startswith("GS*"))
    return "~\n".join([isa, *body, f"IEA*{groups}*{control:09d}"]).encode() + b"~\n"


def fa_group(control: int, kind: str, version: str, segments: list[str]) -> list[str]:
    """A functional group holding one 997/999 set made of ``segments`` (AK1 ... AK9)."""
    return [
        f"GS*FA*MEDSUPPLY*MERCYHOSP*20261206*1200*{control}*X*{version}",
        f"ST*{kind}*0001",
        *segments,
        f"SE*{len(segments) + 2}*0001",
        f"GE*1*{control}",
    ]


def deploy(tmp_path: Path, store_url: str, alerts_url: str) -> Home:
    home = make_home(
        tmp_path,
        store_url,
        stable_seconds=0,
        extra={
            "destinations": {
                "canonical-json": CANONICAL_FILES,
                "alerts": {"type": "rest", "url": alerts_url + "/alerts/{doc_type}", "retry": {"max_attempts": 1}},
            },
            "routes": [
                {"name": "default", "match": {"direction": "inbound"}, "to": ["canonical-json"]},
                {"name": "ack-alerts", "match": {"doc_type": ["ack_overdue", "ack_rejected", "ack_unmatched"]},
                 "to": ["alerts"]},
            ],
        },
    )  # fmt: skip
    profile = home.path / "partners" / "medsupply.yaml"
    profile.write_text(profile.read_text() + "acks: {deadline_hours: 24, deadlines: {PO: 4}}\n")
    return home


def service(home: Home, clock: Clock, ws: Workspace | None = None) -> tuple[Service, Workspace]:
    """The deployment's service on the test's clock (``ws``: the workspace a previous one loaded)."""
    deployment, problems = load_settings(home.path)
    assert not problems.items, [str(p) for p in problems.items]
    ensure_folders(deployment)
    store = Store(deployment.store_url, clock=clock)
    store.upgrade()
    ws = ws or load_workspace(home.path)
    svc = Service(deployment, ws, store, worker="w1", clock=clock)
    svc.acks.every = 0
    return svc, ws


def run_and_restart(svc: Service, home: Home, clock: Clock, *, run: bool = True) -> tuple[Service, Store]:
    """``gateway run --once`` (unless not ``run``), then a fresh process's service on the same store."""
    if run:
        svc.run_once()
    svc.store.close()
    fresh, _ = service(home, clock, svc.send_folder.sender.workspace)
    return fresh, fresh.store


def owed(store: Store) -> dict[int, dict[str, Any]]:
    return {r["outbound_id"]: r for r in store.list_owed_acks(limit=100)}


def test_the_whole_exchange(store_url: str, tmp_path: Path, catalog: Catalog) -> None:
    with Receiver() as alerts:
        home = deploy(tmp_path, store_url, alerts.url)
        clock = Clock()
        svc, ws = service(home, clock)
        store = svc.store
        sender = OrderSender(ws, store, svc.archive, clock=clock)
        profile = sender.workspace.partners.get("medsupply")
        assert profile is not None
        orders = [PurchaseOrder.model_validate({**ORDER, "po_number": f"PO-ACK-{n}"}) for n in range(1, 5)]
        sent = sender.record(profile, orders[:3], command="send", deliver=True, worker="w1")
        svc.deliverer.deliver_owed([i for s in sent for i in s.delivery_ids])
        # The fourth is recorded but its delivery is not final (leased elsewhere) when its 997 comes back.
        early = sender.record(profile, orders[3:], command="send", deliver=True, worker="other")[0]
        first = svc.acks.check()
        assert first.tracked == 4 and first.started == 3, first
        ids = [s.outbound_id for s in sent]
        gs = {s.outbound_id: str(int(s.control_number)) for s in [*sent, early]}
        rows = owed(store)
        assert {rows[i]["status"] for i in ids} == {"waiting"}
        assert rows[ids[0]]["due_at"] == clock.now + timedelta(hours=4)  # PO deadline, from delivery
        assert rows[early.outbound_id]["due_at"] is None  # not delivered: its clock has not started

        # The partner answers: a group-level 997 (no AK2) for the first, a 999 rejecting the second's set,
        # a TA1 accepting the third's interchange, a 997 for the fourth before its delivery is final, and
        # a 997 for a group we never sent.
        reject = ["AK2*850*0001", "IK3*N1*5*N1*8", "IK4*2*98*7*XX", "IK5*R*5", "AK9*R*1*1*0"]
        home.drop("acks-1.x12", ack_interchange(501, [
            *fa_group(501, "997", "004010", [f"AK1*PO*{gs[ids[0]]}", "AK9*A*1*1*1"]),
            *fa_group(502, "997", "004010", [f"AK1*PO*{gs[early.outbound_id]}", "AK2*850*0001", "AK5*A",
                                             "AK9*A*1*1*1"]),
            *fa_group(503, "997", "004010", ["AK1*PO*777777", "AK9*A*1*1*1"]),
        ]), "medsupply")  # fmt: skip
        home.drop("acks-2.x12", ack_interchange(601, [
            *fa_group(601, "999", "005010X231A1", [f"AK1*PO*{gs[ids[1]]}*005010", *reject]),
        ], version="00501"), "medsupply")  # fmt: skip
        home.drop("ta1.x12", ack_interchange(701, [f"TA1*{int(sent[2].control_number):09d}*261206*1200*A*000"]),
                  "medsupply")  # fmt: skip
        summary = svc.run_once()
        assert summary.store_error is None
        rows = owed(store)
        assert rows[ids[0]]["status"] == "accepted" and rows[ids[0]]["group_status"] == "accepted"
        assert rows[ids[1]]["status"] == "rejected" and rows[ids[1]]["group_status"] == "rejected"
        assert "segment N1 at position 5 (loop N1): IK304 8: Segment Has Data Element Errors" in rows[ids[1]]["errors"]
        assert any("IK403 7: Invalid Code Value" in e and "'XX'" in e for e in rows[ids[1]]["errors"])
        assert rows[ids[2]]["status"] == "waiting" and rows[ids[2]]["ta1_code"] == "A"
        assert rows[early.outbound_id]["status"] == "accepted" and not rows[early.outbound_id]["late"]
        receipts = {(r["kind"], r["outcome"]) for r in store.list_ack_receipts(limit=20)}
        assert receipts == {("997", "matched"), ("997", "unmatched"), ("999", "matched"), ("TA1", "matched")}
        assert store.get_outbound(ids[1]).expected_ack == "rejected"

        # A second 997 for the first group is reported as a duplicate and changes nothing.
        home.drop("acks-3.x12", ack_interchange(801, fa_group(801, "997", "004010",
                                                               [f"AK1*PO*{gs[ids[0]]}", "AK9*R*1*1*0"])), "medsupply")  # fmt: skip
        svc, store = run_and_restart(svc, home, clock)
        assert owed(store)[ids[0]]["status"] == "accepted"
        assert [r["outcome"] for r in store.list_ack_receipts(limit=1)] == ["duplicate"]

        # Five hours later (the gateway restarted meanwhile) the third is overdue: a TA1 is not a 997. The
        # fourth, answered before its delivery was final, is delivered now and stays accepted.
        clock.advance(5)
        svc, store = run_and_restart(svc, home, clock, run=False)
        svc.run_once()
        rows = owed(store)
        assert rows[ids[2]]["status"] == "overdue" and rows[early.outbound_id]["status"] == "accepted"
        assert store.get_outbound(ids[2]).expected_ack == "overdue"
        paths = sorted(r.path for r in alerts.received)
        assert paths == ["/alerts/ack_overdue", "/alerts/ack_rejected", "/alerts/ack_unmatched"], paths
        overdue_alert = json.loads(next(r.body for r in alerts.received if r.path.endswith("overdue")))
        assert overdue_alert["outbound_id"] == ids[2] and overdue_alert["partner_id"] == "medsupply"
        assert all(r.headers["content-type"] == "application/json" for r in alerts.received)
        assert svc.acks.check().overdue == 0  # flagged once

        # Its 997 comes at last: reconciled, and marked late.
        home.drop("acks-4.x12", ack_interchange(901, fa_group(901, "997", "004010",
                                                               [f"AK1*PO*{gs[ids[2]]}", "AK9*A*1*1*1"])), "medsupply")  # fmt: skip
        svc, store = run_and_restart(svc, home, clock)
        late = owed(store)[ids[2]]
        assert late["status"] == "accepted" and late["late"] is True

        # The rejected one is resent with a new ISA13 from the sequence, valid, and linked both ways.
        resent = resend_outbound(store, svc.archive, svc.acks, ids[1], actor="tester", reason="N1 fixed",
                                 clock=clock, worker="w1")  # fmt: skip
        numbers = {int(s.control_number) for s in [*sent, early]}
        assert int(resent.row.control_number or 0) > max(numbers)
        assert resent.data[90:99].decode() == resent.row.control_number
        assert Validator(catalog).validate(resent.data).valid
        rows = owed(store)
        assert rows[resent.row.id]["resent_from"] == ids[1] and rows[ids[1]]["resent_as"] == resent.row.id
        events = store.events_for("outbound", resent.row.id)
        assert any(e.action == "retransmit" and e.actor == "tester" and "N1 fixed" in (e.reason or "") for e in events)
        svc.store.close()

        # The operator's view, through the command.
        runner = CliRunner()
        listed = runner.invoke(acks, ["--rejected", "--json", "--home", str(home.path)])
        assert listed.exit_code == 0, listed.output
        assert [r["outbound_id"] for r in json.loads(listed.output)["rows"]] == [ids[1]]
        shown = runner.invoke(acks, ["show", str(ids[1]), "--home", str(home.path)])
        assert shown.exit_code == 0 and "IK304 8" in shown.output and f"resent as {resent.row.id}" in shown.output
        lineage = runner.invoke(main, ["messages", "show", f"out-{ids[1]}", "--home", str(home.path)])
        assert lineage.exit_code == 0, lineage.output
        assert ": rejected" in lineage.output and "IK304 8" in lineage.output, lineage.output
        unmatched = runner.invoke(acks, ["--unmatched", "--home", str(home.path)])
        assert "777777" in unmatched.output and "duplicate" in unmatched.output, unmatched.output
        # A resend can be resent in turn, from the command: a new number again, the chain kept.
        again = runner.invoke(
            acks, ["resend", str(resent.row.id), "--reason", "still no 997", "--home", str(home.path)]
        )
        assert again.exit_code == 0, again.output
        assert f"resends {resent.row.id}" in again.output and "delivered 1 of 1" in again.output
        newest = max((home.outbox / "medsupply").glob("850-*.x12"))
        assert Validator(catalog).validate(newest.read_bytes()).valid
        assert int(newest.read_bytes()[90:99]) == int(resent.row.control_number or 0) + 1
        # `gateway retransmit --outbound` is the same resend (the command): a third number, linked.
        third = runner.invoke(
            main, ["retransmit", "--outbound", str(resent.row.id), "--reason", "third try", "--home", str(home.path)]
        )
        assert third.exit_code == 0, third.output
        assert f"resends {resent.row.id}" in third.output
        latest = max((home.outbox / "medsupply").glob("850-*.x12"))
        assert Validator(catalog).validate(latest.read_bytes()).valid
        assert int(latest.read_bytes()[90:99]) == int(resent.row.control_number or 0) + 2
