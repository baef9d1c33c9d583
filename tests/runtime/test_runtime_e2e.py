"""End to end: the sample partners' files through ``gateway run --once`` (a process, and a Service in-process).

Every case file of every sample partner is dropped where that partner
would put it, with an interchange holding a good, a bad and a good
invoice, and three files intake must quarantine. After one run the ledger,
the canonical JSON, the 997/999s, the processed and quarantine folders
and the ``status``/``messages`` commands must all tell the same story.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtimekit import (  # noqa: F401 (pytest fixtures)
    Home,
    drop_samples,
    expected,
    gateway,
    golden,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    workspace_fixture,
)

from gateway.cli.main import main
from gateway.store import Store
from gateway.workspace import Workspace

QUARANTINED = {
    "empty.edi": "empty file",
    "notes.txt": "not X12 or XML, and not in a partner folder",
    "wrong-folder.edi": "sender mismatch: file is in inbox/orthosupply/ but its ISA names ZZ:MEDSUPPLY",
}


@pytest.mark.parametrize("mode", ["process", "in-process"])
def test_samples_end_to_end(mode: str, store_url: str, tmp_path: Path, workspace: Workspace) -> None:
    home = make_home(tmp_path, store_url)
    cases = drop_samples(home)
    if mode == "process":
        proc = gateway(home, "run", "--once")
        assert proc.returncode == 1, proc.stderr  # three files quarantined: not a clean run (exit codes)
        assert "exit 1: a file failed, was quarantined, or had part of it rejected" in proc.stderr
        assert "quarantined  3 file(s):" in proc.stdout
        assert "wrong-folder.edi: sender mismatch" in proc.stdout
    else:
        service = home.service(workspace)
        summary = service.run_once()
        service.store.close()
        assert len(summary.quarantined) == 3 and summary.received == len(cases) + 4
    with Store(store_url) as store:
        files = {f.name: f for f in store.list_files(limit=100)}
        check_statuses(files, cases)
        check_canonical(home, store, files, cases)
        check_acks(home, store, files)
    check_folders(home, files)
    if mode == "process":
        check_commands(home, files)


def _verdicts(partner: str, name: str) -> list[bool]:
    """Per set/document of a case: True when it translates."""
    return ["errors" not in doc for doc in expected(partner, name)]


def check_statuses(files: dict, cases: dict[str, tuple[str, str]]) -> None:
    assert set(files) == set(cases) | {"810-good-bad-good.edi"} | set(QUARANTINED)
    for name, (partner, case) in cases.items():
        ok = _verdicts(partner, case)
        want = "processed" if all(ok) else "partial" if any(ok) else "failed"
        assert (files[name].status, files[name].partner_id) == (want, partner), name
    assert files["810-good-bad-good.edi"].status == "partial"
    assert files["810-good-bad-good.edi"].reason == "1 of 3 sets/documents failed"
    for name, reason in QUARANTINED.items():
        assert files[name].status == "quarantined" and reason in (files[name].reason or ""), name


def check_canonical(home: Home, store: Store, files: dict, cases: dict[str, tuple[str, str]]) -> None:
    """Each translated set/document has one JSON, equal to its golden case and to the ledger's copy."""
    written = home.canonical()
    by_file: dict[int, dict[int, dict]] = defaultdict(dict)
    for rel, doc in written.items():
        partner, name = rel.split("/")
        _, file_id, index = name[: -len(".json")].rsplit("-", 2)
        assert doc["provenance"].get("partner", partner) == partner
        by_file[int(file_id)][int(index)] = doc
    for name, (partner, case) in cases.items():
        row = files[name]
        golden_docs = expected(partner, case)
        produced = by_file.pop(row.id, {})
        assert sorted(produced) == [i for i, d in enumerate(golden_docs, 1) if "errors" not in d], name
        for index, doc in produced.items():
            assert golden(doc) == golden_docs[index - 1], f"{name} #{index}"
            assert doc["provenance"]["source_file_id"] == row.sha256
    gbg = by_file.pop(files["810-good-bad-good.edi"].id)
    assert sorted(gbg) == [1, 3]
    assert [d["invoice_number"] for _, d in sorted(gbg.items())] == ["INV-0042377-gbg-1", "INV-0042377-gbg-3"]
    assert not by_file, f"canonical JSON for files that should have none: {sorted(by_file)}"
    # The ledger holds the same text, under the correlation id the JSON carries.
    ledger = {}
    for row in files.values():
        tree = store.file_tree(row.id)
        docs = list(tree.documents) + [
            d for ic in tree.interchanges for g in ic.groups for s in g.sets for d in s.documents
        ]
        ledger.update({d.correlation_id: d for d in docs if d.status == "translated"})
    assert len(ledger) == len(written)
    for doc in written.values():
        assert json.loads(ledger[doc["provenance"]["correlation_id"]].canonical) == doc


def check_acks(home: Home, store: Store, files: dict) -> None:
    """One 997/999 per X12 interchange (except where a per-document ``ack: on_error`` says none is due),
    readable, right verdicts, control numbers unique and increasing."""
    acks = home.acks()
    by_group = {}
    for rel, sets in acks.items():
        assert len(sets) == 1, rel
        ack = sets[0]
        partner, name = rel.split("/")
        assert name == f"{ack.kind}-{ack.interchange}.x12"
        by_group[(partner, ack.group_control)] = ack
    x12_files = [f for f in files.values() if f.format == "x12" and f.status != "quarantined"]
    # orthosupply's profile says `"810": {ack: on_error}`: its clean 810 gets no 999
    quiet = [
        f for f in x12_files if f.partner_id == "orthosupply" and f.name.startswith("810") and f.status == "processed"
    ]
    assert quiet, "the sample orthosupply 810 is expected"
    assert len(by_group) == len(acks) == len(x12_files) - len(quiet)
    for partner in ("medsupply", "orthosupply", "summitmed"):
        sent = sorted(store.list_outbound(partner_id=partner, limit=100), key=lambda o: o.id)
        numbers = [int(o.control_number or 0) for o in sent]
        assert numbers == sorted(set(numbers)) and numbers, partner
        assert {f"{o.kind}-{o.control_number}.x12" for o in sent} == {
            r.split("/")[1] for r in acks if r.startswith(f"{partner}/")
        }
    assert by_group[("medsupply", "413")].code == "A"
    assert by_group[("orthosupply", "522")].code == "R"  # 856-guide-violation
    assert by_group[("orthosupply", "522")].kind == "999"
    gbg = by_group[("medsupply", "9001")]
    assert gbg.code == "P" and (gbg.included, gbg.received, gbg.accepted_count) == (3, 3, 2)
    assert [(s.control_number, s.code) for s in gbg.sets] == [("0001", "A"), ("0002", "R"), ("0003", "A")]


def check_folders(home: Home, files: dict) -> None:
    assert home.inbox_leftovers() == []
    processed = {p.name for p in (home.path / "var" / "processed").glob("*/*")}
    quarantine = {p.name for p in (home.path / "var" / "quarantine").glob("*/*")}
    for name, row in files.items():
        if name in QUARANTINED:
            assert f"{row.id}-{name}" in quarantine and f"{row.id}-{name}.reason.txt" in quarantine
            note = next((home.path / "var" / "quarantine").glob(f"*/{row.id}-{name}.reason.txt")).read_text()
            assert QUARANTINED[name] in note
        else:
            assert f"{row.id}-{name}" in processed, name
    assert len(processed) == len(files) - len(QUARANTINED)


def check_commands(home: Home, files: dict) -> None:
    """``gateway status``, ``messages list`` and ``messages show`` after the run."""
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(main, [*args, "--home", str(home.path)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    status = cli("status")
    assert "files              failed 1, partial 2, processed 15, quarantined 3" in status
    assert "oldest pending     none" in status
    assert "quarantined        3" in status and "wrong-folder.edi: sender mismatch" in status
    counts = json.loads(cli("status", "--json"))["counts"]
    assert counts["files"] == {"failed": 1, "partial": 2, "processed": 15, "quarantined": 3}
    assert counts["outbound"] == {
        "created": 9
    }  # 10 X12 interchanges; orthosupply's clean 810 gets none (ack: on_error)
    listing = cli("messages", "list", "--direction", "in").splitlines()
    assert len(listing) == len(files)
    assert all(
        f" {row.status} " in next(line for line in listing if line.endswith(name) or f" {name}  (" in line)
        for name, row in files.items()
    )
    assert len(cli("messages", "list", "--status", "quarantined").splitlines()) == 3
    assert len(cli("messages", "list", "--partner", "coastal").splitlines()) == 4
    gbg = files["810-good-bad-good.edi"]
    shown = cli("messages", "show", str(gbg.id))
    assert f"file {gbg.id} 810-good-bad-good.edi  status partial (1 of 3 sets/documents failed)" in shown
    assert "interchange 000009001 ZZ:MEDSUPPLY -> ZZ:MERCYHOSP partially_accepted" in shown
    assert "set 810 0002 rejected" in shown and "BIG01 (Date): '2026XX05' is not a valid date" in shown
    assert "810:INV-0042377-gbg-3 translated" in shown
    assert "sent 997" in shown and "received -> processing" in shown and "processing -> partial" in shown
    data = json.loads(cli("messages", "show", str(gbg.id), "--json"))
    assert data["tree"]["file"]["status"] == "partial" and len(data["outbound"]) == 1
    result = runner.invoke(main, ["messages", "show", "99999", "--home", str(home.path)])
    assert result.exit_code == 2 and "99999" in result.output
