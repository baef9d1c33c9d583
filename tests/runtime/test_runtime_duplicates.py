"""Duplicates through the running service: same bytes, same ISA13, same business key; and a partner that allows them.

A duplicate is recorded (the ledger says what it duplicates) but not
passed on: no canonical JSON, no acknowledgment for a repeated interchange.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    REPO,
    Home,
    case,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    workspace_fixture,
    x12,
)

from gateway.runtime.service import Service
from gateway.store import Store
from gateway.workspace import Workspace, load_workspace
from gateway.x12.ack.read import FunctionalAck, TA1Ack, read_acks

INVOICE = case("medsupply", "810-invoice.edi")  # ISA13 000000413, invoice INV-0042377
SAME_ISA13_NEW_BYTES = INVOICE.replace(b"INV-0042377", b"INV-0042399")
SAME_INVOICE_NEW_ISA13 = x12(PARTNERS / "medsupply/cases/810-invoice.edi", 414)


def run(home: Home, service: Service, name: str, data: bytes, partner: str | None = "medsupply") -> dict:
    """Drop one file, run once; returns what the ledger and outbox say about it."""
    home.drop(name, data, partner)
    service.run_once()
    with Store(home.store_url) as store:
        row = next(f for f in store.list_files(limit=100) if f.name == name)
        tree = store.file_tree(row.id)
        return {
            "status": row.status,
            "reason": row.reason or "",
            "interchanges": [i.row.status for i in tree.interchanges],
            "sets": [s.row.status for i in tree.interchanges for g in i.groups for s in g.sets],
            "documents": [d.status for i in tree.interchanges for g in i.groups for s in g.sets for d in s.documents],
            "json": len(home.canonical()),
            "acks": len(home.acks()),
            "row": row,
        }


def test_duplicates_are_recorded_not_passed_on(store_url: str, tmp_path: Path, workspace: Workspace) -> None:
    home = make_home(tmp_path, store_url)
    service = home.service(workspace)
    first = run(home, service, "810-invoice.edi", INVOICE)
    assert (first["status"], first["documents"], first["json"], first["acks"]) == ("processed", ["translated"], 1, 1)

    again = run(home, service, "810-invoice-resent.edi", INVOICE)
    assert again["status"] == "duplicate" and f"same bytes as file {first['row'].id}" in again["reason"]
    assert (again["interchanges"], again["json"], again["acks"]) == ([], 1, 1)

    same_name = run(home, service, "810-invoice.edi", INVOICE)  # the same drop again, later: a new file row
    assert same_name["row"].id != first["row"].id and same_name["status"] == "duplicate"

    isa13 = run(home, service, "810-same-isa13.edi", SAME_ISA13_NEW_BYTES)
    assert isa13["interchanges"] == ["duplicate"] and isa13["sets"] == ["duplicate"]
    assert isa13["status"] == "duplicate" and "all 1 sets/documents are duplicates" in isa13["reason"]
    assert (isa13["json"], isa13["acks"]) == (1, 2), "a repeated interchange is not passed on"
    (ta1_out,) = service.store.list_outbound(file_id=isa13["row"].id)
    assert ta1_out.kind == "TA1"
    (ta1,) = [a for a in read_acks(service.archive.read(ta1_out.sha256)) if isinstance(a, TA1Ack)]
    assert (ta1.code, ta1.note_code) == ("R", "025"), "a repeated interchange is rejected as a duplicate (TA1 025)"
    assert not [a for a in read_acks(service.archive.read(ta1_out.sha256)) if isinstance(a, FunctionalAck)], (
        "a repeated interchange is not acknowledged again as if new"
    )

    business = run(home, service, "810-same-invoice.edi", SAME_INVOICE_NEW_ISA13)
    assert business["interchanges"] == ["accepted"] and business["sets"] == ["translated"]
    assert business["documents"] == ["duplicate"] and business["status"] == "duplicate"
    assert (business["json"], business["acks"]) == (1, 3), (
        "a new interchange is acknowledged, its duplicate invoice not passed on"
    )

    # A file with a new invoice beside a repeated one: the new one goes through.
    template = PARTNERS / "medsupply/cases/810-invoice.edi"
    mixed_data = x12(template, 415, sets=2, tag="mix")
    repeat = x12(template, 416, sets=2, tag="mix").replace(b"INV-0042377-mix-2", b"INV-0042377-new-2")
    run(home, service, "810-mix.edi", mixed_data)
    mixed = run(home, service, "810-mix-repeat.edi", repeat)
    assert mixed["status"] == "processed" and mixed["documents"] == ["duplicate", "translated"]
    assert mixed["json"] == 1 + 2 + 1
    with Store(store_url) as store:
        dup = store.list_files(status="duplicate", limit=10)
        assert sorted(f.name for f in dup) == sorted(
            ["810-invoice-resent.edi", "810-invoice.edi", "810-same-isa13.edi", "810-same-invoice.edi"]
        )
        events = store.events_for_file(business["row"].id)
        assert any(
            e.entity_kind == "document" and e.to_status == "duplicate" and "810:INV-0042377" in (e.reason or "")
            for e in events
        )


def test_a_corrected_invoice_is_not_a_duplicate_of_the_original_but_its_resend_is(
    tmp_path: Path, workspace: Workspace
) -> None:
    # Before, the invoice's key was its number alone: a replacement (BIG08 05) was dropped as a duplicate
    # and never reached staging, REST or reconciliation; nor did a credit memo of the same number.
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}")
    service = home.service(workspace)
    original = run(home, service, "original.edi", INVOICE)
    replaced = x12(PARTNERS / "medsupply/cases/810-invoice.edi", 420).replace(
        b"BIG*20261205*INV-0042377*20261201*4500012390~", b"BIG*20261205*INV-0042377*20261201*4500012390****05~"
    )
    assert b"****05~" in replaced  # BIG08: 05 replace
    replacement = run(home, service, "replacement.edi", replaced)
    credit = run(home, service, "credit.edi", x12(PARTNERS / "medsupply/cases/810-invoice.edi", 421).replace(
        b"BIG*20261205*INV-0042377*20261201*4500012390~", b"BIG*20261205*INV-0042377*20261201*4500012390***CR~"
    ))  # fmt: skip
    again = run(home, service, "replacement-again.edi", replaced.replace(b"000000420", b"000000422"))
    copy = run(home, service, "copy.edi", replaced.replace(b"000000420", b"000000423").replace(b"****05~", b"****07~"))
    assert copy["documents"] == ["duplicate"], "a copy sent as such (BIG08 07) is a duplicate of the original"
    assert [r["documents"] for r in (original, replacement, credit, again)] == [
        ["translated"],
        ["translated"],
        ["translated"],
        ["duplicate"],
    ]
    with Store(home.store_url) as store:
        keys = sorted(d.business_key or "" for d in store.list_documents(limit=10))
    assert keys == [
        "810:INV-0042377",
        "810:INV-0042377",
        "810:INV-0042377:credit",
        "810:INV-0042377:replace",
        "810:INV-0042377:replace",
    ], keys


def test_hold_policy_holds_a_resend(store_url: str, tmp_path: Path, workspace: Workspace) -> None:
    home = make_home(tmp_path, store_url)
    service = home.service(workspace)
    data = case("orthosupply", "810-implants.edi")
    assert run(home, service, "810-implants.edi", data, "orthosupply")["status"] == "processed"
    held = run(home, service, "810-implants-again.edi", data, "orthosupply")
    assert held["status"] == "held" and "policy hold" in held["reason"] and held["json"] == 1
    new_isa13 = x12(PARTNERS / "orthosupply/cases/810-implants.edi", 524)
    business = run(home, service, "810-implants-new-isa13.edi", new_isa13, "orthosupply")
    assert business["documents"] == ["held"] and business["status"] == "held"
    assert "1 held for review" in business["reason"] and business["json"] == 1


@pytest.fixture(scope="module", name="allowing")
def allowing_fixture(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The sample workspace with medsupply's duplicate policy switched to ``allow``."""
    root = tmp_path_factory.mktemp("allowing")
    (root / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(PARTNERS, root / "partners")
    profile = root / "partners" / "medsupply.yaml"
    text = profile.read_text("utf-8")
    assert "policy: reject" in text
    profile.write_text(text.replace("policy: reject", "policy: allow"), "utf-8")
    return load_workspace(root)


def test_partner_allowing_duplicates_lets_them_through(store_url: str, tmp_path: Path, allowing: Workspace) -> None:
    home = make_home(tmp_path, store_url)
    service = home.service(allowing)
    assert run(home, service, "810-invoice.edi", INVOICE)["json"] == 1
    again = run(home, service, "810-invoice-resent.edi", INVOICE)
    assert (again["status"], again["documents"], again["json"], again["acks"]) == ("processed", ["translated"], 2, 2)
    isa13 = run(home, service, "810-same-isa13.edi", SAME_ISA13_NEW_BYTES)
    assert isa13["interchanges"] == ["accepted"] and isa13["documents"] == ["translated"] and isa13["json"] == 3
    business = run(home, service, "810-same-invoice.edi", SAME_INVOICE_NEW_ISA13)
    assert business["documents"] == ["translated"] and business["json"] == 4 and business["acks"] == 4
    # summitmed still rejects: the policy is per partner.
    summit = case("summitmed", "810-contract-price.edi")
    assert run(home, service, "a.edi", summit, "summitmed")["status"] == "processed"
    assert run(home, service, "b.edi", summit, "summitmed")["status"] == "duplicate"
