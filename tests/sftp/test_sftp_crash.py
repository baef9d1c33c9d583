"""A kill -9 of `gateway run` between archiving a pulled file and moving it on the server: the next run moves the
remote file and the ledger holds one record of it.

The moment is made certain, not raced: the partner's server refuses the move (a read-only internal-sftp port),
so the running gateway downloads, archives and records the file, then fails the move and backs off; it is
killed in that state. The partner then fixes its server and the gateway runs again.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sftpkit import SAMPLE_856, Running, channel, set_inbound, sftp_home, sshd_fixture, wait_for  # noqa: F401

from gateway.cli.main import main
from gateway.runtime.service import exit_code
from tests.support.sshd import Sshd


def test_kill_9_between_recording_and_the_remote_move(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd)
    set_inbound(home, "medsupply", channel(sshd, remote, port=sshd.read_only_port, complete="age"))
    (remote / "asn.edi").write_bytes(SAMPLE_856)
    (remote / "done").mkdir()
    running = Running(home)
    try:
        running.wait_started()
        wait_for(lambda: "permission denied" in running.stderr(), 30, "the refused remote move")
    finally:
        running.kill()
    assert (remote / "asn.edi").exists()  # archived and recorded, not moved

    def files() -> list[dict[str, object]]:
        out = (
            CliRunner()
            .invoke(main, ["messages", "list", "--direction", "in", "--json", "--home", str(home.path)])
            .output
        )
        return list(json.loads(out))

    assert len(files()) == 1
    set_inbound(home, "medsupply", channel(sshd, remote, complete="age"))  # the partner fixes its server
    summary = home.service().run_once()
    assert exit_code(summary) == 0, summary
    assert not (remote / "asn.edi").exists() and (remote / "done" / "asn.edi").exists()
    assert len(files()) == 1  # one ledger record, processed once
