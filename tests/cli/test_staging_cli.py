"""``gateway staging upgrade`` and ``gateway staging current`` on SQLite, PostgreSQL and MariaDB.

``gateway.yaml``'s ``destinations:`` come from another branch; until then the tests hand the
command the destinations it would read (``configured_destinations``), as the merged settings will.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "delivery"))
from stagingkit import (  # noqa: F401 - pytest fixtures
    Target,
    golden,
    mysql_admin_fixture,
    payload,
    pg_admin_fixture,
    target_fixture,
)

from gateway.cli import staging_cli
from gateway.cli.main import main
from gateway.delivery.base import Delivered
from gateway.delivery.staging import StagingDestination
from gateway.delivery.staging.migrate import HEAD

# One MariaDB database is shared: its tests run on one xdist worker, never two at once.
pytestmark = pytest.mark.xdist_group("mariadb")


def configure(monkeypatch: pytest.MonkeyPatch, destinations: dict[str, dict[str, Any]]) -> None:
    """What ``gateway.yaml``'s ``destinations:`` will say (the built-in files ones included)."""
    every = {"canonical-json": {"type": "files", "folder": "outbox/canonical"}, **destinations}
    monkeypatch.setattr(staging_cli, "configured_destinations", lambda _deployment: every)


def invoke(home: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["staging", *args, "--home", str(home)])


def test_upgrade_and_current_on_each_backend(target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, {"erp": {"type": "sql", "url": target.url, "table_prefix": target.prefix}})
    before = invoke(tmp_path, "current")
    if target.backend == "sqlite":
        assert before.exit_code == 1 and "no database file" in before.output, before.output
        assert not Path(target.url.removeprefix("sqlite:///")).exists()  # reading created nothing
    else:
        assert before.exit_code == 0 and f"(none); head is {HEAD}" in before.output, before.output
        assert invoke(tmp_path, "current", "--check").exit_code == 1
    done = invoke(tmp_path, "upgrade")
    assert done.exit_code == 0, done.output
    assert "erp (" in done.output and f"upgraded (none) -> {HEAD}" in done.output
    again = invoke(tmp_path, "upgrade", "--destination", "erp")
    assert again.exit_code == 0 and f"already at {HEAD}" in again.output, again.output
    now = invoke(tmp_path, "current", "--check", "--json")
    assert now.exit_code == 0, now.output
    (item,) = json.loads(now.output)
    assert item["destination"] == "erp" and item["revision"] == HEAD and item["at_head"] and item["error"] is None
    # upgrade: false, as shipped: the loader starts on the tables the command made.
    loader = StagingDestination("erp", target.config(upgrade=False))
    try:
        assert isinstance(loader.deliver(payload(golden("medsupply/cases/810-invoice.json"))), Delivered)
    finally:
        loader.close()


def test_a_relative_sqlite_path_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, elsewhere = tmp_path / "deploy", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    configure(monkeypatch, {"erp": {"type": "sql", "url": "sqlite:///var/staging.db"}})
    result = invoke(home, "upgrade")
    assert result.exit_code == 0, result.output
    assert str(home / "var" / "staging.db") in result.output
    assert (home / "var" / "staging.db").is_file() and not (elsewhere / "var").exists()
    current = invoke(home, "current")
    assert current.exit_code == 0 and f"{HEAD} (head)" in current.output, current.output


def test_sql_is_printed_for_a_dba_without_connecting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(
        monkeypatch,
        {
            "erp": {"type": "sql", "url": "mariadb://loader@127.0.0.1:1/erp", "password": {"env": "UNSET_XYZ"}},
            "audit": {"type": "sql", "url": "postgresql://loader@127.0.0.1:1/erp", "table_prefix": "aud_"},
        },
    )
    monkeypatch.delenv("UNSET_XYZ", raising=False)
    result = invoke(tmp_path, "upgrade", "--sql")
    assert result.exit_code == 0, result.output
    assert "-- destination audit" in result.output and "-- destination erp" in result.output
    assert "CREATE TABLE aud_document" in result.output and "CREATE TABLE stg_document" in result.output
    assert "AUTO_INCREMENT" in result.output and "SERIAL" in result.output  # each one's own dialect
    only = invoke(tmp_path, "upgrade", "--sql", "--destination", "audit")
    assert only.exit_code == 0 and "stg_document" not in only.output


def test_an_unreachable_database_fails_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, {"erp": {"type": "sql", "url": "postgresql://nobody@127.0.0.1:1/none"}})
    for command in ("upgrade", "current"):
        result = invoke(tmp_path, command)
        assert result.exit_code == 1, result.output
        assert "127.0.0.1" in result.output


def test_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, {})
    none = invoke(tmp_path, "upgrade")
    assert none.exit_code == 2 and "no sql destination" in none.output
    configure(monkeypatch, {"erp": {"type": "sql", "url": "sqlite:///s.db"}})
    unknown = invoke(tmp_path, "current", "--destination", "epr")
    assert unknown.exit_code == 2 and "'epr'" in unknown.output and "known: erp" in unknown.output
    configure(monkeypatch, {"erp": {"type": "sql", "url": "sqlite:///s.db", "upgarde": True}})
    bad = invoke(tmp_path, "upgrade")
    assert bad.exit_code == 2 and "upgarde" in bad.output
    configure(monkeypatch, {"erp": {"type": "sql", "url": "postgresql://u@h/db", "password": {"env": "UNSET_XYZ"}}})
    monkeypatch.delenv("UNSET_XYZ", raising=False)
    secret = invoke(tmp_path, "upgrade")
    assert secret.exit_code == 2 and "UNSET_XYZ" in secret.output
    assert not (tmp_path / "s.db").exists()


def test_the_tables_are_created_in_the_right_place(
    target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target.backend == "sqlite":
        pytest.skip("the other cases cover SQLite's file")
    configure(monkeypatch, {"erp": {"type": "sql", "url": target.url, "table_prefix": target.prefix}})
    assert invoke(tmp_path, "upgrade").exit_code == 0
    engine = target.engine()
    try:
        names = {n for n in inspect(engine).get_table_names() if n.startswith(target.prefix)}
    finally:
        engine.dispose()
    assert f"{target.prefix}document" in names and f"{target.prefix}schema_version" in names
