"""A rejected interchange claims no ISA13: the partner's corrected resend with it is processed.

X12 practice: an interchange we reject (a TA1 ``R`` for a bad envelope, or every group rejected) was
not accepted, so the partner may send it again, fixed, under the same control number. An interchange
accepted, even in part, keeps its claim: sending it again is a duplicate (a TA1 R with note 025).
Through ``gateway run --once`` as a process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from ackcheck import check_ack
from runtimekit import (  # noqa: F401 (pytest fixtures)
    PARTNERS,
    Home,
    case,
    gateway,
    make_home,
    pg_admin_fixture,
    pg_url_fixture,
    store_url_fixture,
    x12,
)

from gateway.store import Store
from gateway.x12.ack.read import FunctionalAck, TA1Ack

INVOICE = case("medsupply", "810-invoice.edi")  # ISA13 000000413, one 810
TEMPLATE = PARTNERS / "medsupply" / "cases" / "810-invoice.edi"


def run_file(home: Home, name: str, data: bytes) -> tuple[str, list[FunctionalAck | TA1Ack]]:
    """Drop one file for medsupply, ``gateway run --once``; its final status and the acks it got."""
    before = set((home.outbox / "medsupply").glob("*.x12"))
    home.drop(name, data, "medsupply")
    done = gateway(home, "run", "--once")
    assert done.returncode in (0, 1), done.stderr
    with Store(home.store_url) as store:
        (row,) = [f for f in store.list_files(limit=100) if f.name == name]
    acks: list[FunctionalAck | TA1Ack] = []
    for path in sorted(set((home.outbox / "medsupply").glob("*.x12")) - before):
        acks.extend(check_ack(path.read_bytes()))
    return row.status, acks


def codes(acks: list[FunctionalAck | TA1Ack]) -> list[tuple[str, str]]:
    """``(997|999|TA1, code)`` per ack; a TA1's note code is appended to its code (``R025``: a duplicate)."""
    return [("TA1", a.code + a.note_code) if isinstance(a, TA1Ack) else (a.kind, a.code) for a in acks]


def test_a_rejected_interchange_leaves_its_isa13_to_the_corrected_resend(store_url: str, tmp_path) -> None:
    home = make_home(tmp_path, store_url)
    # A bad envelope (IEA01 counts 2 groups): TA1 R, nothing claimed.
    bad_envelope = INVOICE.replace(b"IEA*1*000000413", b"IEA*2*000000413")
    status, acks = run_file(home, "bad-envelope.edi", bad_envelope)
    assert status == "failed" and codes(acks) == [("TA1", "R021")]
    status, acks = run_file(home, "resent.edi", INVOICE)  # fixed, same ISA13
    assert status == "processed" and codes(acks) == [("997", "A")]
    assert sorted(p.name for p in (home.outbox / "canonical" / "medsupply").glob("*.json")) == [
        f"invoice-{_id(home, 'resent.edi')}-1.json"
    ]
    # Every group rejected (the set's date is impossible): 997 R, nothing claimed either.
    status, acks = run_file(home, "all-rejected.edi", x12(TEMPLATE, 500, tag="r", bad=frozenset({1})))
    assert status == "failed" and codes(acks) == [("997", "R")]
    status, acks = run_file(home, "all-resent.edi", x12(TEMPLATE, 500, tag="r"))
    assert status == "processed" and codes(acks) == [("997", "A")]
    with Store(home.store_url) as store:
        (ic,) = store.file_tree(_id(home, "all-resent.edi")).interchanges
        assert ic.row.status == "accepted"
    # Still a duplicate once accepted: the corrected resend claimed the ISA13.
    status, acks = run_file(home, "again.edi", INVOICE.replace(b"INV-0042377", b"INV-0042388"))
    assert status == "duplicate" and codes(acks) == [("TA1", "R025")]


def test_a_partially_accepted_interchange_keeps_its_claim(store_url: str, tmp_path) -> None:
    home = make_home(tmp_path, store_url)
    status, acks = run_file(home, "partial.edi", x12(TEMPLATE, 600, sets=3, tag="p", bad=frozenset({2})))
    assert status == "partial" and codes(acks) == [("997", "P")]
    status, acks = run_file(home, "partial-resent.edi", x12(TEMPLATE, 600, sets=3, tag="p"))
    assert status == "duplicate" and codes(acks) == [("TA1", "R025")]
    with Store(home.store_url) as store:
        (ic,) = store.file_tree(_id(home, "partial-resent.edi")).interchanges
        assert ic.row.status == "duplicate" and "ISA13 000000600 already received" in (ic.row.reason or "")


def _id(home: Home, name: str) -> int:
    with Store(home.store_url) as store:
        (row,) = [f for f in store.list_files(limit=100) if f.name == name]
    return row.id
