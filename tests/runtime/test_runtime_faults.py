"""Faults `gateway run` meets in a deployment and must survive: hostile inbox entries (names that are not
UTF-8, names too long to rename, newlines, FIFOs, devices, symbolic and hard links), folders on another
file system or that cannot be written, files still being written, and the exit codes of ``--once``.

Mostly through the real command line (``gateway run`` as a process), on SQLite and PostgreSQL where the
store matters (the ledger records names), on SQLite only where it does not.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from runtimekit import (  # noqa: F401 - fixtures
    Home,
    Running,
    case,
    gateway,
    in_process,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    wait_for,
    workspace_fixture,
)

from gateway.store import Archive, Store

INVOICE = case("medsupply", "810-invoice.edi")
CSV = case("coastal", "inv_20260315.csv")


def sqlite_home(tmp_path: Path, **settings: object) -> Home:
    return make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", **settings)  # type: ignore[arg-type]


def ledger(home: Home) -> dict[str, tuple[str, str | None]]:
    """File name → (status, reason)."""
    with Store(home.store_url) as store:
        return {f.name: (f.status, f.reason) for f in store.list_files(limit=500)}


def blobs(home: Home) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in home.archive.glob("??/*") if p.is_file()}


# --- names -----------------------------------------------------------------------------------


def test_a_name_that_is_not_utf8_is_quarantined_and_its_batch_recorded(tmp_path: Path, store_url: str) -> None:
    home = make_home(tmp_path, store_url)
    bad = os.fsdecode(b"po-\xff\xfe-2026.edi")
    home.drop(bad, INVOICE.replace(b"000000413", b"000000414"), "medsupply")
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    first = gateway(home, "run", "--once")
    assert first.returncode == 1, first.stderr  # quarantined: exit 1, not a crash
    assert "UnicodeEncodeError" not in first.stderr and "Traceback" not in first.stderr
    files = ledger(home)
    assert files["810-invoice.edi"][0] == "processed", files
    (safe,) = [n for n in files if n != "810-invoice.edi"]
    assert safe == "po-__-2026.edi" and files[safe][0] == "quarantined"
    assert "not valid UTF-8: po-\\xff\\xfe-2026.edi" in (files[safe][1] or "")
    assert home.inbox_leftovers() == []
    quarantined = [p.name for p in (home.path / "var" / "quarantine").rglob("*") if p.is_file()]
    assert any(n.endswith("-po-__-2026.edi") for n in quarantined), quarantined
    assert "po-\\xff\\xfe-2026.edi" in first.stderr  # logged escaped
    again = gateway(home, "run", "--once")
    assert again.returncode == 0, again.stderr  # nothing left to take: the restart does not die on it
    status = in_process(home, "status")
    assert status.returncode == 0 and "po-__-2026.edi" in status.stdout


def test_a_255_byte_name_is_quarantined_once_not_retried(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    long_name = "x" * 251 + ".edi"
    assert len(long_name.encode()) == 255
    (home.inbox / "medsupply" / long_name).write_bytes(INVOICE)
    run = gateway(home, "run", "--once")
    assert run.returncode == 1, run.stderr
    assert len([line for line in run.stderr.splitlines() if "x" * 251 in line]) == 1, "reported once"
    files = ledger(home)
    ((name, (status_, reason)),) = files.items()
    assert status_ == "quarantined" and len(name.encode()) <= 191 and "255 bytes long" in (reason or "")
    assert home.inbox_leftovers() == []
    assert gateway(home, "run", "--once").returncode == 0


def test_a_newline_in_a_name_is_escaped_in_logs_and_status(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("evil\nname.edi", INVOICE, "medsupply")
    home.drop("notes\nfake INFO line.txt", b"Dear supplier\n", None)  # quarantined: not a document
    run = gateway(home, "run", "--once")
    assert run.returncode == 1, run.stderr
    assert "evil\\nname.edi" in run.stderr and "notes\\nfake INFO line.txt" in run.stderr
    for line in run.stderr.splitlines() + run.stdout.splitlines():
        assert not line.startswith(("name.edi", "fake INFO")), f"a raw newline reached the output: {line!r}"
    assert ledger(home)["evil\nname.edi"][0] == "processed"  # the store holds it; only printing escapes it
    status = in_process(home, "status")
    assert "notes\\nfake INFO line.txt" in status.stdout
    assert not any(line.startswith("fake INFO") for line in status.stdout.splitlines())


# --- entries that are not regular files ------------------------------------------------------


def test_fifo_and_device_symlink_never_block_the_watching_service(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = sqlite_home(tmp_path)
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    os.mkfifo(home.inbox / "medsupply" / "pipe.edi")
    (home.inbox / "coastal" / "zero.csv").symlink_to("/dev/zero")
    (home.inbox / "null.edi").symlink_to("/dev/null")
    time.sleep(0.5)
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    wait_for(
        lambda: len(ledger(home)) == 4 and {s for s, _ in ledger(home).values()} <= {"processed", "quarantined"},
        30,
        "every entry to be handled",
    )
    files = ledger(home)
    assert files["810-invoice.edi"][0] == "processed"
    assert files["pipe.edi"] == (
        "quarantined",
        "refused: a FIFO (named pipe), not a regular file (nothing of it was read)",
    )
    assert files["zero.csv"][0] == "quarantined" and "symbolic link" in (files["zero.csv"][1] or "")
    assert "/dev/zero" in (files["zero.csv"][1] or "")
    assert run.proc.poll() is None, "the service died"
    started = time.monotonic()
    assert run.stop(timeout=20) == 0, run.stderr()[-2000:]
    assert time.monotonic() - started < 10, "SIGTERM was not honoured promptly"
    assert home.inbox_leftovers() == [] and not list(home.inbox.rglob("*.edi"))
    assert "MemoryError" not in run.stderr()


def test_symlinks_and_hard_links_leak_nothing(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    secret = tmp_path / "secret.csv"
    secret.write_bytes(b"root:$6$very-secret-hash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    (home.inbox / "coastal" / "shadow.csv").symlink_to(secret)
    os.link(secret, home.inbox / "coastal" / "hard.csv")
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 1, run.stderr
    files = ledger(home)
    assert files["shadow.csv"][0] == "quarantined" and "symbolic link" in (files["shadow.csv"][1] or "")
    assert files["hard.csv"][0] == "quarantined" and "2 hard links" in (files["hard.csv"][1] or "")
    assert secret.read_bytes().startswith(b"root:") and secret.stat().st_nlink == 1, "the target is untouched"
    everything = [p for p in home.path.rglob("*") if p.is_file() and not p.is_symlink() and p != secret]
    leaked = [p for p in everything if b"very-secret-hash" in p.read_bytes()]
    assert leaked == [], f"the target's bytes were kept: {leaked}"
    assert home.inbox_leftovers() == []


def test_archive_quarantine_processed_and_ledger_are_private(tmp_path: Path) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    home.drop("notes.txt", b"Dear supplier\n", None)
    assert gateway(home, "run", "--once").returncode == 1
    var = home.path / "var"
    for root in (var / "archive", var / "quarantine", var / "processed"):
        assert stat.S_IMODE(root.stat().st_mode) == 0o700, root
        for path in root.rglob("*"):
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                assert mode == 0o700, path
            else:
                assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert blobs(home) and all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in var.glob("archive/??/*"))
    assert stat.S_IMODE((var / "gateway.sqlite").stat().st_mode) == 0o600


# --- folders on other file systems, folders that cannot be written ---------------------------


def test_processed_on_another_file_system_is_moved_by_copy(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the test folder")
    other = shm / f"gw-processed-{os.getpid()}-{tmp_path.name}"
    request.addfinalizer(lambda: subprocess.run(["rm", "-rf", str(other)], check=False))
    home = sqlite_home(tmp_path, stable_seconds=0, extra={"folders": {"processed": str(other)}})
    for n in range(3):
        home.drop(f"inv-{n}.edi", INVOICE.replace(b"000000413", f"00000042{n}".encode()), "medsupply")
    started = time.monotonic()
    run = gateway(home, "run", "--once")
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 30
    assert "Invalid cross-device link" not in run.stderr
    assert home.inbox_leftovers() == []
    moved = sorted(p.name.split("-", 1)[1] for p in other.rglob("*.edi"))
    assert moved == ["inv-0.edi", "inv-1.edi", "inv-2.edi"]
    assert {p.read_bytes() for p in other.rglob("*.edi")} == {
        INVOICE.replace(b"000000413", f"00000042{n}".encode()) for n in range(3)
    }


def test_move_copies_syncs_and_unlinks_on_exdev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from gateway.runtime import fsutil

    source, target = tmp_path / "a" / "file.edi", tmp_path / "b" / "file.edi"
    source.parent.mkdir()
    target.parent.mkdir()
    source.write_bytes(b"ISA*bytes")
    real_rename = os.rename
    synced: list[int] = []
    real_fsync = os.fsync

    def rename(src: object, dst: object) -> None:
        if Path(str(src)) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)  # type: ignore[arg-type]

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "fsync", fsync)
    fsutil.move(source, target)
    assert not source.exists() and target.read_bytes() == b"ISA*bytes"
    assert len(synced) >= 2, "the copy and its folder are synced before the source is unlinked"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["file.edi"], "no temporary left"


def _immutable(folder: Path, request: pytest.FixtureRequest) -> None:
    """Make ``folder`` unwritable even for root (``chattr +i``); skip where that is not possible."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i not available here: {done.stderr!r}")
    request.addfinalizer(lambda: subprocess.run(["chattr", "-i", str(folder)], check=False))


def test_a_processed_folder_that_cannot_be_written_is_reported_once(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0, rescan_seconds=0.2)
    processed = home.path / "var" / "processed"
    _immutable(processed, request)
    for n in range(3):
        home.drop(f"inv-{n}.edi", INVOICE.replace(b"000000413", f"00000043{n}".encode()), "medsupply")
    once = gateway(home, "run", "--once")
    assert once.returncode == 3, once.stderr  # files left in the inbox: not a success
    assert "not taken    3 file(s), still in the inbox:" in once.stdout
    assert "exit 3:" in once.stderr
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    time.sleep(3)  # 15 rescans
    assert run.stop(timeout=20) == 0
    errors = [line for line in run.stderr().splitlines() if "stays in the inbox" in line]
    assert len(errors) == 3, errors  # once per file, not at every rescan
    assert sorted(home.inbox_leftovers()) == ["medsupply/inv-0.edi", "medsupply/inv-1.edi", "medsupply/inv-2.edi"]
    files = ledger(home)
    assert sorted(files) == ["inv-0.edi", "inv-1.edi", "inv-2.edi"], "recorded once each"
    status = in_process(home, "status")
    problems = [line for line in status.stdout.splitlines() if line.startswith("problem")]
    assert len(problems) == 1 and "cannot move them to the processed folder" in problems[0], status.stdout
    subprocess.run(["chattr", "-i", str(processed)], check=True)
    assert gateway(home, "run", "--once").returncode == 0
    assert home.inbox_leftovers() == [] and len(list(processed.rglob("*.edi"))) == 3
    assert not [line for line in in_process(home, "status").stdout.splitlines() if line.startswith("problem")]


# --- files still being written ---------------------------------------------------------------


def test_a_writer_pausing_between_writes_is_not_taken_half_written(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = sqlite_home(tmp_path)
    settings = json.loads((home.path / "gateway.yaml").read_text("utf-8"))
    del settings["intake"]["stable_seconds"]  # the default, which must hold SFTP uploads' pauses
    (home.path / "gateway.yaml").write_text(json.dumps(settings), "utf-8")
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    path = home.inbox / "medsupply" / "slow.edi"
    chunks = [INVOICE[i : i + 106] for i in range(0, len(INVOICE), 106)]
    with path.open("wb") as out:  # an SFTP upload: one open handle, pauses between writes
        for chunk in chunks:
            out.write(chunk)
            out.flush()
            time.sleep(1.5)
            assert "slow.edi" not in ledger(home), "taken while still being written"
    wait_for(lambda: ledger(home).get("slow.edi", ("",))[0] == "processed", 30, "the complete file")
    with Store(home.store_url) as store:
        (row,) = store.list_files(limit=5)
    assert row.size == len(INVOICE) and Archive(home.archive).read(row.sha256) == INVOICE
    assert run.stop() == 0


def test_close_after_write_takes_a_file_without_waiting_the_stable_time(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=60)
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    (home.inbox / "medsupply" / "direct.edi").write_bytes(INVOICE)  # written in place and closed
    wait_for(lambda: ledger(home).get("direct.edi", ("",))[0] == "processed", 20, "the closed file")
    assert run.stop() == 0


def test_a_partner_profile_sets_its_own_stable_time(tmp_path: Path, workspace: object) -> None:
    from gateway.runtime.service import Service
    from gateway.settings import load_settings
    from gateway.workspace import load_workspace

    home = sqlite_home(tmp_path, stable_seconds=0)
    profile = home.path / "partners" / "medsupply.yaml"
    text = profile.read_text("utf-8")
    profile.write_text(text.rstrip("\n") + "\ninbound:\n  channel: inbox\n  stable_seconds: 45\n", "utf-8")
    deployment, _ = load_settings(home.path)
    with Store(home.store_url) as store:
        store.upgrade()
        service = Service(deployment, load_workspace(home.path), store)
        assert service.inbox.stable_time("medsupply") == 45 and service.inbox.stable_time("coastal") == 0
    from pydantic import ValidationError

    from gateway.partners.profile import ChannelSettings

    with pytest.raises(ValidationError, match="stable_seconds"):
        ChannelSettings.model_validate({"stable_seconds": -1})
    with pytest.raises(ValidationError, match="stable_second"):
        ChannelSettings.model_validate({"stable_second": 5})  # a misspelt key is an error, not ignored


def test_a_file_that_changes_while_being_taken_is_put_back_not_recorded(tmp_path: Path) -> None:
    from gateway.channels.inbox import Candidate
    from gateway.runtime.intake import Intake
    from gateway.workspace import load_workspace

    home = sqlite_home(tmp_path, stable_seconds=0)
    path = home.drop("810-invoice.edi", INVOICE[:200], "medsupply")
    with Store(home.store_url) as store:
        store.upgrade()
        intake = Intake(
            store,
            Archive(home.archive),
            load_workspace(home.path).partners,
            inbox=home.inbox,
            processed=home.path / "var" / "processed",
            quarantine=home.path / "var" / "quarantine",
            after="move",
            worker="w",
        )
        st = path.stat()
        cand = Candidate(path, "medsupply", st.st_size, st.st_mtime_ns)
        real_stage = intake.archive.stage_stream  # intake copies a file to the archive as a stream

        def stage_then_append(stream: object, group: object) -> tuple[str, int]:
            staged = real_stage(stream, group)  # type: ignore[arg-type]
            claim = next(home.inbox.glob("medsupply/.taking.*"))
            with claim.open("ab") as out:  # the writer goes on after our read
                out.write(INVOICE[200:])
            return staged

        intake.archive.stage_stream = stage_then_append  # type: ignore[method-assign]
        from datetime import date

        (taken,) = intake.take_many([cand], date(2026, 3, 1))
        assert taken.outcome == "changed" and taken.row is None, taken
        assert store.list_files() == []
    assert path.read_bytes() == INVOICE, "put back under its name, whole"


# --- exit codes and one line per file --------------------------------------------------------


def test_once_exit_codes_and_json_lines(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    home = sqlite_home(tmp_path, stable_seconds=0)
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    ok = gateway(home, "run", "--once", "--log-format", "json")
    assert ok.returncode == 0, ok.stderr
    lines = [json.loads(line) for line in ok.stderr.splitlines()]
    by_status = {item["status"]: item for item in lines if "status" in item}
    assert by_status["received"]["file"] == "inbox/medsupply/810-invoice.edi"
    assert by_status["processed"]["file_id"] == 1 and by_status["processed"]["acks"]
    assert all({"time", "level", "logger", "message"} <= set(item) for item in lines)
    home.drop("empty.edi", b"", None)
    quarantined = gateway(home, "run", "--once")
    assert quarantined.returncode == 1 and "quarantined  1 file(s):" in quarantined.stdout
    assert "quarantined inbox/empty.edi as file 2: empty file" in quarantined.stderr
    # The archive cannot be written: nothing can be taken, the files stay (exit 3), no hot loop.
    _immutable(home.archive / "tmp", request)
    for n in range(21):
        home.drop(f"inv-{n}.edi", INVOICE.replace(b"000000413", f"0000005{n:02d}".encode()), "medsupply")
    started = time.monotonic()
    stuck = gateway(home, "run", "--once")
    assert stuck.returncode == 3, stuck.stderr
    assert time.monotonic() - started < 20
    assert "not taken    21 file(s), still in the inbox:" in stuck.stdout
    assert len(stuck.stderr.splitlines()) < 40, "logged in a loop"


def test_once_exits_6_when_deliveries_wait_and_deliver_now_sends_them(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The partner's outbox cannot be written (a transient failure): the files are processed all the same,
    their acks wait for a retry (exit 6), and `gateway deliver --now` sends them once the cause is fixed."""
    home = sqlite_home(tmp_path, stable_seconds=0)
    _immutable(home.outbox / ".tmp", request)
    for n in range(3):
        home.drop(f"inv-{n}.edi", INVOICE.replace(b"000000413", f"00000060{n}".encode()), "medsupply")
    run = gateway(home, "run", "--once")
    assert run.returncode == 6, run.stdout + run.stderr
    assert "3 waiting for a retry" in run.stdout, run.stdout
    assert {s for s, _ in ledger(home).values()} <= {"processed", "duplicate"}  # one invoice number, three drops
    assert not list((home.outbox / "medsupply").glob("997-*.x12"))
    subprocess.run(["chattr", "-i", str(home.outbox / ".tmp")], check=True)
    sent = in_process(home, "deliver", "--now")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "delivered 3; waiting for a retry 0; dead letters 0" in sent.stdout
    assert len(list((home.outbox / "medsupply").glob("997-*.x12"))) == 3


def test_the_service_prints_one_line_per_file_as_it_goes(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    home = sqlite_home(tmp_path)
    run = Running(home)
    request.addfinalizer(run.kill)
    run.wait_started()
    home.drop("810-invoice.edi", INVOICE, "medsupply")
    wait_for(lambda: "file 1 810-invoice.edi: processed" in run.stderr(), 20, "the per-file line")
    assert "received inbox/medsupply/810-invoice.edi as file 1 (x12, medsupply)" in run.stderr()
    assert run.stop() == 0


def test_held_files_are_not_looked_at_again_until_they_change(tmp_path: Path) -> None:
    from gateway.channels.inbox import Inbox

    clock = [100.0]
    inbox = Inbox(tmp_path, stable_seconds=0, clock=lambda: clock[0], retry_seconds=60)
    (tmp_path / "p").mkdir()
    path = tmp_path / "p" / "a.edi"
    path.write_bytes(b"x")
    inbox.scan()
    assert [c.path for c in inbox.ready()] == [path]
    assert inbox.hold(path, "cannot move") is True
    assert inbox.hold(path, "cannot move") is False, "the same problem is reported once"
    inbox.scan()
    assert inbox.ready() == []
    clock[0] += 61
    inbox.scan()
    assert [c.path for c in inbox.ready()] == [path], "retried after retry_seconds"
    inbox.hold(path, "cannot move")
    path.write_bytes(b"xy")
    inbox.scan()
    assert [c.path for c in inbox.ready()] == [path], "retried as soon as it changes"


def test_service_threads_stop(tmp_path: Path) -> None:
    """The watchdog thread ends with the run (no thread left behind by run_once)."""
    home = sqlite_home(tmp_path, stable_seconds=0)
    service = home.service()
    before = threading.active_count()
    service.run_once()
    service.store.close()
    assert threading.active_count() <= before
