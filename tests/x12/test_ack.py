"""997/999/TA1 built from reports, checked by reading them back and by validating them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ISA_4010, ISA_5010, PO_850, _ack_problems, control_sequence, interchange

from gateway.cli.main import main
from gateway.errors import DocumentError
from gateway.x12.ack.build import VALID_CODES, TA1Policy, ack_code, build_acks
from gateway.x12.ack.read import FunctionalAck, TA1Ack, read_acks
from gateway.x12.findings import RULES, Level
from gateway.x12.isa import FIELD_TA1
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


@pytest.mark.parametrize(
    ("old", "new", "code", "note"),
    [
        (b"*", b"Q", "X12-R004", "026"),  # a letter as data element separator
        (b"*", b"7", "X12-R004", "026"),  # a digit
        (b"*", b" ", "X12-R004", "026"),  # a space
        (b"~", b"Q", "X12-R003", "004"),  # a letter as segment terminator
        (b"*>~", b"*U~", "X12-R005", "027"),  # a letter as component separator
        (b"*>~", b"* ~", "X12-R005", "027"),  # a space as component separator
    ],
    ids=[
        "element-letter",
        "element-digit",
        "element-space",
        "terminator-letter",
        "component-letter",
        "component-space",
    ],
)
def test_unusable_delimiter_gets_a_ta1_rejecting_it(
    catalog: Catalog, old: bytes, new: bytes, code: str, note: str
) -> None:
    """A letter, digit or space declared as a delimiter: the interchange is rejected, and the TA1 saying
    so is written with our own delimiters (it used to fail in the writer: no ack at all)."""
    data = interchange([PO_850]).replace(old, new)
    (ic,) = Validator(catalog).validate(data).interchanges
    assert code in {f.code for f in ic.findings if f.is_error} and not ic.accepted
    out = build_acks(ic, control_sequence(41, 7, 1), WHEN)
    assert out is not None
    (ta1,) = list(read_acks(out))
    assert isinstance(ta1, TA1Ack)
    assert (ta1.code, ta1.note_code, ta1.control_number) == ("R", note, "000000905")
    assert out.startswith(b"ISA*00*") and b"TA1*000000905*261123*1200*R*" in out
    assert Validator(catalog).validate(out).valid


def test_ta1_that_cannot_echo_the_isa_says_why(catalog: Catalog) -> None:
    """An ISA10 that is no time (here a line break inside it) cannot be echoed in TA103: no TA1 is
    written (it would be invalid) and the error names the field."""
    isa = ISA_5010.replace("*1200*", "*12\n0*")  # lenient read: ISA10 is '12\n0'
    data = interchange([PO_850], isa=isa, version="005010")
    (ic,) = Validator(catalog).validate(data).interchanges
    with pytest.raises(DocumentError) as caught:
        build_acks(ic, control_sequence(41, 7, 1), WHEN)
    assert caught.value.code == "X12-A002" and caught.value.location.element == 10
    assert "ISA10" in str(caught.value)


# --- codes valid for the acknowledgment's version ---------------------------------------------------

#: 997 position → (segment, element position) and the element holding it in each version.
POSITIONS = {"AK304": ("AK3", 4), "AK403": ("AK4", 3), "AK502": ("AK5", 2), "AK905": ("AK9", 5)}
IK = {"AK304": ("IK3", 4), "AK403": ("IK4", 3), "AK502": ("IK5", 2), "AK905": ("AK9", 5)}
LEVEL_POSITION = {Level.SEGMENT: "AK304", Level.ELEMENT: "AK403", Level.SET: "AK502", Level.GROUP: "AK905"}


def code_list(catalog: Catalog, version: str, segment: str, position: int) -> frozenset[str]:
    spec = catalog.segment(version, segment)
    assert spec is not None, f"{version} has no {segment}"
    codes = spec.elements[position - 1].codes
    assert codes, f"{version} {segment}{position:02d} has no code list"
    return codes


def test_builder_code_tables_match_the_definitions(catalog: Catalog) -> None:
    """The builder's lists of valid codes are the code lists of gateway/x12/definitions."""
    for where, (seg, pos) in POSITIONS.items():
        assert code_list(catalog, "004010", seg, pos) == VALID_CODES[where], where
        ik_seg, ik_pos = IK[where]
        key = "999/AK905" if where == "AK905" else ik_seg + f"{ik_pos:02d}"
        assert code_list(catalog, "005010", ik_seg, ik_pos) == VALID_CODES[key], key
    for version in ("004010", "005010"):
        assert code_list(catalog, version, "TA1", 5) == VALID_CODES["TA105"]


def test_every_code_the_builder_can_write_is_valid_for_its_version(catalog: Catalog) -> None:
    """Each finding rule's code (and each ISA field's TA1 note), through the builder's mapping, is in the
    code list of the 997 (004010) or 999 (005010) that carries it."""
    for name, rule in RULES.items():
        if rule.level is Level.INTERCHANGE:
            notes = [rule.ack] if rule.ack else list(FIELD_TA1.values())
            for note in notes:
                assert ack_code("TA1", "TA105", note) in code_list(catalog, "004010", "TA1", 5), name
            continue
        where = LEVEL_POSITION[rule.level]
        for kind, version, (seg, pos) in (("997", "004010", POSITIONS[where]), ("999", "005010", IK[where])):
            raw = rule.ack999 if kind == "999" and rule.ack999 else rule.ack
            if raw is None:
                continue  # warnings only (e.g. X12-V214): never acknowledged
            written = ack_code(kind, where, raw)
            assert written in code_list(catalog, version, seg, pos), f"{name}: {kind} {where}={written}"


def test_005010_only_codes_become_the_nearest_004010_code(catalog: Catalog) -> None:
    """A duplicate GS06 is AK905=19 in a 999 but 6 in a 997; a set in the wrong group AK502=18 / 6."""
    assert (ack_code("997", "AK905", "19"), ack_code("999", "AK905", "19")) == ("6", "19")
    assert (ack_code("997", "AK502", "18"), ack_code("999", "AK502", "18")) == ("6", "18")
    assert ack_code("997", "AK403", "12") == "3" and ack_code("999", "AK403", "12") == "12"
    # a 004010 interchange with two groups numbered 77, each with an 855 in a PO group
    twice = interchange([PO_850, PO_850], set_ids=["850", "855"]).decode()
    head, _, rest = twice.partition("GS*")
    body, _, _ = rest.partition("IEA*")
    text = f"{head}GS*{body}GS*{body}IEA*2*000000905~\n"
    out = ack_for(catalog, text.encode())
    assert out is not None
    ack = out.decode()
    assert "AK5*R*6*5~" in ack and "*18" not in ack  # 855 in a PO group: 18 in 005010, 6 in 004010
    assert "AK9*R*2*2*1*6~" in ack and "*19~" not in ack  # the repeated GS06 77
    assert Validator(catalog).validate(out).valid


def test_all_corpus_files_get_valid_acks(corpus: Path, catalog: Catalog) -> None:
    """Every file of the shared corpus (bad/ included) through ``gateway ack``'s path: each ack it
    produces (997, 999, TA1; every TA1 policy) validates; a file that gets none says why."""
    validator = Validator(catalog)
    files = sorted(p for p in (corpus / "x12").rglob("*") if p.is_file())
    assert len(files) > 100
    invalid: list[str] = []
    produced = 0
    for path in files:
        report = Validator(catalog).validate(path.read_bytes())
        for ic in report.interchanges:
            for policy in TA1Policy:
                try:
                    out = build_acks(ic, control_sequence(), WHEN, ta1=policy)
                except DocumentError as exc:
                    assert exc.code == "X12-A002", f"{path.name}: {exc}"  # an ISA13, ISA09 or ISA10 no TA1 can echo
                    continue
                if out is None:
                    continue
                produced += 1
                checked = validator.validate(out)
                if not checked.valid:
                    errors = [str(f) for ic2 in checked.interchanges for f in ic2.findings if f.is_error]
                    errors += [str(f) for ic2 in checked.interchanges for s in ic2.sets() for f in s.findings]
                    invalid.append(f"{path.relative_to(corpus)} ({policy}): {errors[:3]}")
    assert produced > 300
    assert not invalid, "\n".join(invalid)


def test_the_session_collects_every_ack_built(catalog: Catalog, every_ack_validates: dict[bytes, str]) -> None:
    """tests/conftest.py's session check sees acks built anywhere (here through build_acks directly)."""
    out = ack_for(catalog, interchange([PO_850], isa=ISA_5010, version="005010"))
    assert out is not None and "test_ack.py::test_the_session_collects_every_ack_built" in every_ack_validates[out]


def test_the_session_check_names_an_invalid_ack(catalog: Catalog) -> None:
    """What the session check reports for an ack our validator rejects (the 997 with AK905=19 it used to write)."""
    good = ack_for(catalog, interchange([PO_850]).replace(b"GE*1*77", b"GE*3*77"))
    assert good is not None and b"AK9*R*3*1*1*5~" in good
    assert _ack_problems(catalog, {good: "fine"}) == []
    problems = _ack_problems(catalog, {good.replace(b"AK9*R*3*1*1*5~", b"AK9*R*3*1*1*19~"): "some test"})
    assert len(problems) == 1 and problems[0].startswith("some test: ") and "X12-V207" in problems[0]


def test_ack_command_numbers_apart_from_real_acks(catalog: Catalog) -> None:
    """``gateway ack`` is a preview: ISA13 000000000 and GS06 0, numbers no partner sequence hands out."""
    # A partner's file: `gateway ack` prints what run would send, and run acknowledges only partners.
    sample = Path(__file__).resolve().parents[2] / "partners" / "medsupply" / "cases" / "810-invoice.edi"
    result = CliRunner().invoke(main, ["ack", str(sample)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out[90:99] == "000000000"
    assert "\nGS*FA*MERCYHOSP*MEDSUPPLY*" in out and "*0*X*004010~" in out and "IEA*1*000000000~" in out
    assert Validator(catalog).validate(out.encode()).valid
    numbered = CliRunner().invoke(main, ["ack", "--start-control", "12", str(sample)]).stdout
    assert numbered[90:99] == "000000012" and "*12*X*004010~" in numbered


def test_ack_command_numbers_groups_apart(catalog: Catalog, tmp_path: Path) -> None:
    """Two FA groups in one acknowledgment interchange get distinct GS06s (0 and 1)."""
    po = interchange([PO_850]).decode()
    invoice = interchange([["BIG*20261123*INV-1**4500012345", "TDS*100"]], functional_id="IN").decode()
    head, _, rest = po.partition("GS*")
    first, _, _ = rest.partition("IEA*")
    second = invoice.partition("GS*")[2].partition("IEA*")[0].replace("*77*", "*78*").replace("GE*1*77", "GE*1*78")
    second = second.replace("IN*SENDER*", "IN*BILLING*")  # another GS02: its own FA group
    path = tmp_path / "two-groups.edi"
    text = f"{head}GS*{first}GS*{second}IEA*2*000000905~\n"
    # from medsupply (a known partner: run, and so ack, answers partners only)
    text = text.replace("*ZZ*SENDER         *", "*ZZ*MEDSUPPLY      *").replace("*SENDER*", "*MEDSUPPLY*")
    path.write_text(text)
    result = CliRunner().invoke(main, ["ack", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("GS*FA*") == 2 and "*0*X*004010~" in result.stdout and "*1*X*004010~" in result.stdout
    assert Validator(catalog).validate(result.stdout.encode()).valid
