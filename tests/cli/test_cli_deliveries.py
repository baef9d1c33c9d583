"""Operators' delivery commands end to end: `gateway run --once` as a process, then
deliveries/deadletters/retransmit/release/requeue through the CLI's entry point against the same deployment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from runtimekit import PARTNERS, Home, case, gateway, in_process, make_home, x12

INVOICE = case("medsupply", "810-invoice.edi")


def sqlite_home(tmp_path: Path, **settings: float) -> Home:
    return make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", **settings)


def test_deliveries_are_listed_shown_and_retransmitted(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", INVOICE, "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "delivered    2 delivery(ies) (1 to canonical-json, 1 to partner-outbox)" in run.stdout, run.stdout
    listed = json.loads(in_process(home, "deliveries", "list", "--json").stdout)
    assert {d["destination"] for d in listed} == {"canonical-json", "partner-outbox"}
    assert {d["status"] for d in listed} == {"delivered"}
    doc = next(d for d in listed if d["destination"] == "canonical-json")
    shown = in_process(home, "deliveries", "show", str(doc["id"]))
    assert shown.returncode == 0 and "attempt 1" in shown.stdout and "delivered" in shown.stdout, shown.stdout
    target = next((home.outbox / "canonical" / "medsupply").glob("invoice-*.json"))
    target.unlink()
    again = in_process(home, "retransmit", str(doc["document_id"]), "--reason", "ERP lost it")
    assert again.returncode == 0, again.stdout + again.stderr
    assert in_process(home, "deliver").returncode == 0
    assert target.exists(), "the retransmission did not write the document again"
    new = json.loads(in_process(home, "deliveries", "list", "--json", "--destination", "canonical-json").stdout)
    assert len(new) == 2 and new[0]["parent_id"] == doc["id"] and new[0]["idempotency_key"] != doc["idempotency_key"]
    events = json.loads(in_process(home, "deliveries", "show", str(new[0]["id"]), "--json").stdout)["events"]
    assert events[0]["action"] == "retransmit" and events[0]["reason"] == "ERP lost it" and events[0]["actor"]


def test_a_missing_destination_makes_dead_letters_an_operator_can_retry_or_discard(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", INVOICE, "medsupply")
    blocker = home.outbox / "canonical"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the folder should be")  # every write fails: retried, never lost
    run = gateway(home, "run", "--once")
    assert run.returncode == 6, run.stdout + run.stderr
    assert "1 waiting for a retry" in run.stdout
    (pending,) = json.loads(in_process(home, "deliveries", "list", "--status", "pending", "--json").stdout)
    assert "cannot write" in pending["last_error"]
    discarded = in_process(home, "deadletters", "discard", str(pending["id"]), "--reason", "test data")
    assert discarded.returncode == 0, discarded.stderr
    assert (
        json.loads(in_process(home, "deliveries", "show", str(pending["id"]), "--json").stdout)["status"] == "discarded"
    )
    refused = in_process(home, "deadletters", "retry", str(pending["id"]))
    assert refused.returncode == 1 and "retry takes dead_letter" in refused.stderr


@pytest.mark.parametrize("command", ["release", "requeue"])
def test_release_and_requeue_refuse_a_file_in_the_wrong_state(tmp_path: Path, command: str) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", INVOICE, "medsupply")
    assert gateway(home, "run", "--once").returncode == 0
    refused = in_process(home, command, "1")
    assert refused.returncode == 1 and "is processed" in refused.stderr, refused.stderr
    assert "(`gateway reprocess` translates it again" in refused.stderr, "what to do instead"
    assert in_process(home, command, "99").returncode == 2
    home.drop("again.edi", INVOICE, "medsupply")  # the same bytes: a duplicate, refused (policy reject)
    gateway(home, "run", "--once")
    duplicate = in_process(home, command, "2")
    assert "is duplicate" in duplicate.stderr and "`gateway reprocess 2` lets it through" in duplicate.stderr


def test_a_held_duplicate_released_goes_through(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    profile = home.path / "partners" / "medsupply.yaml"
    text = profile.read_text()
    assert "  policy: reject" in text
    profile.write_text(text.replace("  policy: reject", "  policy: hold"))
    home.drop("810.edi", INVOICE, "medsupply")
    assert gateway(home, "run", "--once").returncode == 0
    home.drop("810-again.edi", INVOICE.replace(b"000000413", b"000000414"), "medsupply")
    held = gateway(home, "run", "--once")
    files = json.loads(in_process(home, "messages", "list", "--json").stdout)
    second = next(f for f in files if f["name"] == "810-again.edi")
    assert second["status"] == "held", held.stdout
    released = in_process(home, "release", str(second["id"]), "--reason", "the partner resent it on purpose")
    assert released.returncode == 0, released.stderr
    assert gateway(home, "run", "--once").returncode == 0
    files = json.loads(in_process(home, "messages", "list", "--json").stdout)
    assert next(f for f in files if f["id"] == second["id"])["status"] == "processed"
    assert len(list((home.outbox / "canonical" / "medsupply").glob("invoice-*.json"))) == 2


def test_reprocess_translates_again_as_a_linked_file_and_delivers_again(tmp_path: Path) -> None:
    from gateway.store import Store

    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", INVOICE, "medsupply")
    assert gateway(home, "run", "--once").returncode == 0
    done = in_process(home, "reprocess", "1", "--reason", "map fixed")
    assert done.returncode == 0 and "reprocessed as file 2" in done.stdout, done.stdout + done.stderr
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    with Store(home.store_url) as store:
        second = store.get_file(2)
        assert (second.status, second.parent_id) == ("processed", 1)
        old = store.document_ids_by_position(1)
        (new,) = [d for d in store.list_documents() if d.file_id == 2]
        assert new.parent_id == old[new.position] and new.status == "translated"
        keys = {d.idempotency_key for d in store.list_deliveries(destination="canonical-json")}
        assert len(keys) == 2, "the reprocessed document was not delivered under a new key"
        actions = [(e.action, e.actor is not None) for e in store.events_for("file", 1)]
    assert ("reprocess", True) in actions
    assert len(list((home.outbox / "canonical" / "medsupply").glob("invoice-*.json"))) == 2
    # The partner has its 997 for these bytes: a reprocessing (ours) does not answer it again.
    assert [p.name for p in (home.outbox / "medsupply").glob("997-*.x12")] == ["997-000000001.x12"]
    assert "acknowledged 0 interchange(s)" in run.stdout, run.stdout
    shown = in_process(home, "messages", "show", "2")
    assert "not acknowledged again: the partner has file 1's 997 000000001" in shown.stdout, shown.stdout
    again = in_process(home, "reprocess", "2", "--reason", "once more")
    assert again.returncode == 0, again.stdout + again.stderr
    assert gateway(home, "run", "--once").returncode == 0
    assert len(list((home.outbox / "medsupply").glob("997-*.x12"))) == 1, "answered again on a second reprocessing"
    refused = in_process(home, "reprocess", "99")
    assert refused.returncode == 2


def test_a_reprocessing_of_a_file_partly_refused_answers_the_partner_again(tmp_path: Path) -> None:
    # Something was refused then: the answer may differ now (a map or profile fixed), so the partner gets it.
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", x12(PARTNERS / "medsupply/cases/810-invoice.edi", 610, sets=2, tag="p", bad=frozenset({2})),
              "medsupply")  # fmt: skip
    assert gateway(home, "run", "--once").returncode == 1  # partly rejected
    done = in_process(home, "reprocess", "1", "--reason", "validator fixed")
    assert done.returncode == 0, done.stdout + done.stderr
    gateway(home, "run", "--once")
    assert len(list((home.outbox / "medsupply").glob("997-*.x12"))) == 2
    shown = in_process(home, "messages", "show", "2")
    assert "not acknowledged again" not in shown.stdout, shown.stdout


def test_a_reprocessing_answers_again_when_the_first_answer_never_reached_the_partner(tmp_path: Path) -> None:
    import sqlite3

    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", INVOICE, "medsupply")
    assert gateway(home, "run", "--once").returncode == 0
    # Its 997 never got out (a dead letter to the partner's outbox: a full disk, a wrong folder).
    with sqlite3.connect(tmp_path / "var" / "gateway.sqlite") as db:
        changed = db.execute("UPDATE deliveries SET status = 'dead_letter' WHERE outbound_id IS NOT NULL").rowcount
    assert changed == 1
    assert in_process(home, "reprocess", "1", "--reason", "answer lost").returncode == 0
    gateway(home, "run", "--once")
    assert len(list((home.outbox / "medsupply").glob("997-*.x12"))) == 2


def test_deliveries_show_says_a_409_was_taken_as_delivered(tmp_path: Path) -> None:
    from support.httpd import Receiver, Reply

    with Receiver() as receiver:
        receiver.script(Reply(409, body=b"already have it"))
        rest = {"type": "rest", "url": receiver.url + "/{doc_type}/{number}", "conflict_is_delivered": True}
        home = make_home(
            tmp_path,
            f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
            stable_seconds=0,
            extra={
                "destinations": {"ap": rest},
                "routes": [{"name": "ap", "match": {"doc_type": "invoice"}, "to": ["ap"]}],
            },
        )
        home.drop("810.edi", INVOICE, "medsupply")
        assert gateway(home, "run", "--once").returncode == 0
    (delivery,) = json.loads(in_process(home, "deliveries", "list", "--destination", "ap", "--json").stdout)
    shown = in_process(home, "deliveries", "show", str(delivery["id"]))
    assert "HTTP 409" in shown.stdout and "note: 409 Conflict taken as delivered" in shown.stdout, shown.stdout
    assert receiver.received[0].path == "/invoice/INV-0042377", "{number} in the url"
    # A filter naming a destination the deployment does not have is said so (it may be one removed since).
    for command in (
        ["deadletters", "list"],
        ["deliveries", "list"],
        ["retransmit", "--status", "delivered", "--dry-run"],
    ):
        listed = in_process(home, *command, "--destination", "apx")
        assert listed.returncode == 0, listed.stderr
        assert "note: no destination 'apx' (did you mean 'ap'?)" in listed.stderr, (command, listed.stderr)
    assert "note:" not in in_process(home, "deadletters", "list", "--destination", "ap").stderr


def test_a_reprocessed_isa13_duplicate_gets_the_997_its_ta1_refused_it(tmp_path: Path) -> None:
    # The duplicate was answered with a TA1 R (025): an answer, but a refusal. Let through by a reprocessing, its
    # invoice is translated and delivered: the partner must hear it was accepted (before: no 997 at all).
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810.edi", INVOICE, "medsupply")
    assert gateway(home, "run", "--once").returncode == 0
    home.drop("same-isa13.edi", INVOICE.replace(b"INV-0042377", b"INV-0042399"), "medsupply")
    gateway(home, "run", "--once")
    ta1s = list((home.outbox / "medsupply").glob("TA1-*.x12"))
    assert len(ta1s) == 1 and b"*R*025" in ta1s[0].read_bytes()
    assert in_process(home, "reprocess", "2", "--reason", "a new invoice under a reused ISA13").returncode == 0
    gateway(home, "run", "--once")
    assert len(list((home.outbox / "medsupply").glob("997-*.x12"))) == 2
    shown = in_process(home, "messages", "show", "3")
    assert "not acknowledged again" not in shown.stdout, shown.stdout
