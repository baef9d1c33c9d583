"""Pulling from a real OpenSSH server: complete files only, archived and recorded before the remote file is
moved, interrupted transfers fetched again, stalled and refused servers reported without delaying others."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sftpkit import SAMPLE_856, channel, endpoint_for, set_inbound, sftp_home, sshd_fixture  # noqa: F401

from gateway.channels.sftp import RemoteFile, Session, SftpError, SftpTimeout, connect, local_name
from gateway.runtime.sftp_pull import ChannelStates, Poller, Puller, make_poller, read_states
from gateway.store import Archive, Store
from gateway.workspace import load_workspace
from tests.support.sshd import Sshd, stalled_server


def _puller(home: Any, partner: str = "medsupply", connector: Any = connect) -> tuple[Puller, Store]:
    store = home.store()
    workspace = load_workspace(home.path)
    profile = workspace.partners.get(partner)
    puller = Puller(
        profile,
        store,
        Archive(home.archive),
        workspace.partners,
        home=home.path,
        spool=home.path / "var" / "run" / "sftp",
        connector=connector,
    )
    return puller, store


def _files(store: Store) -> list[Any]:
    with store._db.read("test") as conn:
        from gateway.store.schema import files

        return list(conn.execute(files.select().order_by(files.c.id)).mappings())


def test_complete_files_are_archived_recorded_then_moved(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="rename")
    (remote / "a.edi").write_bytes(SAMPLE_856)
    (remote / "b.edi").write_bytes(SAMPLE_856.replace(b"000000001", b"000000002"))
    (remote / "c.edi.part").write_bytes(b"half")  # still being uploaded
    (remote / "notes.txt.tmp").write_bytes(b"x")
    puller, store = _puller(home)
    result = puller.poll()
    assert result.error is None, result.error
    assert len(result.taken) == 2
    rows = _files(store)
    assert [r["name"] for r in rows] == ["a.edi", "b.edi"]
    assert all(r["origin"].startswith(f"sftp:medsupply:{remote}/") for r in rows)
    assert rows[0]["sha256"] and rows[0]["status"] == "received" and rows[0]["partner_id"] == "medsupply"
    assert Archive(home.archive).path(rows[0]["sha256"]).read_bytes() == SAMPLE_856
    assert sorted(p.name for p in remote.iterdir()) == ["c.edi.part", "done", "notes.txt.tmp"]
    assert sorted(p.name for p in (remote / "done").iterdir()) == ["a.edi", "b.edi"]
    assert not list((home.path / "var" / "run" / "sftp").rglob("*.part"))  # no partial left behind
    again = puller.poll()
    assert again.error is None and again.taken == []
    assert len(_files(store)) == 2


def test_a_growing_file_is_taken_only_once_stable_and_delete_after(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="stable", stable_polls=2, after="delete")
    target = remote / "grow.edi"
    target.write_bytes(SAMPLE_856[:100])
    puller, store = _puller(home)
    assert puller.poll().taken == []  # seen once
    with target.open("ab") as out:
        out.write(SAMPLE_856[100:])
    first = puller.poll()
    assert first.taken == [] and first.backlog == 1  # changed since the last listing: not complete
    taken = puller.poll()
    assert len(taken.taken) == 1
    assert not target.exists() and not (remote / "done").exists()
    assert Archive(home.archive).path(_files(store)[0]["sha256"]).read_bytes() == SAMPLE_856


def test_a_done_marker_partner(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="marker", patterns=["*.edi"])
    (remote / "x.edi").write_bytes(SAMPLE_856)
    puller, store = _puller(home)
    assert puller.poll().taken == []
    (remote / "x.edi.done").write_bytes(b"")
    assert len(puller.poll().taken) == 1
    assert sorted(p.name for p in remote.iterdir()) == ["done"]  # the marker is removed with the file
    assert len(_files(store)) == 1


def test_recursive_listing_skips_the_done_folder(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age", recursive=True)
    (remote / "sub").mkdir()
    (remote / "sub" / "deep.edi").write_bytes(SAMPLE_856)
    (remote / "deep.edi").write_bytes(SAMPLE_856.replace(b"000000001", b"000000009"))  # same name, other folder
    puller, _store = _puller(home)
    assert len(puller.poll().taken) == 2
    assert (remote / "done" / "sub" / "deep.edi").read_bytes() == SAMPLE_856
    assert (remote / "done" / "deep.edi").exists()  # neither replaced the other
    assert puller.poll().taken == []  # done/ is not listed again


def test_a_changed_host_key_is_refused_naming_both_fingerprints(tmp_path: Path, sshd: Sshd) -> None:
    other = (Path(__file__).parent / "data" / "other_host.pub").read_text().split()
    home, remote = sftp_home(tmp_path, sshd, complete="age")
    set_inbound(home, "medsupply", {**channel(sshd, remote, complete="age"), "host_key": f"{other[0]} {other[1]}"})
    (remote / "a.edi").write_bytes(SAMPLE_856)
    puller, store = _puller(home)
    result = puller.poll()
    assert result.kind == "host_key"
    assert "HOST KEY CHANGED" in (result.error or "")
    offered = result.error.split("offered ")[1].split(" but")[0]  # type: ignore[union-attr]
    assert offered.startswith("ssh-ed25519 SHA256:")
    assert "SHA256:" in result.error.split(" but ")[1]  # type: ignore[union-attr]
    assert (remote / "a.edi").exists() and not (remote / "done").exists()
    assert _files(store) == []
    states = ChannelStates(home.path / "var" / "run")
    states.update(result, __import__("datetime").datetime.now())
    seen = read_states(home.path / "var" / "run")["medsupply"]
    assert seen["error_kind"] == "host_key" and "HOST KEY CHANGED" in seen["error"]


def test_no_pin_at_all_is_refused_too(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age")
    block = channel(sshd, remote, complete="age")
    block.pop("host_key")
    set_inbound(home, "medsupply", block)
    result = _puller(home)[0].poll()
    assert result.kind == "host_key" and "unknown host key" in (result.error or "")


def test_known_hosts_file_pins_the_key(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {sshd.host_public}\n")
    block = channel(sshd, remote, complete="age", known_hosts=str(known))
    block.pop("host_key")
    set_inbound(home, "medsupply", block)
    (remote / "a.edi").write_bytes(SAMPLE_856)
    result = _puller(home)[0].poll()
    assert result.error is None and len(result.taken) == 1
    assert known.read_text().count("\n") == 1  # never added to


def test_a_connection_dropped_mid_transfer_records_nothing_and_is_fetched_again(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age", max_requests=4)
    big = SAMPLE_856 + b"\n" * (48 << 20)
    (remote / "big.edi").write_bytes(big)
    spool = home.path / "var" / "run" / "sftp" / "medsupply"

    def kill_when_started() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            parts = list(spool.glob("*.part")) if spool.exists() else []
            if parts and parts[0].stat().st_size > 0:
                sshd.drop_connections()
                return
            time.sleep(0.002)

    killer = threading.Thread(target=kill_when_started)
    puller, store = _puller(home)
    killer.start()
    result = puller.poll()
    killer.join()
    assert result.error is not None and result.taken == [], result
    assert _files(store) == []
    assert (remote / "big.edi").exists()
    assert not list(spool.glob("*.part"))
    again = puller.poll()
    assert again.error is None and len(again.taken) == 1
    assert Archive(home.archive).path(_files(store)[0]["sha256"]).read_bytes() == big


def test_a_stalled_transfer_is_abandoned_within_its_deadline(tmp_path: Path, sshd: Sshd) -> None:
    with (tmp_path / "stall.edi").open("wb") as sparse:
        sparse.truncate(256 << 20)  # long enough that the freeze always lands mid-transfer
    ep = endpoint_for(sshd, timeout=1.0, max_requests=2)
    target = tmp_path / "got.part"
    stopped: list[int] = []

    def freeze() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if target.exists() and target.stat().st_size > 0:
                for pid in sshd.children():
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
                return
            time.sleep(0.002)

    freezer = threading.Thread(target=freeze)
    with connect(ep) as session:
        freezer.start()
        started = time.monotonic()
        with pytest.raises(SftpTimeout, match=r"read .*stall.edi at byte .* no answer within 1 s"):
            session.download(RemoteFile(str(tmp_path / "stall.edi"), 256 << 20, 0), target)
        assert time.monotonic() - started < 5
    freezer.join()
    assert stopped
    for pid in stopped:
        # SIGKILL ends a stopped process too; once the connection was abandoned its sshd child may already
        # have gone, or be reaped between the two signals.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGCONT)


def test_a_stalled_server_and_a_down_server_never_delay_a_good_one(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age", timeout_seconds=1.5)
    (remote / "a.edi").write_bytes(SAMPLE_856)
    with stalled_server() as stalled:
        dead = Sshd.__new__(Sshd)  # noqa: F841 - only a closed port is needed
        from tests.support.sshd import free_port

        set_inbound(home, "orthosupply", channel(sshd, tmp_path / "o", port=stalled, timeout_seconds=1.5))
        set_inbound(home, "summitmed", channel(sshd, tmp_path / "s", port=free_port(), timeout_seconds=1.5))
        workspace = load_workspace(home.path)
        store = home.store()
        poller = make_poller(
            workspace.partners, store, Archive(home.archive), home=home.path, run_folder=home.path / "var" / "run"
        )
        assert isinstance(poller, Poller)
        finished: dict[str, float] = {}
        original = poller._finish

        def timed(partner: str, result: Any) -> None:
            finished[partner] = time.monotonic()
            original(partner, result)

        poller._finish = timed  # type: ignore[method-assign]
        started = time.monotonic()
        results = {r.partner: r for r in poller.poll_all(timeout=20)}
        poller.close()
    assert results["medsupply"].error is None and len(results["medsupply"].taken) == 1
    assert finished["medsupply"] - started < 1.0  # on time, while the stalled one still waits
    assert results["orthosupply"].kind == "timeout"
    assert "banner and key exchange got no answer within 1.5 s" in (results["orthosupply"].error or "")
    assert 1.0 < finished["orthosupply"] - started < 4
    assert results["summitmed"].kind == "connect" and "cannot connect" in (results["summitmed"].error or "")
    states = read_states(home.path / "var" / "run")
    assert states["medsupply"]["last_success"] and "error" not in states["medsupply"]
    assert states["orthosupply"]["error_kind"] == "timeout"


class _CrashAfterRecord(Exception):
    pass


def test_a_crash_between_recording_and_the_remote_move_ends_with_one_record(tmp_path: Path, sshd: Sshd) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age")
    (remote / "a.edi").write_bytes(SAMPLE_856)
    puller, store = _puller(home)

    def crash(session: Session, remote_file: RemoteFile) -> None:
        raise _CrashAfterRecord

    puller._let_go = crash  # type: ignore[method-assign]
    with pytest.raises(_CrashAfterRecord):
        puller.poll()
    assert len(_files(store)) == 1 and (remote / "a.edi").exists()
    restarted, store = _puller(home)
    result = restarted.poll()
    assert result.error is None and len(result.taken) == 1
    assert len(_files(store)) == 1  # the same row, not a second one
    assert not (remote / "a.edi").exists() and (remote / "done" / "a.edi").exists()


@pytest.mark.parametrize(
    ("remote", "local"),
    [
        ("/in/../../etc/passwd", "passwd"),
        ("/in/..", "unnamed"),
        ("/in/.hidden", "hidden"),
        ("/in/a\x1b[2Jb\n.edi", "a_[2Jb_.edi"),
        ("/in/a\\b.edi", "a_b.edi"),
    ],
)
def test_remote_names_become_one_safe_local_name(remote: str, local: str) -> None:
    assert local_name(remote) == local


def test_an_overlong_remote_name_is_cut_with_a_hash() -> None:
    name = local_name("/in/" + "é" * 300 + ".edi")
    assert len(name.encode()) <= 200 and "/" not in name
    assert name != local_name("/in/" + "é" * 301 + ".edi")


def test_upload_rejects_names_that_leave_the_folder(tmp_path: Path, sshd: Sshd) -> None:
    with connect(endpoint_for(sshd)) as session, pytest.raises(SftpError, match="not a plain file name"):
        session.upload(b"x", str(tmp_path), "../escape", ".tmp")


def test_permission_denied_on_the_remote_move_is_reported_and_nothing_recorded_twice(
    tmp_path: Path, sshd: Sshd
) -> None:
    home, remote = sftp_home(tmp_path, sshd, complete="age")
    set_inbound(home, "medsupply", channel(sshd, remote, port=sshd.read_only_port, complete="age"))
    (remote / "a.edi").write_bytes(SAMPLE_856)
    (remote / "done").mkdir()
    puller, store = _puller(home)
    result = puller.poll()
    assert result.kind == "permission", result
    assert "permission denied" in (result.error or "") and "rename" in (result.error or "")
    assert len(_files(store)) == 1 and (remote / "a.edi").exists()  # recorded; left where it was
    again = puller.poll()
    assert again.kind == "permission" and len(_files(store)) == 1  # fetched again, recorded once
    set_inbound(home, "medsupply", channel(sshd, remote, complete="age"))  # the partner fixes its server
    fixed, store = _puller(home)
    assert fixed.poll().error is None
    assert len(_files(store)) == 1 and (remote / "done" / "a.edi").exists() and not (remote / "a.edi").exists()


def test_downloads_ask_for_the_gap_after_a_short_answer_and_notice_a_changed_size(tmp_path: Path, sshd: Sshd) -> None:
    import hashlib

    data = os.urandom(5 << 20) + b"tail"
    (tmp_path / "f.bin").write_bytes(data)
    path = str(tmp_path / "f.bin")
    # 1 MiB asked per request: OpenSSH answers at most 255 KiB, so every answer is short.
    with connect(endpoint_for(sshd, read_size=1 << 20, max_requests=3)) as session:
        assert session.download(RemoteFile(path, len(data), 0), tmp_path / "a.part") == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "a.part").read_bytes() == data
        with pytest.raises(SftpError, match="longer than the 100 bytes listed"):
            session.download(RemoteFile(path, 100, 0), tmp_path / "b.part")
        with pytest.raises(SftpError, match="shrank since it was listed"):
            session.download(RemoteFile(path, len(data) + 10, 0), tmp_path / "c.part")
        assert session.listdir(str(tmp_path))  # the channel is still in step after both
