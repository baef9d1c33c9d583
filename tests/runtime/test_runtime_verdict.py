"""``gateway run`` records the decision every command shares (:mod:`gateway.verdict`).

Inbound 997/999/TA1 are kept as acknowledgments and never answered; an interchange or document
from another partner than the file's folder is refused and claims nothing; a finding the partner's
profile accepts lets the set through with an ``E`` acknowledgment; and ``gateway ack`` prints the
same acknowledgment ``run`` sends. Every acknowledgment written is validated (:func:`check_ack`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ackcheck import check_ack
from click.testing import CliRunner
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Home,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
)
from test_verdict import ACCEPT_V107, INBOUND_997, INBOUND_TA1, INVOICE_810, SUMMIT_810, _855_v107

from gateway.cli.main import main
from gateway.store import Store
from gateway.x12.ack.read import FunctionalAck, TA1Ack


def run_once(home: Home) -> None:
    service = home.service()
    try:
        service.run_once()
    finally:
        service.store.close()


def cli(home: Home, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--home", str(home.path)])
    return result.exit_code, result.stdout, result.stderr


def sent(home: Home, partner: str) -> list[bytes]:
    """The acknowledgments in ``outbox/<partner>/``, each checked with the gateway's validator."""
    out = [p.read_bytes() for p in sorted((home.outbox / partner).glob("*.x12")) if not p.name.startswith(".")]
    for data in out:
        check_ack(data)
    return out


def files_by_name(store_url: str) -> dict:
    with Store(store_url) as store:
        return {f.name: f for f in store.list_files(limit=100)}


def test_inbound_acknowledgments_are_kept_and_never_answered(store_url: str, tmp_path: Path) -> None:
    home = make_home(tmp_path, store_url)
    home.drop("997-in.edi", INBOUND_997.encode(), "medsupply")
    home.drop("ta1-in.edi", INBOUND_TA1.encode(), "medsupply")
    run_once(home)
    files = files_by_name(store_url)
    assert {n: f.status for n, f in files.items()} == {"997-in.edi": "processed", "ta1-in.edi": "processed"}
    assert sent(home, "medsupply") == []  # no 997 to a 997, no TA1 to a TA1
    assert not list((home.outbox / "canonical").rglob("*.json"))
    with Store(store_url) as store:
        tree = store.file_tree(files["997-in.edi"].id)
        (st,) = [s for ic in tree.interchanges for g in ic.groups for s in g.sets]
        assert (st.row.set_id, st.row.status) == ("997", "accepted")
        (doc,) = st.documents
        read = json.loads(doc.canonical)
        assert doc.doc_type == "acknowledgment" and read["group_control"] == "101" and read["code"] == "R"
        ta1_docs = store.file_tree(files["ta1-in.edi"].id).documents
        assert [json.loads(d.canonical)["control_number"] for d in ta1_docs] == ["000000101"]
        assert store.list_outbound(limit=10) == []
    code, out, _ = cli(home, "status", "--json")
    counts = json.loads(out)["counts"]
    assert "failed" not in counts["transaction_sets"] and "failed" not in counts["files"]
    code, out, _ = cli(home, "messages", "show", str(files["997-in.edi"].id))
    assert code == 0
    assert "acknowledgment received" in out and "997: group PO 101 rejected, 0 of 1 sets accepted" in out
    assert "set 850 0001 rejected (5); PO1 #14 error 8, element 4 error 4" in out
    code, out, _ = cli(home, "messages", "show", str(files["ta1-in.edi"].id))
    assert "TA1: interchange 000000101 rejected (note 025)" in out


def test_another_partners_interchange_is_refused_and_claims_nothing(store_url: str, tmp_path: Path) -> None:
    home = make_home(tmp_path, store_url)
    home.drop("two-senders.edi", (INVOICE_810 + SUMMIT_810).encode(), "medsupply")
    run_once(home)
    home.drop("summit-genuine.edi", SUMMIT_810.encode(), "summitmed")
    run_once(home)
    files = files_by_name(store_url)
    mixed, genuine = files["two-senders.edi"], files["summit-genuine.edi"]
    assert mixed.status == "partial" and genuine.status == "processed", (mixed.reason, genuine.reason)
    with Store(store_url) as store:
        first, second = store.file_tree(mixed.id).interchanges
        assert first.row.status == "accepted"
        assert second.row.status == "rejected" and "SEC-001" in (second.row.reason or "")
        assert "names sender 01:079123456 (partner summitmed)" in (second.row.reason or "")
        assert [s.row.status for g in second.groups for s in g.sets] == ["rejected"]
        assert not [d for g in second.groups for s in g.sets for d in s.documents]
    medsupply_acks = [a for data in sent(home, "medsupply") for a in check_ack(data)]
    assert [(a.group_control, a.code) for a in medsupply_acks if isinstance(a, FunctionalAck)] == [("413", "A")]
    assert not [a for a in medsupply_acks if isinstance(a, TA1Ack)]
    summit_acks = [a for data in sent(home, "summitmed") for a in check_ack(data)]
    assert [type(a).__name__ for a in summit_acks] == ["FunctionalAck"]  # not a TA1 025 "duplicate"
    canonical = {
        p.relative_to(home.outbox / "canonical").as_posix() for p in (home.outbox / "canonical").rglob("*.json")
    }
    assert canonical == {f"medsupply/invoice-{mixed.id}-1.json", f"summitmed/invoice-{genuine.id}-1.json"}


def test_documents_from_unknown_or_other_senders_are_refused(store_url: str, tmp_path: Path) -> None:
    home = make_home(tmp_path, store_url)
    carelink = (PARTNERS / "carelink" / "cases" / "invoice.xml").read_bytes()
    home.drop("carelink-invoice.xml", carelink, "medsupply")
    stranger = INVOICE_810.replace("ZZ*MEDSUPPLY      ", "ZZ*STRANGER       ")
    home.drop("stranger.edi", stranger.encode(), "coastal")
    run_once(home)
    files = files_by_name(store_url)
    assert files["carelink-invoice.xml"].status == "failed"
    assert "SEC-001" in (files["carelink-invoice.xml"].reason or "")
    assert files["stranger.edi"].status == "failed"
    assert not list((home.outbox / "canonical").rglob("*.json"))
    assert sent(home, "coastal") == [] and sent(home, "medsupply") == []
    # Nothing was claimed for anyone: the genuine files go through, not as duplicates.
    home.drop("carelink-genuine.xml", carelink, "carelink")
    home.drop("medsupply-genuine.edi", INVOICE_810.encode(), "medsupply")
    run_once(home)
    files = files_by_name(store_url)
    assert files["carelink-genuine.xml"].status == "processed"
    assert files["medsupply-genuine.edi"].status == "processed"
    with Store(store_url) as store:
        (ic,) = store.file_tree(files["stranger.edi"].id).interchanges
        assert ic.row.status == "rejected" and "partner coastal sends csv, not X12" in (ic.row.reason or "")


def _normalised(data: bytes) -> str:
    """An ack with its date, time and control numbers blanked (they differ between two builds)."""
    text = data.decode()
    el = text[3]
    out = []
    for seg in re.split(r"~\n?", text):
        parts = seg.split(el)
        if parts[0] == "ISA":
            parts[9:11], parts[13] = ["", ""], ""
        elif parts[0] == "GS":
            parts[4:7] = ["", "", ""]
        elif parts[0] in ("GE", "IEA"):
            parts[2] = ""
        out.append(el.join(parts))
    return "~".join(out)


def test_run_sends_what_the_ack_command_prints(store_url: str, tmp_path: Path) -> None:
    home = make_home(tmp_path, store_url)
    profile = home.path / "partners" / "medsupply.yaml"
    profile.write_text(profile.read_text() + ACCEPT_V107)
    guide = (PARTNERS / "orthosupply" / "cases" / "856-guide-violation.edi").read_bytes()
    home.drop("856-guide-violation.edi", guide, "orthosupply")
    home.drop("855-v107.edi", _855_v107().encode(), "medsupply")
    run_once(home)
    files = files_by_name(store_url)
    assert files["856-guide-violation.edi"].status == "failed"
    assert files["855-v107.edi"].status == "processed"
    for partner, name in (("orthosupply", "856-guide-violation.edi"), ("medsupply", "855-v107.edi")):
        (ran,) = sent(home, partner)
        copy = tmp_path / name
        copy.write_bytes(guide if partner == "orthosupply" else _855_v107().encode())
        code, printed, err = cli(home, "ack", str(copy), "--partner", partner)
        assert code == 0, err
        assert _normalised(printed.encode()) == _normalised(ran), name
    (ran,) = sent(home, "orthosupply")
    assert b"IK5|R" in ran
    (ran,) = sent(home, "medsupply")
    assert b"AK5*E" in ran and b"AK3*PID*7*ACK*7" in ran
    code, out, _ = cli(home, "messages", "show", str(files["855-v107.edi"].id))
    assert "set 855 0001 translated" in out
    assert "warning X12-V107" in out and "accepted: partner medsupply accepts X12-V107" in out
