"""Matching 997/999/TA1 to what we sent (pure): group-level acks, partial acceptance, late, unmatched and
duplicate acks, TA1s, codes in words; reading back what we sent; renumbering a resend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import interchange

from gateway.partners.profile import AckTracking
from gateway.runtime.acks import code_words
from gateway.x12.ack.match import CodeWords, Owed, ack_from_dict, reconcile
from gateway.x12.ack.read import FunctionalAck, SetAck, TA1Ack, ack_dict, read_acks
from gateway.x12.ack.sent import sent_sets
from gateway.x12.renumber import renumber
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


def owed(*sets: str, group: str = "41", status: str = "waiting", due: datetime | None = None) -> list[Owed]:
    return [Owed(n, 7, "000000041", "PO", group, "850", st, status, due) for n, st in enumerate(sets, 1)]


def fa(
    code: str, *sets: SetAck, group: str = "41", kind: str = "997", errors: list[str] | None = None
) -> FunctionalAck:
    return FunctionalAck(kind, "000000900", "0001", "PO", group, "004010", code, error_codes=errors or [],
                         sets=list(sets))  # fmt: skip


def test_an_ak1_ak9_ack_without_ak2_answers_every_set_of_the_group() -> None:
    rec = reconcile(fa("A"), owed("0001", "0002"), T0)
    assert rec.outcome == "matched"
    assert [(s.key, s.status, s.group_status) for s in rec.sets] == [
        (1, "accepted", "accepted"),
        (2, "accepted", "accepted"),
    ]
    rejected = reconcile(fa("R", errors=["5"]), owed("0001", "0002"), T0, None)
    assert {s.status for s in rejected.sets} == {"rejected"} and rejected.group_errors == ["AK905 5"]


def test_a_partially_accepted_group_gives_each_set_its_own_verdict_with_codes_in_words(catalog: Catalog) -> None:
    bad = SetAck("850", "0002", "R", ["5"])
    ack = read_back(fa("P", SetAck("850", "0001", "A"), bad))
    words = code_words(catalog)
    rec = reconcile(ack, owed("0001", "0002", "0003"), T0, words)
    by_key = {s.key: s for s in rec.sets}
    assert by_key[1].status == "accepted" and by_key[2].status == "rejected"
    assert by_key[2].errors == ("AK502 5: One or More Segments in Error",)
    assert by_key[3].status == "accepted"  # not listed: the partial group's other sets are not in error
    assert {s.group_status for s in rec.sets} == {"partially_accepted"}
    assert rec.rejected == [by_key[2]]


def test_segment_and_element_errors_of_a_999_in_words(catalog: Catalog) -> None:
    data = interchange(
        [["AK1*PO*41*005010X220A1", "AK2*850*0001", "IK3*N1*5*N1*8", "IK4*2*98*7*XX", "IK5*R*5", "AK9*R*1*1*0"]],
        functional_id="FA", set_ids=["999"], version="005010",
    )  # fmt: skip
    (ack,) = read_acks(data)
    assert isinstance(ack, FunctionalAck)
    rec = reconcile(ack, owed("0001"), T0, code_words(catalog))
    assert rec.sets[0].errors[:2] == (
        "IK502 5: One or More Segments in Error",
        "segment N1 at position 5 (loop N1): IK304 8: Segment Has Data Element Errors",
    )
    assert "element 2 (element 98): IK403 7: Invalid Code Value, value 'XX'" in rec.sets[0].errors[2]


def test_a_late_answer_reconciles_and_is_marked_late() -> None:
    rec = reconcile(fa("A"), owed("0001", due=T0 - timedelta(hours=1)), T0)
    assert rec.sets[0].status == "accepted" and rec.sets[0].late
    on_time = reconcile(fa("A"), owed("0001", due=T0 + timedelta(hours=1)), T0)
    assert not on_time.sets[0].late


def test_unmatched_groups_and_sets_are_reported() -> None:
    nothing = reconcile(fa("A", group="99"), owed("0001"), T0)
    assert nothing.outcome == "unmatched" and "we sent no such group" in nothing.unmatched[0]
    partly = reconcile(fa("A", SetAck("850", "0001", "A"), SetAck("850", "0009", "A")), owed("0001"), T0)
    assert partly.outcome == "partly_matched" and "set 850 0009" in partly.unmatched[0]


def test_a_second_ack_for_an_answered_set_is_a_duplicate_and_not_applied() -> None:
    rec = reconcile(fa("R"), owed("0001", status="accepted"), T0)
    assert rec.outcome == "duplicate" and rec.sets[0].duplicate and not rec.applied


def test_ta1_matches_by_isa13() -> None:
    rejected = reconcile(TA1Ack("", "000000041", "261206", "1200", "R", "025"), owed("0001", "0002"), T0,
                         CodeWords({"I18": {"025": "Duplicate Interchange Control Number"}}))  # fmt: skip
    assert {s.status for s in rejected.sets} == {"rejected"}
    assert rejected.sets[0].errors == ("TA1 R, note 025: Duplicate Interchange Control Number",)
    accepted = reconcile(TA1Ack("", "000000041", "", "", "A", "000"), owed("0001"), T0)
    assert accepted.outcome == "matched" and accepted.sets[0].status == "waiting"
    assert reconcile(TA1Ack("", "000000077", "", "", "A", "000"), owed("0001"), T0).outcome == "unmatched"


def test_an_ack_survives_the_ledger_round_trip() -> None:
    data = interchange([["AK1*PO*41", "AK2*850*0001", "AK3*N1*5**3", "AK4*2>1*98*7*XX", "AK5*R*5", "AK9*R*1*1*0"]],
                       functional_id="FA", set_ids=["997"])  # fmt: skip
    (ack,) = read_acks(data)
    assert ack_from_dict(ack_dict(ack)) == ack
    (ta1,) = read_acks(interchange([], functional_id="FA").replace(b"GS*", b"TA1*000000041*261206*1200*A*000~\nGS*", 1))
    assert ack_from_dict(ack_dict(ta1)) == ta1


def test_what_we_sent_is_read_back_and_a_resend_is_renumbered_and_valid(catalog: Catalog) -> None:
    data = interchange([["BEG*00*SA*PO1**20261123", "PO1*1*1*EA*1**VN*X", "CTT*1"]] * 2)
    (first, second) = sent_sets(data)
    assert (first.interchange, first.functional_id, first.group_control, first.set_id, first.set_control) == (
        "000000905", "PO", "77", "850", "0001",
    )  # fmt: skip
    assert second.set_control == "0002"
    again = renumber(data, 1234, datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    assert len(again.split(b"~")[0]) == 105  # the ISA stays fixed width
    sets = sent_sets(again)
    assert {(s.interchange, s.group_control) for s in sets} == {("000001234", "1234")}
    assert [s.set_control for s in sets] == ["0001", "0002"]
    assert b"*261207*0930*" in again and b"GE*2*1234" in again and b"IEA*1*000001234" in again
    assert Validator(catalog).validate(again).valid


def test_a_partner_chooses_what_it_acknowledges_and_how_soon() -> None:
    default = AckTracking()
    assert default.expects("850", "PO") and not default.expects("997", "FA")
    assert default.deadline_seconds("850", "PO") == 24 * 3600
    chosen = AckTracking(expect=["PO"], deadlines={"PO": 4, "810": 2})
    assert chosen.expects("850", "PO") and not chosen.expects("810", "IN")
    assert chosen.deadline_seconds("850", "PO") == 4 * 3600 and chosen.deadline_seconds("810", "IN") == 2 * 3600
    assert not AckTracking(expect=[]).expects("850", "PO")


def read_back(ack: FunctionalAck) -> FunctionalAck:
    parsed = ack_from_dict(ack_dict(ack))
    assert isinstance(parsed, FunctionalAck)
    return parsed
