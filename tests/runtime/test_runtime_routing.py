"""Routing end to end, as a user runs it: rules in gateway.yaml send documents to destinations by
partner, type and canonical fields (fan-out), the decision is kept with each document, and a
document no rule matches is an exception shown by `status` and `messages`, never dropped."""

from __future__ import annotations

from pathlib import Path

from runtimekit import Home, case, gateway, in_process, make_home

from gateway.store import Store

INVOICE = case("medsupply", "810-invoice.edi")
ACK855 = case("medsupply", "855-split-backorder.edi")


def home_with(tmp_path: Path, destinations: dict[str, object], routes: list[object]) -> Home:
    return make_home(
        tmp_path,
        f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}",
        stable_seconds=0,
        extra={"destinations": destinations, "routes": routes},
    )


def test_rules_fan_out_by_canonical_fields_and_keep_the_decision(tmp_path: Path) -> None:
    home = home_with(
        tmp_path,
        {
            "canonical-json": {"type": "files", "folder": "outbox/canonical"},
            "ap-files": {"type": "files", "folder": "erp/ap", "name": "{partner}-{business_key}.json"},
        },
        [
            {
                "name": "dock-2-invoices",
                "match": {
                    "doc_type": "invoice",
                    "where": [
                        {"path": "parties[role=ship_to].ids[qualifier=92].value", "op": "eq", "value": "MGH-DOCK2"}
                    ],
                },
                "to": ["ap-files", "canonical-json"],
            },
            {"name": "everything-else", "match": {"direction": "inbound"}, "to": ["canonical-json"]},
        ],
    )
    home.drop("810.edi", INVOICE, "medsupply")
    home.drop("855.edi", ACK855, "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [p.name for p in (home.path / "erp" / "ap").iterdir() if p.is_file()] == ["medsupply-810-INV-0042377.json"]
    assert len(list((home.outbox / "canonical" / "medsupply").glob("*.json"))) == 2
    with Store(home.store_url) as store:
        by_type = {d.doc_type: d for d in store.list_documents()}
        rules = {t: {x.rule for x in store.list_deliveries(document_id=d.id)} for t, d in by_type.items()}
    assert rules == {"invoice": {"dock-2-invoices"}, "po_acknowledgment": {"everything-else"}}
    assert by_type["invoice"].route == {"rules": ["dock-2-invoices"], "destinations": ["ap-files", "canonical-json"]}
    shown = in_process(home, "messages", "show", str(by_type["invoice"].file_id))
    assert "dock-2-invoices" in shown.stdout


def test_a_document_no_rule_matches_is_unrouted_and_shown(tmp_path: Path) -> None:
    home = home_with(
        tmp_path,
        {"canonical-json": {"type": "files"}},
        [{"name": "invoices-only", "match": {"doc_type": "invoice"}, "to": ["canonical-json"]}],
    )
    home.drop("855.edi", ACK855, "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 6, run.stdout + run.stderr
    assert "1 matched no route (unrouted)" in run.stdout
    status = in_process(home, "status")
    assert "unrouted           1 document(s) matched no route" in status.stdout, status.stdout
    assert "invoices-only: document type is po_acknowledgment, not invoice" in status.stdout
    assert not (home.outbox / "canonical").exists() or not any((home.outbox / "canonical").rglob("*.json"))
    assert list((home.outbox / "medsupply").glob("997-*.x12")), "the partner still gets its acknowledgment"
    # Routed by hand, it is delivered and no longer listed as an exception (before, it stayed "unrouted").
    with Store(home.store_url) as store:
        (doc,) = store.list_documents(status="unrouted")
    typo = in_process(home, "retransmit", str(doc.id), "--destination", "canonical-jsn")
    assert typo.returncode == 2 and "no destination 'canonical-jsn' (did you mean 'canonical-json'?)" in typo.stderr
    sent = in_process(home, "retransmit", str(doc.id), "--destination", "canonical-json", "--reason", "no rule yet")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert gateway(home, "deliver").returncode == 0
    assert len(list((home.outbox / "canonical").rglob("*.json"))) == 1
    status = in_process(home, "status")
    assert "matched no route" not in status.stdout, status.stdout
    with Store(home.store_url) as store:
        after = store.get_document(doc.id)
    assert (after.status, after.reason) == ("routed", "routed by hand to canonical-json")


def test_a_route_to_an_unknown_destination_stops_run_before_anything_starts(tmp_path: Path) -> None:
    home = home_with(
        tmp_path,
        {"canonical-json": {"type": "files"}},
        [{"name": "typo", "to": ["canonical-jsno"]}],
    )
    home.drop("855.edi", ACK855, "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "gateway.yaml:" in run.stderr and "canonical-jsno" in run.stderr and "canonical-json" in run.stderr
    assert (home.path / "inbox" / "medsupply" / "855.edi").exists(), "a file was taken with a broken config"


def test_an_unrouted_document_reprocessed_under_fixed_rules_is_routed_as_its_copy(tmp_path: Path) -> None:
    # Before, the old document stayed "unrouted" in `gateway status` once its copy had been routed and delivered.
    home = home_with(
        tmp_path,
        {"canonical-json": {"type": "files"}},
        [{"name": "invoices-only", "match": {"doc_type": "invoice"}, "to": ["canonical-json"]}],
    )
    home.drop("855.edi", ACK855, "medsupply")
    assert gateway(home, "run", "--once").returncode == 6
    settings = home.path / "gateway.yaml"
    settings.write_text(settings.read_text("utf-8").replace('"invoice"', '["invoice", "po_acknowledgment"]'), "utf-8")
    assert in_process(home, "reprocess", "1", "--reason", "855s routed now").returncode == 0
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stdout + run.stderr
    with Store(home.store_url) as store:
        old, copy = sorted(store.list_documents(), key=lambda d: d.id)
        counts = store.counts_by_status()
    assert (old.status, old.reason) == ("routed", f"routed as document {copy.id}, its reprocessing")
    assert copy.parent_id == old.id and copy.status != "unrouted"
    assert "unrouted" not in counts["documents"], counts
    assert "matched no route" not in in_process(home, "status").stdout
