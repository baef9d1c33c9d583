"""``gateway run`` on interchanges whose acknowledgment used to fail in our own writer (issue 9).

A letter, digit or space declared as an ISA delimiter failed the whole file with no interchange row
and no TA1: now the interchange is recorded as rejected (X12-R004/R003/R005) and answered with a TA1
rejecting it, written with our default delimiters. An interchange no valid TA1 can name (ISA10 that
is no time) is recorded with the reason why none was sent (X12-A002).
"""

from __future__ import annotations

from pathlib import Path

from runtimekit import case, gateway, make_home

from gateway.resources import load_catalog
from gateway.x12.ack.read import TA1Ack, read_acks
from gateway.x12.validate.validator import Validator


def test_unusable_delimiters_get_a_ta1_through_run(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    invoice = case("medsupply", "810-invoice.edi")
    home.drop("letter.edi", invoice.replace(b"*", b"Q"), "medsupply")
    no_time = invoice.replace(b"*0930*U", b"*09\n0*U", 1).replace(b"000000413", b"000000414")
    home.drop("no-time.edi", no_time, "medsupply")
    result = gateway(home, "run", "--once")
    assert "Traceback" not in result.stderr, result.stderr

    store = home.store()
    try:
        files = {f.name: f for f in store.list_files()}
        letter = store.file_tree(files["letter.edi"].id)
        (ic,) = letter.interchanges
        assert ic.row.status == "rejected" and "X12-R004" in (ic.row.reason or "")
        (sent,) = store.list_outbound(file_id=files["letter.edi"].id)
        assert sent.kind == "TA1"
        unanswered = store.file_tree(files["no-time.edi"].id)
        (ic2,) = unanswered.interchanges  # recorded, not lost in a failed ack
        assert ic2.row.status == "rejected" and "X12-A002" in (ic2.row.reason or "")
        assert "ISA10" in (ic2.row.reason or "")
        assert store.list_outbound(file_id=files["no-time.edi"].id) == []
    finally:
        store.close()

    (ta1_file,) = sorted((home.outbox / "medsupply").glob("TA1-*.x12"))
    data = ta1_file.read_bytes()
    (ta1,) = list(read_acks(data))
    assert isinstance(ta1, TA1Ack)
    assert (ta1.control_number, ta1.code, ta1.note_code) == ("000000413", "R", "026")
    assert Validator(load_catalog()).validate(data).valid
