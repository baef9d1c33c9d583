"""Hosting partners' drops: OpenSSH's internal-sftp, chrooted per partner, writing into the gateway's watched
``inbox/<partner>/``. Half-uploaded files (a ``.part`` name) are never taken; one partner cannot reach
another's folder. docs/sftp.md, "Hosting their drops", is the setup this runs.

``ChrootDirectory`` needs the chroot and its parents owned by root, so this runs only as root (in CI and
on the project's machines the tests run as root); elsewhere it skips saying so. Each partner has its
own port here (``Match LocalPort``) because the test cannot create system users; in production it is
``Match Group`` with ``ChrootDirectory /srv/edi/%u``. The gateway's ``inbox/<partner>/`` is bind-mounted
as the chroot's ``upload/`` (the inbox refuses a symlinked folder); where bind mounts are not permitted
the test skips saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sftpkit import SAMPLE_856, endpoint_for

from gateway.channels.inbox import Inbox
from gateway.channels.sftp import SftpError, connect
from tests.conftest import unavailable
from tests.support.sshd import Sshd, free_port, sshd_missing

PARTNERS = ("medsupply", "orthosupply")


@pytest.fixture(scope="module", name="hosted")
def hosted_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sshd, dict[str, int], Path, Path]]:
    missing = sshd_missing()
    if missing:
        unavailable(missing)
    if os.geteuid() != 0:
        pytest.skip("ChrootDirectory needs root-owned chroots: run the tests as root to check hosting")
    base = Path("/run") / f"gateway-sftp-{uuid.uuid4().hex[:8]}"  # not under /tmp: chroot parents not world-writable
    ports = {p: free_port() for p in PARTNERS}
    base.mkdir(mode=0o755)
    inbox = tmp_path_factory.mktemp("hosting-inbox")
    mounted: list[Path] = []
    try:
        for partner in PARTNERS:
            (base / partner).mkdir(mode=0o755)
            (base / partner / "upload").mkdir(mode=0o2770)
            (inbox / partner).mkdir(mode=0o2770)
            bind = subprocess.run(
                ["mount", "--bind", str(inbox / partner), str(base / partner / "upload")],
                capture_output=True,
                text=True,
            )
            if bind.returncode != 0:
                pytest.skip(f"bind mounts are not permitted here ({bind.stderr.strip()}): hosting not checked")
            mounted.append(base / partner / "upload")
    except BaseException:
        _unmount(mounted, base)
        raise
    extra = [f"Port {ports['orthosupply']}"]
    for partner, port in ports.items():
        extra += [
            f"Match LocalPort {port}",
            f"    ChrootDirectory {base / partner}",
            "    ForceCommand internal-sftp -u 0007",
            "    AllowTcpForwarding no",
            "    PermitTTY no",
        ]
    try:
        server = Sshd(tmp_path_factory.mktemp("hosting"), "\n".join(extra), port=ports["medsupply"])
    except BaseException:
        _unmount(mounted, base)
        raise
    try:
        yield server, ports, base, inbox
    finally:
        server.stop()
        _unmount(mounted, base)


def _unmount(mounted: list[Path], base: Path) -> None:
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False, capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def test_a_partner_drop_reaches_the_inbox_only_once_renamed(
    hosted: tuple[Sshd, dict[str, int], Path, Path],
) -> None:
    server, ports, _, inbox = hosted
    watcher = Inbox(inbox, stable_seconds=0.0, rescan_seconds=0.1)
    with connect(endpoint_for(server, port=ports["medsupply"])) as session:
        assert [a.filename for a in session.listdir("/")] == ["upload"]  # the chroot is all it sees
        with session.client.open("/upload/asn.edi.part", "wb") as out:
            out.write(SAMPLE_856[:200])
            watcher.scan()
            assert watcher.ready() == []  # half uploaded, under its temporary name: not taken
            out.write(SAMPLE_856[200:])
        watcher.scan()
        assert watcher.ready() == []
        session.rename("/upload/asn.edi.part", "/upload/asn.edi")
    watcher.scan()
    ready = watcher.ready()
    assert [c.path.name for c in ready] == ["asn.edi"] and ready[0].partner == "medsupply"
    assert ready[0].path.read_bytes() == SAMPLE_856


def test_one_partner_cannot_reach_another_partners_folder(hosted: tuple[Sshd, dict[str, int], Path, Path]) -> None:
    server, ports, base, inbox = hosted
    theirs = inbox / "orthosupply" / "theirs.edi"
    theirs.write_bytes(b"orthosupply's order")
    with connect(endpoint_for(server, port=ports["medsupply"])) as session:
        for path in (
            str(theirs),
            str(base / "orthosupply" / "upload" / "theirs.edi"),
            "/../orthosupply/upload/theirs.edi",
            "/../../orthosupply/upload/theirs.edi",
        ):
            with pytest.raises(SftpError) as caught:
                session.stat(path)
            assert caught.value.kind == "missing", path
        assert [a.filename for a in session.listdir("/..")] == ["upload"]  # / is its own chroot
        with pytest.raises(SftpError):
            session.upload(b"x", "/../orthosupply/upload", "planted.edi", ".planted.part")
    assert sorted(p.name for p in theirs.parent.iterdir()) == ["theirs.edi"]
    with connect(endpoint_for(server, port=ports["orthosupply"])) as session:
        assert [a.filename for a in session.listdir("/upload")] == ["theirs.edi"]
