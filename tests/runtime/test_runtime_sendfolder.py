"""The send folder: canonical purchase orders dropped in ``send/<partner>/`` go out as that partner's
850, numbered from the persisted sequence, archived, recorded and delivered, as a user runs it
(`gateway run --once`, and the daemon); a bad file is refused whole, kept, and numbers nothing; a crash
after recording numbers nothing twice."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from runtimekit import REPO, Running, gateway, make_home, wait_for

import gateway.runtime.sendfolder as sendfolder
from gateway.store.store import Store
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

ORDER = json.loads((REPO / "samples" / "canonical" / "purchase-order.json").read_text("utf-8"))


def _order(po: str) -> dict[str, object]:
    return {**ORDER, "po_number": po}


def _drop(folder: Path, name: str, value: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.upload"
    tmp.write_text(json.dumps(value), "utf-8")
    os.replace(tmp, folder / name)
    return folder / name


def _sent(home_path: Path, partner: str) -> list[Path]:
    return sorted(p for p in (home_path / "outbox" / partner).glob("850-*.x12"))


def test_orders_dropped_go_out_as_valid_850s_numbered_once(catalog: Catalog, tmp_path: Path) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=0)
    send = home.path / "send" / "medsupply"
    _drop(send, "po-1.json", _order("PO-SEND-1"))
    _drop(send, "two.json", [_order("PO-SEND-2"), _order("PO-SEND-3")])
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent         3 purchase order(s)" in done.stdout, done.stdout
    sent = _sent(home.path, "medsupply")
    assert [p.name for p in sent] == ["850-000000001.x12", "850-000000002.x12", "850-000000003.x12"]
    pos = set()
    for path in sent:
        data = path.read_bytes()
        assert Validator(catalog).validate(data).valid, path
        pos.add(next(seg for seg in data.decode().split("~") if seg.strip().startswith("BEG")).split("*")[3])
    assert pos == {"PO-SEND-1", "PO-SEND-2", "PO-SEND-3"}
    assert not list(send.iterdir()), "taken files leave the send folder"
    moved = sorted(p.name for p in (home.path / "var" / "processed" / "send" / "medsupply").rglob("*.json"))
    assert moved == ["po-1.json", "two.json"]
    with Store(home.store_url) as store:
        rows = store.list_outbound(partner_id="medsupply", kind="850")
        assert len(rows) == 3 and all("send folder" in (r.reason or "") for r in rows)
        assert {d.status for r in rows for d in store.list_deliveries(outbound_id=r.id)} == {"delivered"}
    again = gateway(home, "run", "--once")  # nothing left: nothing more sent
    assert again.returncode == 0 and len(_sent(home.path, "medsupply")) == 3


def test_a_bad_file_is_refused_whole_kept_and_numbers_nothing(tmp_path: Path) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=0)
    send = home.path / "send"
    bad_line = _order("PO-BAD")
    bad_line["lines"] = [{**ORDER["lines"][0], "quantity": "many"}]  # type: ignore[index]
    _drop(send / "medsupply", "mixed.json", [_order("PO-GOOD"), bad_line])
    _drop(send / "medsupply", "broken.json", "{not json")
    (send / "medsupply" / "raw.json").write_text("{not json", "utf-8")
    _drop(send / "nobody", "po.json", _order("PO-NOBODY"))
    _drop(send, "loose.json", _order("PO-LOOSE"))
    done = gateway(home, "run", "--once")
    assert done.returncode == 1, done.stdout + done.stderr
    assert _sent(home.path, "medsupply") == []
    reasons = {p.name: p.read_text("utf-8") for p in (home.path / "var" / "quarantine" / "send").rglob("*.reason.txt")}
    assert set(reasons) == {
        "mixed.json.reason.txt", "broken.json.reason.txt", "raw.json.reason.txt", "po.json.reason.txt",
        "loose.json.reason.txt",
    }  # fmt: skip
    assert "send/medsupply/mixed.json: [1].lines.0.quantity" in reasons["mixed.json.reason.txt"]
    assert "Invalid JSON" in reasons["raw.json.reason.txt"]
    assert "'nobody' is not a known partner" in reasons["po.json.reason.txt"]
    assert "not in a partner folder" in reasons["loose.json.reason.txt"]
    for text in reasons.values():
        assert "archived as sha256 " in text
    kept = (home.path / "var" / "quarantine" / "send" / "medsupply" / "raw.json").read_text("utf-8")
    assert kept == "{not json", "the bytes are kept as dropped"
    assert "refused (quarantined, nothing numbered)" in done.stdout
    with Store(home.store_url) as store:
        assert store.list_outbound(partner_id="medsupply", kind="850") == []
        assert store.next_interchange_number("medsupply") == 1, "no control number was drawn"


def test_a_crash_after_recording_numbers_nothing_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The orders are recorded, then the worker dies before the file leaves the folder: the next run finds
    them by the file's name and digest and sends the same interchange, not a new number."""
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=0)
    folder = home.path / "send" / "medsupply"
    path = _drop(folder, "po.json", _order("PO-CRASH"))
    service = home.service()
    try:
        moved: list[Path] = []

        def crash(source: Path, target: Path) -> Path:
            moved.append(source)
            raise SystemExit("killed between recording and moving")

        monkeypatch.setattr(sendfolder, "move", crash)
        with pytest.raises(SystemExit):
            service.send_orders()
        monkeypatch.undo()
        assert moved and moved[0].name.startswith(".taking."), "the crash point was reached, the file claimed"
        assert not path.exists()  # left as the dead worker's claim; the next start puts it back (no lock held)
    finally:
        service.store.close()
    done = gateway(home, "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PO PO-CRASH, ISA13 000000001 (recorded before a restart, not numbered again)" in done.stdout
    assert [p.name for p in _sent(home.path, "medsupply")] == ["850-000000001.x12"]
    with Store(home.store_url) as store:
        assert len(store.list_outbound(partner_id="medsupply", kind="850")) == 1
        assert store.next_interchange_number("medsupply") == 2


def test_the_daemon_sends_a_dropped_order(catalog: Catalog, tmp_path: Path) -> None:
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=0.2)
    run = Running(home)
    try:
        run.wait_started()
        _drop(home.path / "send" / "medsupply", "po.json", _order("PO-DAEMON"))
        wait_for(lambda: _sent(home.path, "medsupply"), 20, "the 850 in the partner's outbox")
        time.sleep(0.2)
        (sent,) = _sent(home.path, "medsupply")
        assert Validator(catalog).validate(sent.read_bytes()).valid
    finally:
        assert run.stop() == 0, run.stderr()[-2000:]


def test_the_daemon_refuses_bad_files_among_good_ones_and_goes_on(catalog: Catalog, tmp_path: Path) -> None:
    """Files dropped while `gateway run` runs: the good ones go out, a bad JSON and an order the 850 map
    refuses are quarantined naming file and field, and the daemon keeps sending what comes after them."""
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=0.3)
    folder = home.path / "send" / "medsupply"
    bad_line = _order("PO-REFUSED")
    bad_line["lines"] = [{**ORDER["lines"][0], "quantity": "many"}]  # type: ignore[index]
    run = Running(home)
    try:
        run.wait_started(120)  # a loaded machine starts Python slowly
        for n in range(1, 4):
            _drop(folder, f"po-{n}.json", _order(f"PO-LIVE-{n}"))
        folder.joinpath("broken.json").write_text('{"po_number": "PO-X", "lines": [', "utf-8")
        _drop(folder, "refused.json", bad_line)
        _drop(folder, "po-4.json", _order("PO-LIVE-4"))
        quarantine = home.path / "var" / "quarantine" / "send" / "medsupply"
        wait_for(lambda: len(_sent(home.path, "medsupply")) == 4, 60, "the four good orders sent")
        wait_for(lambda: len(list(quarantine.glob("*.reason.txt"))) == 2, 30, "the two bad files quarantined")
        assert run.proc.poll() is None, "the daemon goes on after a bad file"
        _drop(folder, "po-5.json", _order("PO-LIVE-5"))  # after the bad ones: still taken
        wait_for(lambda: len(_sent(home.path, "medsupply")) == 5, 60, "the order dropped after the bad ones")
        reasons = {p.name: p.read_text("utf-8") for p in quarantine.glob("*.reason.txt")}
        assert "send/medsupply/broken.json" in reasons["broken.json.reason.txt"]
        assert "Invalid JSON" in reasons["broken.json.reason.txt"]
        assert "send/medsupply/refused.json: lines.0.quantity" in reasons["refused.json.reason.txt"], reasons
        assert (quarantine / "broken.json").read_text("utf-8") == '{"po_number": "PO-X", "lines": [', "bytes kept"
        pos = []
        for path in _sent(home.path, "medsupply"):
            data = path.read_bytes()
            assert Validator(catalog).validate(data).valid, path
            pos.append(next(s for s in data.decode().split("~") if s.strip().startswith("BEG")).split("*")[3])
        assert sorted(pos) == [f"PO-LIVE-{n}" for n in range(1, 6)]
        assert not list(folder.iterdir()), "nothing left in the send folder"
    finally:
        assert run.stop() == 0, run.stderr()[-2000:]
    assert "refused" in run.stderr() and "broken.json" in run.stderr()


def test_kill_9_while_sending_sends_every_order_exactly_once(catalog: Catalog, tmp_path: Path) -> None:
    """`gateway run` killed (SIGKILL) while it takes a folder of orders, then started again: every order is
    recorded once, numbered once and delivered once; nothing is left in the send folder."""
    # A short lease: what the killed worker held is free again soon after the second one starts.
    home = make_home(tmp_path, f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}", stable_seconds=0, lease_seconds=5)
    folder = home.path / "send" / "medsupply"
    count = 24

    def every_delivery_recorded() -> bool:
        with Store(home.store_url) as store:
            rows = store.list_outbound(partner_id="medsupply", kind="850", limit=1000)
            statuses = [d.status for r in rows for d in store.list_deliveries(outbound_id=r.id)]
        return len(rows) == count and len(statuses) == count and set(statuses) == {"delivered"}

    for n in range(count):
        _drop(folder, f"po-{n:02d}.json", _order(f"PO-K9-{n:02d}"))
    first = Running(home)
    processed = home.path / "var" / "processed" / "send"
    try:
        wait_for(lambda: processed.is_dir() and any(processed.rglob("*.json")), 120, "a first file taken")
    finally:
        first.kill()
    left = len(list(folder.iterdir()))
    second = Running(home)
    try:
        second.wait_started(120)
        # Deliveries the killed worker recorded but never tried (or made and never recorded: their file is in
        # the outbox already) stay leased to it until the lease runs out; the ledger says when all are done.
        wait_for(every_delivery_recorded, 150, "every order's delivery recorded as delivered", interval=0.5)
    finally:
        assert second.stop() == 0, second.stderr()[-2000:]
    assert left > 0, "killed while files were still being taken (the test's premise)"
    assert not list(folder.iterdir()), "no file or claim left behind"
    with Store(home.store_url) as store:
        rows = store.list_outbound(partner_id="medsupply", kind="850", limit=1000)
        numbers = [r.control_number for r in rows]
        assert len(rows) == count and len(set(numbers)) == count, numbers
        assert {d.status for r in rows for d in store.list_deliveries(outbound_id=r.id)} == {"delivered"}
        assert all(len(store.list_deliveries(outbound_id=r.id)) == 1 for r in rows)
    sent = _sent(home.path, "medsupply")
    assert len(sent) == count
    pos = sorted(next(s for s in p.read_text().split("~") if s.strip().startswith("BEG")).split("*")[3] for p in sent)
    assert pos == [f"PO-K9-{n:02d}" for n in range(count)]
    for path in sent[:3]:
        assert Validator(catalog).validate(path.read_bytes()).valid
