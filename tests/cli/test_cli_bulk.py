"""Bulk retransmit and reprocess by filter, as an operator runs them against a store filled by
`gateway run --once` on real files, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from click.testing import CliRunner, Result
from runtimekit import (  # noqa: F401 (pytest fixtures)
    Home,
    case,
    gateway,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
)
from support.httpd import Receiver, Reply

from gateway.cli.main import main
from gateway.store import Store
from gateway.store.bulk import Selection

INVOICE = case("medsupply", "810-invoice.edi")
SECOND = INVOICE.replace(b"000000413", b"000000414").replace(b"INV-0042377", b"INV-0042378")


def cli(home: Home, *args: str) -> Result:
    """``gateway ARGS --home HOME`` in this process (a subprocess costs a second of start-up each)."""
    return CliRunner().invoke(main, [*args, "--home", str(home.path)])


def two_invoices(tmp_path: Path, store_url: str) -> Home:
    home = make_home(tmp_path, store_url, stable_seconds=0)
    home.drop("810-a.edi", INVOICE, "medsupply")
    home.drop("810-b.edi", SECOND, "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    return home


def test_bulk_retransmit_counts_asks_links_and_delivers_again(tmp_path: Path, store_url: str) -> None:
    home = two_invoices(tmp_path, store_url)
    outbox = home.outbox / "canonical" / "medsupply"
    written = sorted(outbox.glob("invoice-*.json"))
    assert len(written) == 2
    for p in written:
        p.unlink()
    filters = ["--partner", "medsupply", "--type", "invoice", "--destination", "canonical-json"]
    by_set = cli(home, "retransmit", "--type", "810", "--destination", "canonical-json", "--dry-run")
    assert "2 delivery(ies) would retransmit" in by_set.stdout, by_set.stdout  # the X12 set id works too
    dry = cli(home, "retransmit", *filters, "--dry-run")
    assert dry.exit_code == 0 and "2 delivery(ies) would retransmit" in dry.stdout, dry.stdout + dry.stderr
    unconfirmed = cli(home, "retransmit", *filters)  # no terminal, no --yes: refused, nothing done
    assert unconfirmed.exit_code == 2 and "pass --yes" in unconfirmed.stderr
    done = cli(home, "retransmit", *filters, "--yes", "--reason", "ERP restored from backup")
    assert done.exit_code == 0 and "2 new delivery(ies)" in done.stdout, done.stdout + done.stderr
    assert cli(home, "deliver").exit_code == 0
    assert sorted(outbox.glob("invoice-*.json")) == written, "the retransmissions did not write the documents again"
    with Store(home.store_url) as store:
        rows = store.list_deliveries(destination="canonical-json")
        new = [d for d in rows if d.parent_id is not None]
        assert len(new) == 2 and all(d.status == "delivered" for d in new)
        firsts = {d.id: d for d in rows if d.parent_id is None}
        assert {d.parent_id for d in new} == set(firsts)
        assert all(d.idempotency_key != firsts[d.parent_id].idempotency_key for d in new)  # type: ignore[index]
        event = store.events_for("delivery", new[0].id)[0]
        assert (event.action, event.reason) == ("retransmit", "ERP restored from backup") and event.actor
        # The chain's latest links are picked now: a second run resends the new ones, not the first ones.
        again = store.select_deliveries(store_selection())
        assert {d.id for d in again} == {d.id for d in new}
    # Any link can be resent by id, even an earlier one.
    first = min(firsts)
    link = cli(home, "retransmit", "--delivery", str(first), "--reason", "one more")
    assert link.exit_code == 0 and f"delivery {first} -> " in link.stdout, link.stdout + link.stderr


def store_selection() -> Selection:
    return Selection(partner="medsupply", destination="canonical-json")


def test_bulk_reprocess_after_a_profile_fix_makes_linked_documents(tmp_path: Path, store_url: str) -> None:
    home = two_invoices(tmp_path, store_url)
    before = home.canonical()
    assert {line["quantity"]["uom"] for doc in before.values() for line in doc["lines"]} >= {"CA"}
    profile = home.path / "partners" / "medsupply.yaml"
    text = profile.read_text()
    assert "codes: {CS: CA, CT: BX}" in text
    profile.write_text(text.replace("codes: {CS: CA, CT: BX}", "codes: {CS: BX, CT: BX}"))  # the fix
    dry = cli(home, "reprocess", "--partner", "medsupply", "--type", "810", "--dry-run")
    assert dry.exit_code == 0 and "2 file(s) would be reprocessed" in dry.stdout, dry.stdout + dry.stderr
    assert cli(home, "reprocess", "--partner", "nobody", "--dry-run").stdout.startswith("0 file(s)")
    done = cli(home, "reprocess", "--partner", "medsupply", "--type", "810", "--yes", "--reason", "uom fix")
    assert done.exit_code == 0 and "2 file(s) queued" in done.stdout, done.stdout + done.stderr
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    with Store(home.store_url) as store:
        files = {f.id: f for f in store.list_files()}
        children = [f for f in files.values() if f.parent_id is not None]
        assert len(children) == 2 and all(f.status == "processed" for f in children)
        docs = store.list_documents()
        new = [d for d in docs if d.file_id in {f.id for f in children}]
        old = {d.id: d for d in docs if d.file_id not in {f.id for f in children}}
        assert len(new) == 2 and all(d.parent_id in old for d in new)
        units = {line["quantity"]["uom"] for d in new for line in json.loads(d.canonical)["lines"]}
        assert "CA" not in units and "BX" in units
        events = [e for f in children for e in store.events_for("file", f.parent_id or 0)]
        assert [(e.action, e.reason) for e in events if e.action == "reprocess"] == [("reprocess", "uom fix")] * 2
        assert all(e.actor for e in events if e.action == "reprocess")
    # Only the newest copy of each chain is picked by a second run.
    again = cli(home, "reprocess", "--partner", "medsupply", "--dry-run")
    picked = {int(line.split()[1]) for line in again.stdout.splitlines()[1:]}
    assert picked == {f.id for f in children}, again.stdout
    assert cli(home, "reprocess").exit_code == 2  # no id, no filter: a usage error, not "everything"


def test_dead_letters_retransmitted_in_bulk_reach_a_loopback_receiver(tmp_path: Path, store_url: str) -> None:
    with Receiver() as erp:
        erp.script(Reply(422, body=b"unknown vendor"), Reply(422, body=b"unknown vendor"))  # rejected: dead letters
        destinations = {"erp": {"type": "rest", "url": erp.url + "/{doc_type}/{business_key}"}}
        routes = [{"name": "erp", "match": {"direction": "inbound"}, "to": ["erp"]}]
        home = make_home(tmp_path, store_url, stable_seconds=0, extra={"destinations": destinations, "routes": routes})
        home.drop("810-a.edi", INVOICE, "medsupply")
        home.drop("810-b.edi", SECOND, "medsupply")
        assert gateway(home, "run", "--once").returncode == 6  # two dead letters
        dry = cli(home, "retransmit", "--status", "dead_letter", "--destination", "erp", "--dry-run")
        assert "2 delivery(ies) would retransmit" in dry.stdout, dry.stdout
        done = cli(
            home, "retransmit", "--status", "dead_letter", "--destination", "erp", "--yes", "--reason", "vendor added"
        )
        assert done.exit_code == 0 and "2 new delivery(ies)" in done.stdout, done.stdout
        assert cli(home, "deliver").exit_code == 0
        keys = erp.keys()
    assert len(keys) == 4 and len(set(keys)) == 4, "each retransmission must carry its own idempotency key"
    with Store(home.store_url) as store:
        rows = {d.id: d for d in store.list_deliveries(destination="erp")}
        new = [d for d in rows.values() if d.parent_id is not None]
        assert len(new) == 2 and {d.status for d in new} == {"delivered"}
        assert {rows[d.parent_id].status for d in new if d.parent_id} == {"discarded"}  # out of the dead-letter queue
        assert store.list_deliveries(status="dead_letter") == []
    assert cli(home, "retransmit", "--status", "dead_letter", "--dry-run").stdout.startswith("0 delivery(ies)")
