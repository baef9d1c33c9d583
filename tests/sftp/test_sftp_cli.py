"""The SFTP channel through the command line: `gateway run --once` pulls and processes, `gateway status` and
`gateway channels status` show each partner's last poll, `gateway channels test` reports and fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

from sftpkit import SAMPLE_856, channel, gateway, set_inbound, sftp_home, sshd_fixture  # noqa: F401

from tests.support.sshd import Sshd


def test_run_once_pulls_processes_and_reports(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="rename")
    (remote / "asn.edi").write_bytes(SAMPLE_856)
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (remote / "done" / "asn.edi").exists() and not (remote / "asn.edi").exists()
    status = json.loads(gateway(home, "status", "--json").stdout)
    assert status["counts"]["files"] == {"processed": 1}
    assert status["channels"]["medsupply"]["taken"] == 1 and status["channels"]["medsupply"]["backlog"] == 0
    assert list((home.outbox / "medsupply").glob("997-*.x12"))  # its 997 went out like any inbox file's
    text = gateway(home, "channels", "status").stdout
    assert "medsupply" in text and "taken 1" in text and "ERROR" not in text


def test_channels_test_reports_key_listing_and_write(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    (remote / "waiting.edi").write_bytes(SAMPLE_856)
    done = gateway(home, "channels", "test", "medsupply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ssh-ed25519 SHA256:" in done.stdout and "matches the pin" in done.stdout
    assert "1 file(s), 1 matching" in done.stdout and "waiting.edi" in done.stdout
    assert "write" in done.stdout and "ok" in done.stdout
    assert sorted(p.name for p in remote.iterdir()) == ["waiting.edi"]  # the probe is gone, nothing moved


def test_channels_test_refuses_a_changed_key_with_exit_1(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    other = (Path(__file__).parent / "data" / "other_host.pub").read_text().split()
    set_inbound(home, "medsupply", {**channel(sshd, remote), "host_key": f"{other[0]} {other[1]}"})
    done = gateway(home, "channels", "test", "medsupply")
    assert done.returncode == 1
    assert "REFUSED" in done.stdout and "HOST KEY CHANGED" in done.stdout
    assert done.stdout.count("SHA256:") >= 2


def test_channels_test_reports_a_missing_folder(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    set_inbound(home, "medsupply", channel(sshd, remote / "nope"))
    done = gateway(home, "channels", "test", "medsupply")
    assert done.returncode == 1
    assert "list          FAILED" in done.stdout and "no such file" in done.stdout


def test_channels_test_reports_permission_denied_on_write(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    set_inbound(home, "medsupply", channel(sshd, remote, port=sshd.read_only_port))
    done = gateway(home, "channels", "test", "medsupply")
    assert done.returncode == 1
    assert "matches the pin" in done.stdout and "0 file(s)" in done.stdout
    assert "write" in done.stdout and "FAILED" in done.stdout and "permission denied" in done.stdout
