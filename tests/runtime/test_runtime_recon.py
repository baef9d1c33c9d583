"""Reconciliation end to end, as a user runs it: our 850 sent from the send folder, the supplier's
855/856/810 X12 files dropped in the inbox with mismatches, `gateway run --once`, then `gateway recon`
lists exactly the expected exceptions; a credit memo resolves the price exception; an operator waives
another; every change is an event. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result
from runtimekit import CANONICAL_FILES, REPO, Home, gateway, make_home, pg_url_fixture, store_url_fixture  # noqa: F401 - fixtures

from gateway.cli.main import main

SAMPLES = REPO / "samples" / "x12"


def _numbered(text: str, number: int) -> bytes:
    """A sample interchange with ISA13/GS06/GE02/IEA02 set to ``number`` (so none is an ISA13 duplicate)."""
    segments = [s for s in text.replace("\n", "").split("~") if s.strip()]
    out = []
    count = 0
    for seg in segments:
        parts = seg.split("*")
        if parts[0] == "ISA":
            parts[13] = f"{number:09d}"
        elif parts[0] == "GS":
            parts[6] = str(number)
        elif parts[0] == "GE":
            parts[2] = str(number)
        elif parts[0] == "IEA":
            parts[2] = f"{number:09d}"
        elif parts[0] == "ST":
            count = 0
        count += 1
        if parts[0] == "SE":
            parts[1] = str(count)
        out.append("*".join(parts))
    return ("~\n".join(out) + "~\n").encode()


def _sample(name: str) -> str:
    return (SAMPLES / name).read_text("utf-8")


def _drop(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.upload"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)


def recon_home(
    root: Path,
    store_url: str,
    name: str,
    destination: dict[str, Any],
    *,
    kinds: tuple[str, ...] = ("recon_exception", "billing_event"),
    processing: dict[str, Any] | None = None,
) -> Home:
    """A deployment whose inbound documents go to canonical JSON files and whose reconciliation outputs
    (``kinds``) go to the destination ``name``."""
    return make_home(
        root,
        store_url,
        stable_seconds=0,
        extra={
            **({"processing": processing} if processing else {}),
            "destinations": {
                "canonical-json": CANONICAL_FILES,
                name: destination,
            },
            "routes": [
                {"name": "default", "match": {"direction": "inbound"}, "to": ["canonical-json"]},
                {"name": "recon", "match": {"doc_type": list(kinds)}, "to": [name]},
            ],
        },
    )  # fmt: skip


def hooks_destination(receiver: Any) -> dict[str, Any]:
    """A REST destination posting to ``receiver`` at ``/hooks/<doc_type>``, one attempt."""
    return {"type": "rest", "url": receiver.url + "/hooks/{doc_type}", "retry": {"max_attempts": 1}}


def set_reconciliation(home: Home, **settings: Any) -> None:
    """medsupply's profile's ``reconciliation:`` section, replaced by ``settings``."""
    path = home.path / "partners" / "medsupply.yaml"
    profile = yaml.safe_load(path.read_text("utf-8"))
    profile["reconciliation"] = settings
    path.write_text(yaml.safe_dump(profile), "utf-8")


def recon(home: Any, *args: str) -> Result:
    """``gateway recon ARGS`` in process (the reading commands; `gateway run` runs as a real process)."""
    return CliRunner().invoke(main, ["recon", *args, "--home", str(home.path)])


def _open(home: Any) -> dict[str, dict[str, Any]]:
    done = recon(home, "list", "--json")
    assert done.exit_code == 0, done.output
    return {f"{e['kind']}:{e['line'] or '-'}": e for e in json.loads(done.stdout)}


def test_chain_with_mismatches_then_a_credit_memo(tmp_path: Path, store_url: str) -> None:
    home = make_home(tmp_path, store_url, stable_seconds=0)
    profile_path = home.path / "partners" / "medsupply.yaml"
    profile = yaml.safe_load(profile_path.read_text("utf-8"))
    profile["reconciliation"] = {"lot_tracked": ["IMP-HIP-52"], "tolerances": {"price": {"upper": "0.01"}}}
    profile_path.write_text(yaml.safe_dump(profile), "utf-8")

    _drop(
        home.path / "send" / "medsupply",
        "po.json",
        (REPO / "samples" / "canonical" / "purchase-order.json").read_bytes(),
    )
    inbox = home.inbox / "medsupply"
    _drop(inbox, "855.edi", _numbered(_sample("855-4010-medsupply-ack.edi"), 201))  # line 2: 2 of 4 backordered
    asn = _sample("856-4010-medsupply-asn.edi").replace("LIN*3*VN*IMP-HIP-52*LT*HX2611*", "LIN*3*VN*IMP-HIP-52*")
    _drop(inbox, "856.edi", _numbered(asn, 301))  # the implant ships without its lot
    invoice = _sample("810-4010-medsupply-invoice.edi").replace("IT1*1*10*BX*42.50*", "IT1*1*10*BX*44.00*")
    invoice = invoice.replace("TDS*336100", "TDS*359100")  # 440 + 236 + 2900 + 15.00 freight
    _drop(inbox, "810.edi", _numbered(invoice, 401))
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr

    found = _open(home)
    listed = CliRunner().invoke(main, ["messages", "list", "--home", str(home.path)])
    assert listed.exit_code == 0 and "recon_exception" not in listed.stdout  # no rule names them: none recorded
    opened = {k for k, e in found.items() if e["status"] == "open"}
    assert opened == {"ack_backorder:2", "ship_lot_missing:3", "invoice_price:1", "invoice_charge:-"}, found
    price = found["invoice_price:1"]
    assert price["reason"] == "invoiced 44.00 a box, ordered at 42.50: 1.50 over on 10 boxes = 15.00"
    assert price["amount"] == "15.00" and price["severity"] == "high"
    assert found["ack_backorder:2"]["reason"] == "2 of 4 cases backordered until 2026-12-03 (236.00)"
    assert found["ship_lot_missing:3"]["reason"] == "lot-tracked item IMP-HIP-52 shipped on SHP-0098812 without lot"
    assert found["invoice_charge:-"]["reason"] == (
        "invoice INV-0042213 charges freight 15.00, which the partner's terms do not allow"
    )
    listed = recon(home, "list", "--open", "--severity", "high", "--csv")
    rows = listed.stdout.splitlines()
    assert rows[0].startswith("id,partner_id,po_number,kind,severity,status,line,documents,")
    assert sorted(r.split(",")[3] for r in rows[1:]) == ["invoice_charge", "invoice_price", "ship_lot_missing"]
    # `gateway reconcile` (the name) with no subcommand lists as `recon list` does.
    same = CliRunner().invoke(main, ["reconcile", "--open", "--severity", "high", "--csv", "--home", str(home.path)])
    assert same.exit_code == 0 and same.stdout == listed.stdout, same.output
    text = CliRunner().invoke(main, ["reconcile", "--open", "--partner", "medsupply", "--home", str(home.path)])
    assert text.exit_code == 0, text.output
    summary = text.stdout.split("exceptions found by partner", 1)[1].splitlines()
    assert "fill %" in summary[1] and "backord. %" in summary[1] and "inv. on hold" in summary[1]
    (row,) = [line.split() for line in summary[2:] if line.startswith("medsupply")]
    assert row[4] == "15.00" and row[5] == "1", row  # price variance 15.00, one invoice on hold
    status = CliRunner().invoke(main, ["status", "--json", "--home", str(home.path)])
    assert status.exit_code == 0, status.output
    indicators = json.loads(status.stdout)["indicators"]
    assert indicators["recon_exceptions_open"] == sum(e["status"] == "open" for e in found.values())
    shown = recon(home, "show", "4500012345", "--partner", "medsupply")
    assert shown.exit_code == 0, shown.output
    grid = {line.split()[0]: line for line in shown.stdout.splitlines() if re.match(r"^[123] ", line)}
    assert grid["1"].split()[2:8] == ["BX", "10", "10", "10", "10", "42.50"] and "invoice_price" in grid["1"]
    assert grid["2"].split()[2:6] == ["CA", "4", "4", "2"] and "ack_backorder" in grid["2"]

    credit = (
        "ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *261128*0930*U*00401*000000402*0*P*>~"
        "GS*IN*MEDSUPPLY*MERCYHOSP*20261128*0930*402*X*004010~ST*810*0001~"
        "BIG*20261128*CM-0042213*20261123*4500012345***CR~IT1*1*10*BX*1.50**VN*GLV-NIT-M~TDS*1500~CTT*1~"
        "SE*6*0001~GE*1*402~IEA*1*000000402~"
    )
    _drop(inbox, "credit.edi", credit.encode())
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _open(home)
    assert after["invoice_price:1"]["status"] == "resolved"
    assert after["invoice_price:1"]["resolved_by"] == "document"
    assert "CM-0042213" in after["invoice_price:1"]["resolution"]
    assert {k for k, e in after.items() if e["status"] == "open"} == opened - {"invoice_price:1"}

    charge = after["invoice_charge:-"]["id"]
    waived = recon(home, "waive", str(charge), "--reason", "freight agreed by phone")
    assert waived.exit_code == 0, waived.output
    again = recon(home, "waive", str(charge), "--reason", "twice")
    assert again.exit_code == 2 and "not open" in again.output
    history = recon(home, "history", str(charge), "--json")
    events = json.loads(history.stdout)["events"]
    assert [(e["action"], e["reason"]) for e in events][1:] == [("waive", "freight agreed by phone")]
    history = recon(home, "history", str(after["invoice_price:1"]["id"]), "--json")
    assert [e["action"] for e in json.loads(history.stdout)["events"]] == ["open", "resolve"]
    summary = recon(home, "summary", "--month", f"{datetime.now(UTC):%Y-%m}", "--json")
    (row,) = json.loads(summary.stdout)["partners"]
    assert row["partner"] == "medsupply" and row["open"] == 2 and row["at_stake"] == "3136.00"  # 236 + 2900
    assert (row["lines_ordered"], row["fill_rate"], row["backorder_rate"]) == (3, "66.7", "33.3")  # line 2: 2 of 4
