"""The SFTP channel through the command line: `gateway run --once` pulls and processes, `gateway status` and
`gateway channels status` show each partner's last poll, `gateway channels test` reports and fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from sftpkit import SAMPLE_856, Home, channel, set_inbound, sftp_home, sshd_fixture  # noqa: F401

from gateway.cli.main import main
from gateway.runtime.service import exit_code
from tests.support.sshd import Sshd


def cli(home: Home, *args: str) -> Result:
    """``gateway ARGS --home HOME`` in this process (the commands that only read and connect)."""
    return CliRunner().invoke(main, [*args, "--home", str(home.path)])


def test_run_once_pulls_processes_and_reports(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="rename")
    (remote / "asn.edi").write_bytes(SAMPLE_856)
    summary = home.service().run_once()  # `gateway run --once`'s service, in this process
    assert exit_code(summary) == 0, summary
    assert (remote / "done" / "asn.edi").exists() and not (remote / "asn.edi").exists()
    status = json.loads(cli(home, "status", "--json").output)
    assert status["counts"]["files"] == {"processed": 1}
    assert status["channels"]["medsupply"]["taken"] == 1 and status["channels"]["medsupply"]["backlog"] == 0
    assert list((home.outbox / "medsupply").glob("997-*.x12"))  # its 997 went out like any inbox file's
    assert "channel            medsupply: sftp, last poll " in cli(home, "status").output
    text = cli(home, "channels", "status").output
    assert "medsupply" in text and "taken 1" in text and "ERROR" not in text


def test_channels_test_reports_key_listing_and_write(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    (remote / "waiting.edi").write_bytes(SAMPLE_856)
    done = cli(home, "channels", "test", "medsupply")
    assert done.exit_code == 0, done.output
    assert "ssh-ed25519 SHA256:" in done.output and "matches the pin" in done.output
    assert "1 file(s), 1 matching" in done.output and "waiting.edi" in done.output
    assert "write" in done.output and "ok" in done.output
    assert sorted(p.name for p in remote.iterdir()) == ["waiting.edi"]  # the probe is gone, nothing moved


def test_channels_test_refuses_a_changed_key_with_exit_1(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    other = (Path(__file__).parent / "data" / "other_host.pub").read_text().split()
    set_inbound(home, "medsupply", {**channel(sshd, remote), "host_key": f"{other[0]} {other[1]}"})
    done = cli(home, "channels", "test", "medsupply")
    assert done.exit_code == 1
    assert "REFUSED" in done.output and "HOST KEY CHANGED" in done.output
    assert done.output.count("SHA256:") >= 2


def test_channels_test_reports_a_missing_folder(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    set_inbound(home, "medsupply", channel(sshd, remote / "nope"))
    done = cli(home, "channels", "test", "medsupply")
    assert done.exit_code == 1
    assert "list          FAILED" in done.output and "no such file" in done.output


def test_channels_test_reports_permission_denied_on_write(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    set_inbound(home, "medsupply", channel(sshd, remote, port=sshd.read_only_port))
    done = cli(home, "channels", "test", "medsupply")
    assert done.exit_code == 1
    assert "matches the pin" in done.output and "0 file(s)" in done.output
    assert "write" in done.output and "FAILED" in done.output and "permission denied" in done.output
