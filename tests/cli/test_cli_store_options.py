"""``--home``/``--store`` as every command reads them; read-only commands create nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main


def gateway(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, list(args), env={"GATEWAY_HOME": None, "GATEWAY_STORE": None, "GATEWAY_DB_URL": None}
    )
    return result.exit_code, result.output


def test_db_upgrade_and_current_read_store_from_gateway_yaml(tmp_path: Path) -> None:
    (tmp_path / "gateway.yaml").write_text("store: sqlite:///ledger/custom.db\n", "utf-8")
    code, out = gateway("db", "upgrade", "--home", str(tmp_path))
    assert code == 0, out
    assert (tmp_path / "ledger" / "custom.db").is_file()
    assert not (tmp_path / "var").exists(), "the default store was not used"
    code, out = gateway("db", "current", "--check", "--home", str(tmp_path))
    assert code == 0 and "(head)" in out and "custom.db" in out, out


def test_store_and_url_are_one_option(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert gateway("db", "upgrade", "--store", url)[0] == 0
    code, out = gateway("db", "current", "--url", url)  # the old name still works
    assert code == 0 and "(head)" in out, out
    code, out = gateway("status", "--home", str(tmp_path), "--url", url)
    assert code == 0, out
    code, out = gateway("status", "--home", str(tmp_path), "--store", url, "--url", f"sqlite:///{tmp_path / 'b.db'}")
    assert code == 2 and "same option" in out
    code, out = gateway("db", "current", "--help")
    assert "--store" in out and "--url" not in out, "the alias is hidden"


def test_read_only_commands_never_create_a_deployment(tmp_path: Path) -> None:
    typo = tmp_path / "no-such-home"
    for args in (["status"], ["messages", "list"], ["messages", "show", "1"], ["db", "current"]):
        code, out = gateway(*args, "--home", str(typo))
        assert code == 2 and "no-such-home" in out and "does not exist" in out, (args, out)
        assert not typo.exists(), args
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["status"], ["messages", "list"], ["messages", "show", "1"]):
        code, out = gateway(*args, "--home", str(empty))
        assert code == 2 and "no store at" in out and "mistyped" in out, (args, out)
    code, out = gateway("db", "current", "--home", str(empty))
    assert code == 2 and "no database at" in out
    wrong = tmp_path / "elsewhere" / "x.db"
    code, out = gateway("status", "--home", str(empty), "--store", f"sqlite:///{wrong}")
    assert code == 2 and str(wrong) in out
    assert list(empty.iterdir()) == [] and not wrong.parent.exists()


def test_status_on_an_unmigrated_database_says_so_and_does_not_migrate(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    code, out = gateway("status", "--home", str(tmp_path), "--store", f"sqlite:///{path}")
    assert code == 2 and "no gateway tables" in out
    code, out = gateway("db", "current", "--store", f"sqlite:///{path}")
    assert "(empty)" in out


def ran_deployment(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(REPO / "partners", home / "partners", ignore=shutil.ignore_patterns("cases"))
    (home / "inbox" / "medsupply").mkdir(parents=True)
    shutil.copy(REPO / "samples" / "x12" / "855-4010-medsupply-ack.edi", home / "inbox" / "medsupply")
    code, out = gateway("run", "--once", "--home", str(home))
    assert code == 0, out
    return home


def test_messages_list_json_and_unknown_id(tmp_path: Path) -> None:
    home = ran_deployment(tmp_path)
    code, out = gateway("messages", "list", "--json", "--direction", "in", "--home", str(home))
    assert code == 0, out
    rows = json.loads(out)
    assert len(rows) == 1
    assert rows[0]["name"] == "855-4010-medsupply-ack.edi" and rows[0]["partner"] == "medsupply"
    assert rows[0]["status"] == "processed" and rows[0]["id"].isdigit() and rows[0]["at"]
    code, out = gateway("messages", "list", "--json", "--status", "quarantined", "--home", str(home))
    assert code == 0 and json.loads(out) == []
    code, out = gateway("messages", "show", "4242", "--home", str(home))
    assert code == 2 and "no file 4242" in out and "gateway messages list" in out, out
    code, out = gateway("messages", "show", str(rows[0]["id"]), "--home", str(home))
    assert code == 0 and "855-4010-medsupply-ack.edi" in out
