"""997/999/TA1 built from reports, checked by reading them back and by validating them."""

from __future__ import annotations

from datetime import datetime

from conftest import ISA_4010, ISA_5010, PO_850, control_sequence, interchange

from gateway.x12.ack.build import TA1Policy, build_acks
from gateway.x12.ack.read import FunctionalAck, TA1Ack, read_acks
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator

WHEN = datetime(2026, 11, 23, 14, 5)


def ack_for(catalog: Catalog, data: bytes, **kw: object) -> bytes | None:
    report = Validator(catalog).validate(data)
    return build_acks(report.interchanges[0], control_sequence(41, 7, 1), WHEN, **kw)  # type: ignore[arg-type]


def test_997_for_4010_group(catalog: Catalog) -> None:
    bad = ["BEG*00*SA**20261123", *PO_850[1:]]
    out = ack_for(catalog, interchange([PO_850, bad]))
    assert out is not None
    text = out.decode()
    assert text.startswith(
        "ISA*00*          *00*          *ZZ*RECEIVER       *ZZ*SENDER         *261123*1405*U*00401*000000042*0*P*>~"
    )
    assert "GS*FA*RECEIVER*SENDER*20261123*1405*8*X*004010~" in text
    assert "AK1*PO*77~" in text
    assert "AK2*850*0001~\nAK5*A~" in text
    assert "AK3*BEG*2**8~\nAK4*3*324*1~\nAK4*5*373*1~\nAK5*R*5~" in text
    assert "AK9*P*2*2*1~" in text
    # the ack is itself a valid 997
    assert Validator(catalog).validate(out).valid
    (fa,) = list(read_acks(out))
    assert isinstance(fa, FunctionalAck)
    assert (fa.kind, fa.functional_id, fa.group_control, fa.code) == ("997", "PO", "77", "P")
    assert [s.code for s in fa.sets] == ["A", "R"]
    assert fa.sets[1].segments[0].segment_id == "BEG"
    assert fa.sets[1].segments[0].elements[0].element_ref == "324"
    assert (fa.received, fa.accepted_count) == (2, 1)


def test_999_for_5010_group_with_ta1_requested(catalog: Catalog) -> None:
    data = interchange([PO_850], isa=ISA_5010, version="005010X999")
    out = ack_for(catalog, data)
    assert out is not None
    text = out.decode()
    assert "*00501*" in text and "*T*:~" in text
    assert "TA1*000000905*261123*1200*A*000~" in text  # ISA14=1 asks for it; right after the ISA
    assert text.index("TA1") < text.index("GS*FA")
    assert "GS*FA*RECEIVER*SENDER*20261123*1405*8*X*005010X231A1~" in text
    assert "ST*999*0002*005010X231A1~" in text and "AK1*PO*77*005010X999~" in text
    assert Validator(catalog).validate(out).valid
    acks = list(read_acks(out))
    assert isinstance(acks[0], TA1Ack) and acks[0].accepted
    assert isinstance(acks[1], FunctionalAck) and acks[1].kind == "999" and acks[1].code == "A"


def test_envelope_error_gets_ta1_reject_only(catalog: Catalog) -> None:
    data = interchange([PO_850]).replace(b"IEA*1*000000905", b"IEA*1*000000999")
    out = ack_for(catalog, data)
    assert out is not None
    (ta1,) = list(read_acks(out))
    assert isinstance(ta1, TA1Ack)
    assert (ta1.code, ta1.note_code, ta1.control_number) == ("R", "001", "000000905")
    assert b"GS*FA" not in out


def test_no_ta1_when_not_asked(catalog: Catalog) -> None:
    out = ack_for(catalog, interchange([PO_850], isa=ISA_4010))
    assert out is not None and b"TA1" not in out
    never = ack_for(catalog, interchange([PO_850], isa=ISA_5010, version="005010"), ta1=TA1Policy.NEVER)
    assert never is not None and b"TA1" not in never


def test_set_level_errors_reach_ak5(catalog: Catalog) -> None:
    data = interchange([PO_850]).replace(b"SE*9*0001", b"SE*8*0001")
    out = ack_for(catalog, data)
    assert out is not None and b"AK5*R*4~" in out


def test_group_errors_reach_ak9(catalog: Catalog) -> None:
    data = interchange([PO_850]).replace(b"GE*1*77", b"GE*3*77")
    out = ack_for(catalog, data)
    assert out is not None and b"AK9*R*3*1*1*5~" in out
