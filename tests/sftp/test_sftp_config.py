"""`gateway config lint` finds what would stop an SFTP channel or destination from connecting safely."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner
from sftpkit import REPO

from gateway.cli.main import main
from gateway.partners.sftp_options import host_key_problem


def _home(tmp_path: Path, inbound: dict[str, object], destinations: dict[str, object]) -> Path:
    home = tmp_path / "home"
    (home / "partners").mkdir(parents=True)
    profile = yaml.safe_load((REPO / "partners" / "medsupply.yaml").read_text())
    profile.pop("xref", None)
    profile["inbound"] = inbound
    (home / "partners" / "medsupply.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    (home / "gateway.yaml").write_text(
        json.dumps({"destinations": destinations, "routes": [{"name": "all", "to": list(destinations)}]})
    )
    return home


def test_config_lint_reports_sftp_channel_and_destination_problems(tmp_path: Path) -> None:
    home = _home(
        tmp_path,
        {
            "channel": "sftp", "host": "sftp.medsupply.example", "username": "mercy",
            "sftp": {"key_file": "keys/missing", "passphrase": {"env": "SFTP_NOT_SET_ANYWHERE"}},
        },
        {
            "to-partner": {
                "type": "sftp", "host": "h", "username": "u", "host_key": "ssh-ed25519 nope!",
            }
        },
    )  # fmt: skip
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(home)])
    assert result.exit_code != 0
    out = result.output
    assert "PRT-050" in out and "sftp needs `remote_dir`" in out
    assert "PRT-051" in out and "no host key pinned" in out
    assert "PRT-054" in out and "keys/missing does not exist" in out
    assert "PRT-053" in out and "SFTP_NOT_SET_ANYWHERE is not set" in out
    assert "CFG-072" in out and "not base64" in out
    assert "CFG-073" in out and "no authentication" in out
    assert "medsupply.yaml" in out  # located in the profile


def test_a_clean_sftp_channel_passes(tmp_path: Path) -> None:
    key = "ssh-ed25519 " + (Path(__file__).parent / "data" / "other_host.pub").read_text().split()[1]
    (tmp_path / "home" / "keys").mkdir(parents=True)
    (tmp_path / "home" / "keys" / "id").write_text("x")
    home = _home(
        tmp_path,
        {"channel": "sftp", "host": "h", "username": "u", "remote_dir": "/out", "host_key": key,
         "sftp": {"key_file": "keys/id"}},
        {"canonical-json": {"type": "files"}},
    )  # fmt: skip
    result = CliRunner().invoke(main, ["config", "lint", "--home", str(home)])
    assert "PRT-05" not in result.output, result.output


def test_host_key_shapes() -> None:
    assert host_key_problem("ssh-ed25519") is not None
    assert "not one of" in (host_key_problem("ssh-dss AAAA") or "")
    assert "not a ssh-rsa key" in (host_key_problem("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIA==") or "")
