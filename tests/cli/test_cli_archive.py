"""Retention as an operator runs it, on SQLite and PostgreSQL: `gateway archive purge` against a store
filled by `gateway run --once` on real files (delivered, dead-lettered, pending, failed, reprocessing),
its holds, its dry run, its audit; `gateway archive verify` finding an altered and a missing blob."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
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

from gateway.cli.archive_cli import parse_duration
from gateway.cli.bulk_cli import progress_chunks
from gateway.cli.main import main
from gateway.store import Archive, Store
from gateway.store.holds import hold_names

INVOICE = case("medsupply", "810-invoice.edi")


def invoice(n: int) -> bytes:
    return INVOICE.replace(b"000000413", f"{413 + n:09d}".encode()).replace(b"INV-0042377", f"INV-9{n}".encode())


def cli(home: Home, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--home", str(home.path)])


def block(folder: Path) -> None:
    """A file where the destination's folder should be: every write there fails."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.write_text("not a folder")


def waive_exceptions(home: Home) -> int:
    """Settle every open reconciliation exception (invoices for orders never seen): they hold files."""
    exceptions = json.loads(cli(home, "recon", "list", "--open", "--json").stdout)
    for exc in exceptions:
        assert cli(home, "recon", "waive", str(exc["id"]), "--reason", "test orders").exit_code == 0
    return len(exceptions)


def purge_json(home: Home, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(home, "archive", "purge", "--older-than", "0d", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_purge_refuses_held_files_audits_the_rest_and_verify_finds_damage(tmp_path: Path, store_url: str) -> None:
    destinations = {
        "canonical-json": {"type": "files", "folder": "outbox/canonical", "retry": {"max_attempts": 1}},
        "copy": {"type": "files", "folder": "outbox/copy"},
    }
    routes = [{"name": "default", "match": {"direction": "inbound"}, "to": ["canonical-json", "copy"]}]
    home = make_home(tmp_path, store_url, stable_seconds=0, extra={"destinations": destinations, "routes": routes})
    home.drop("810-1.edi", invoice(1), "medsupply")
    home.drop("810-2.edi", invoice(2), "medsupply")
    first = gateway(home, "run", "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    block(home.outbox / "canonical")  # the next invoice: a dead letter there, a retry pending to `copy`
    block(home.outbox / "copy")
    home.drop("810-3.edi", invoice(3), "medsupply")
    home.drop("junk.edi", b"this is not an interchange\n", "medsupply")
    second = gateway(home, "run", "--once")
    assert second.returncode != 0, second.stdout
    with Store(home.store_url) as store:
        ids = {f.name: f.id for f in store.list_files()}
        assert store.get_file(ids["junk.edi"]).status in ("failed", "quarantined")
    assert cli(home, "reprocess", str(ids["810-1.edi"])).exit_code == 0  # in flight: its bytes are read soon
    with Store(home.store_url) as store:
        reprocessing = next(f.id for f in store.list_files() if f.parent_id == ids["810-1.edi"])

    # Invoices for orders the gateway never saw are open reconciliation exceptions: they hold their files
    # until the AP clerk settles them.
    code, held = purge_json(home, "--dry-run")
    assert code == 3 and held["purged"] == []
    assert set(held["refused"]["open_exception"]) == {ids["810-1.edi"], ids["810-2.edi"], ids["810-3.edi"]}
    assert waive_exceptions(home) > 0

    code, dry = purge_json(home, "--dry-run")
    assert code == 3  # something was refused
    assert {p["file_id"] for p in dry["purged"]} == {ids["810-1.edi"], ids["810-2.edi"]}
    assert dry["refused"] == {
        "unprocessed": [reprocessing],
        "unresolved": [ids["junk.edi"]],
        "undelivered": [ids["810-3.edi"]],
        "dead_letter": [ids["810-3.edi"]],
    }
    blobs = {p["file_id"]: p for p in dry["purged"]}
    assert not blobs[ids["810-1.edi"]]["blob_removed"], "the reprocess in flight still reads file 1's bytes"
    assert blobs[ids["810-2.edi"]]["blob_removed"] and dry["bytes_removed"] == len(invoice(2))
    assert blobs[ids["810-2.edi"]]["counts"]["documents"] == 1
    assert cli(home, "archive", "purges", "--json").stdout.strip() == "[]", "a dry run recorded something"

    unconfirmed = cli(home, "archive", "purge", "--older-than", "0d")
    assert unconfirmed.exit_code == 2 and "pass --yes" in unconfirmed.stderr
    code, real = purge_json(home, "--yes", "--reason", "seven years are over")
    assert code == 3 and real["refused"] == dry["refused"]
    assert [p["file_id"] for p in real["purged"]] == [p["file_id"] for p in dry["purged"]]
    assert real["bytes_removed"] == dry["bytes_removed"]
    archive = Archive(home.archive)
    assert not archive.exists(blobs[ids["810-2.edi"]]["sha256"]) and archive.exists(blobs[ids["810-1.edi"]]["sha256"])
    audit = json.loads(cli(home, "archive", "purges", "--json").stdout)
    assert {(a["file_id"], a["sha256"], a["size"], a["reason"]) for a in audit} == {
        (p["file_id"], p["sha256"], p["size"], "seven years are over") for p in dry["purged"]
    }
    assert all(a["actor"] and a["older_than"] == "0d" and a["received_at"] for a in audit)
    with Store(home.store_url) as store:
        doc = next(d for d in store.list_documents() if d.file_id == ids["810-2.edi"])
        assert doc.canonical == "null" and doc.business_key  # the detail went, the lineage stayed
        (event,) = [e for e in store.events_for("file", ids["810-2.edi"]) if e.reason and "purged" in e.reason]
        assert event.actor and event.reason == "purged (older than 0d): seven years are over"
    assert purge_json(home, "--dry-run")[1]["purged"] == [], "a purged file was offered again"
    refused = cli(home, "reprocess", str(ids["810-2.edi"]))
    assert refused.exit_code == 1 and "purged" in refused.stderr

    # The reprocess in flight still finds its bytes.
    (home.outbox / "canonical").unlink()
    (home.outbox / "copy").unlink()
    assert gateway(home, "run", "--once").returncode in (0, 6)
    with Store(home.store_url) as store:
        assert store.get_file(reprocessing).status == "processed"

    ok = cli(home, "archive", "verify")
    assert ok.exit_code == 0 and " 0 missing or altered" in ok.stdout, ok.stdout
    altered = archive.path(blobs[ids["810-1.edi"]]["sha256"])
    os.chmod(altered, 0o600)
    altered.write_bytes(invoice(1).replace(b"INV-91", b"INV-66"))
    with Store(home.store_url) as store:
        missing = archive.path(store.get_file(ids["810-3.edi"]).sha256)
    missing.unlink()
    bad = cli(home, "archive", "verify")
    assert bad.exit_code == 1, bad.stdout
    assert f"ALTERED {altered.name}" in bad.stdout and f"MISSING {missing.name}" in bad.stdout
    assert f"file {ids['810-3.edi']}" in bad.stdout


def test_a_partner_policy_keeps_its_files_longer(tmp_path: Path, store_url: str) -> None:
    home = make_home(tmp_path, store_url, stable_seconds=0)
    home.drop("810-1.edi", invoice(1), "medsupply")
    assert gateway(home, "run", "--once").returncode == 0
    waive_exceptions(home)
    profile = home.path / "partners" / "medsupply.yaml"
    profile.write_text(profile.read_text() + "retention: {keep_days: 2555}\n")
    code, report = purge_json(home, "--dry-run")
    assert code == 0 and report["purged"] == [] and report["kept_by_policy"] == [1]
    profile.write_text(profile.read_text().replace("keep_days: 2555", "keep_days: 0"))
    assert [p["file_id"] for p in purge_json(home, "--dry-run", "--partner", "medsupply")[1]["purged"]] == [1]
    assert purge_json(home, "--dry-run", "--partner", "coastal")[1]["purged"] == []


def test_an_unrouted_document_holds_its_file(tmp_path: Path, store_url: str) -> None:
    routes = [
        {"name": "orders", "match": {"direction": "inbound", "doc_type": "purchase_order"}, "to": ["canonical-json"]}
    ]
    home = make_home(tmp_path, store_url, stable_seconds=0, extra={"routes": routes})
    home.drop("810-1.edi", invoice(1), "medsupply")
    assert gateway(home, "run", "--once").returncode == 6  # the invoice matched no route
    waive_exceptions(home)
    code, report = purge_json(home, "--yes")
    assert code == 3 and report["refused"] == {"unrouted": [1]} and report["purged"] == []


def test_durations_and_the_hold_registry() -> None:
    assert parse_duration("90d").days == 90 and parse_duration("1y30d").days == 395
    assert parse_duration("36h").total_seconds() == 36 * 3600
    for bad in ("", "90", "ninety days", "5x"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert hold_names()[:4] == ["unprocessed", "unresolved", "undelivered", "dead_letter"]


def test_bulk_work_goes_in_chunks() -> None:
    chunks: list[int] = []
    progress_chunks(list(range(120)), "working", lambda chunk: chunks.append(len(chunk)))
    assert chunks == [50, 50, 20]
