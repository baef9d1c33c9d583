"""SNIP 1-2 validation against the packaged definitions: codes, locations, siblings unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ISA_5010, PO_850, interchange

from gateway.cli.main import main
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.report import FileReport, Outcome
from gateway.x12.validate.validator import Validator


def run(catalog: Catalog, data: bytes, **kw: object) -> FileReport:
    return Validator(catalog, **kw).validate(data)  # type: ignore[arg-type]


def set_codes(report: FileReport, n: int = 0) -> list[str]:
    return [f.code for f in report.sets()[n].findings]


def test_valid_850_is_accepted(catalog: Catalog) -> None:
    report = run(catalog, interchange([PO_850]))
    assert report.valid
    assert report.sets()[0].outcome is Outcome.ACCEPTED
    assert report.sets()[0].definition == "004010/850"


def test_element_errors_are_located(catalog: Catalog) -> None:
    body = ["BEG*00*SA**X*20261332", *PO_850[1:]]
    report = run(catalog, interchange([body]))
    found = {f.code: f for f in report.sets()[0].findings}
    assert set(found) >= {"X12-V201", "X12-V208"}
    missing = found["X12-V201"]
    assert (missing.location.segment_id, missing.location.segment_index, missing.location.element) == ("BEG", 2, 3)
    assert missing.element_ref == "324"
    bad_date = found["X12-V208"]
    assert bad_date.value == "20261332" and bad_date.location.element == 5
    assert bad_date.location.byte_offset == interchange([body]).index(b"BEG*")


@pytest.mark.parametrize(
    ("segment", "code", "element"),
    [
        ("REF*DP*" + "X" * 31, "X12-V205", 2),  # REF02 is AN 1/30 in 004010
        ("PO1*1*ten*BX*1**VN*A", "X12-V206", 2),  # quantity not numeric
        ("DTM*002*20261123*2599", "X12-V209", 3),  # bad time
        ("PO1*1*1*BX*1**VN", "X12-V202", 7),  # P0607: qualifier without id
        ("REF*DP", "X12-V202", 2),  # R0203: REF02 or REF03 required
    ],
)
def test_element_rules(catalog: Catalog, segment: str, code: str, element: int) -> None:
    body = (
        [*PO_850[:-1], segment, PO_850[-1]]
        if not segment.startswith(("REF", "DTM"))
        else [PO_850[0], segment, *PO_850[1:]]
    )
    report = run(catalog, interchange([body]))
    hits = [f for f in report.sets()[0].findings if f.code == code]
    assert hits, [str(f) for f in report.sets()[0].findings]
    assert hits[0].location.element == element


def test_code_list_is_enforced(catalog: Catalog) -> None:
    report = run(catalog, interchange([PO_850]).replace(b"*0*P*>", b"*0*P*>"))
    assert report.valid
    bad = run(catalog, interchange([PO_850], isa=ISA_5010.replace("*1*T*", "*7*T*"), version="005010"))
    assert any(f.code == "X12-I005" for ic in bad.interchanges for f in ic.findings)


def test_structure_errors(catalog: Catalog) -> None:
    body = ["REF*DP*ICU", "BEG*00*SA*4500012345**20261123", "ZZZ*1", "N9*ZZ*X", *PO_850[3:]]
    codes = set_codes(run(catalog, interchange([body])))
    assert "X12-V107" in codes or "X12-V103" in codes  # BEG after REF
    assert "X12-V101" in codes  # ZZZ unknown


def test_segment_from_another_set_is_reported(catalog: Catalog) -> None:
    body = [*PO_850[:3], "BSN*00*X*20261123*1200", *PO_850[3:]]
    assert "X12-V106" in set_codes(run(catalog, interchange([body])))


def test_missing_mandatory_segment_names_it(catalog: Catalog) -> None:
    report = run(catalog, interchange([PO_850[1:]]))
    missing = [f for f in report.sets()[0].findings if f.code == "X12-V103"]
    assert missing and missing[0].location.segment_id == "BEG"


def test_max_use_exceeded(catalog: Catalog) -> None:
    body = [PO_850[0], PO_850[0], *PO_850[1:]]
    assert "X12-V105" in set_codes(run(catalog, interchange([body])))


def test_one_bad_set_does_not_sink_its_siblings(catalog: Catalog) -> None:
    bad = ["BEG*00*SA**20261123", *PO_850[1:]]
    report = run(catalog, interchange([PO_850, bad, PO_850]))
    outcomes = [s.outcome for s in report.sets()]
    assert outcomes == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.ACCEPTED]
    assert report.interchanges[0].groups[0].outcome is Outcome.PARTIAL


def test_hl_hierarchy(catalog: Catalog) -> None:
    good = [
        "BSN*00*SHP1*20261123*1200",
        "HL*1**S",
        "TD5**2*FDEG",
        "HL*2*1*O",
        "PRF*4500012345",
        "HL*3*2*P",
        "MAN*GM*0001",
        "HL*4*3*I",
        "LIN*1*VN*A",
        "SN1**1*EA",
        "CTT*4",
    ]
    assert run(catalog, interchange([good], functional_id="SH")).valid
    broken = [s.replace("HL*4*3*I", "HL*4*9*I").replace("HL*2*1*O", "HL*2*1*Q") for s in good]
    findings = list(run(catalog, interchange([broken], functional_id="SH")).sets()[0].findings)
    messages = [f.message for f in findings if f.code == "X12-V108"]
    assert any("HL02 parent '9'" in m for m in messages)
    assert any("level 'Q'" in m for m in messages)


def test_unsupported_set_and_version(catalog: Catalog) -> None:
    report = run(catalog, interchange([["W05*N*1"]], functional_id="PO", set_ids=["940"]))
    assert set_codes(report) == ["X12-S004"]
    old = run(catalog, interchange([PO_850], version="003040"))
    assert "X12-G004" in [f.code for f in old.interchanges[0].groups[0].findings]


def test_wrong_functional_group(catalog: Catalog) -> None:
    report = run(catalog, interchange([PO_850], functional_id="PO").replace(b"GS*PO", b"GS*IN"))
    assert "X12-S007" in set_codes(report)


def test_error_cap(catalog: Catalog) -> None:
    body = [PO_850[0], *["ZZZ*1"] * 50, *PO_850[1:]]
    report = run(catalog, interchange([body]), max_errors=10)
    assert len([f for f in report.sets()[0].findings if f.is_error]) == 10
    assert report.sets()[0].truncated


def test_5010_with_repetition_separator(catalog: Catalog) -> None:
    data = interchange([PO_850], isa=ISA_5010, version="005010")
    report = run(catalog, data)
    assert report.valid, [str(f) for s in report.sets() for f in s.findings]
    assert report.interchanges[0].header.delimiters.repetition == "^"


def test_lenient_isa_policy(catalog: Catalog) -> None:
    from conftest import ISA_4010

    data = interchange([PO_850], isa=ISA_4010.replace("SENDER         ", "SENDER"))
    assert not run(catalog, data).valid
    assert run(catalog, data, strict_isa=False).valid


def test_pedantic_warns_on_unusual_codes(catalog: Catalog) -> None:
    body = [PO_850[0], "REF*QQ*X", *PO_850[1:]]
    assert set_codes(run(catalog, interchange([body]))) == []
    warned = run(catalog, interchange([body]), pedantic=True)
    assert [f.code for f in warned.sets()[0].findings] == ["X12-V214"]
    assert warned.valid  # warnings do not reject


def test_duplicate_isa13_in_one_file_is_a_warning_on_the_second_isa(catalog: Catalog) -> None:
    """The same sender's ISA13 twice in one file: a warning located on the second ISA (element 13, its
    byte offset), in the report and in ``gateway validate``'s output; another sender's same number is fine."""
    one = interchange([PO_850])
    other = one.replace(b"*ZZ*SENDER         *", b"*ZZ*OTHER          *")
    report = Validator(catalog).validate(one + one + other)
    first, second, third = report.interchanges
    assert [f.code for f in first.findings] == [] and [f.code for f in third.findings] == []
    (warning,) = second.findings
    assert warning.code == "X12-I012" and not warning.is_error and second.accepted and report.valid
    assert (warning.location.segment_id, warning.location.element) == ("ISA", 13)
    assert warning.location.byte_offset == len(one) and warning.value == "000000905"
    assert "byte 0" in warning.message


def test_validate_command_shows_the_duplicate_isa13(tmp_path: Path) -> None:
    one = interchange([PO_850])
    path = tmp_path / "twice.edi"
    path.write_bytes(one + one)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0
    assert f"warning [X12-I012] ISA 000000905 > ISA (byte {len(one)}) > element 13: ISA13 000000905 repeats" in (
        result.stdout
    )
