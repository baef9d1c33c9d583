"""One decision of what was accepted, for ``translate``, ``validate`` and ``ack`` as for ``run``.

Each command decides through :mod:`gateway.verdict` with the partner's profile: guide overlays,
accepted findings, ack/TA1 policy, envelope refusals and the sender check. Every acknowledgment these
tests get is validated with the gateway's own validator (:func:`ackcheck.check_ack`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ackcheck import PRODUCED, check_ack, split_interchanges
from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main
from gateway.mapping.problems import MapLoadError
from gateway.translate import FileInput
from gateway.workspace import load_workspace
from gateway.x12.ack.read import FunctionalAck, TA1Ack

PARTNERS = REPO / "partners"
SAMPLES = REPO / "samples" / "x12"
GUIDE_VIOLATION = PARTNERS / "orthosupply" / "cases" / "856-guide-violation.edi"
ACK_855 = (SAMPLES / "855-4010-medsupply-ack.edi").read_text()
INVOICE_810 = (PARTNERS / "medsupply" / "cases" / "810-invoice.edi").read_text()
SUMMIT_810 = (PARTNERS / "summitmed" / "cases" / "810-contract-price.edi").read_text()


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def acks_of(out: str) -> list[FunctionalAck | TA1Ack]:
    found: list[FunctionalAck | TA1Ack] = []
    for data in split_interchanges(out):
        found.extend(check_ack(data))
    return found


def three_855s() -> list[str]:
    """The sample 855 interchange with its set three times (BAK03 made unique), as segment lines."""
    lines = [s + "~" for s in ACK_855.split("~\n") if s.strip()]
    st = next(i for i, s in enumerate(lines) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(lines) if s.startswith("SE*"))
    body = lines[st + 1 : se]
    out = lines[:st]
    for n in range(1, 4):
        out.append(f"ST*855*000{n}~")
        out.extend(b.replace("4500012345", f"450001234{n}") for b in body)
        out.append(f"SE*{len(body) + 2}*000{n}~")
    out += ["GE*3*201~", "IEA*1*000000201~"]
    return out


# --- the guide overlay, in every command --------------------------------------------------------


def test_guide_violation_is_rejected_by_validate_ack_and_translate() -> None:
    code, out, _ = cli("validate", str(GUIDE_VIOLATION))
    assert code == 1 and "INVALID" in out and "X12-V201" in out and "orthosupply-856" in out
    code, out, err = cli("ack", str(GUIDE_VIOLATION))
    assert code == 0, err
    (ack,) = acks_of(out)
    assert isinstance(ack, FunctionalAck) and ack.kind == "999" and ack.code == "R"
    assert [(s.set_id, s.code) for s in ack.sets] == [("856", "R")]
    assert "IK5|R" in out
    code, out, err = cli("translate", str(GUIDE_VIOLATION))
    assert code == 1 and "set 856 0001 rejected" in err


# --- a file part of which is rejected: translate must not succeed --------------------------------


def test_missing_st_rejects_the_interchange_in_every_command(tmp_path: Path) -> None:
    lines = three_855s()
    st2 = lines.index("ST*855*0002~")
    del lines[st2]  # the second set's BAK now falls between sets
    path = write(tmp_path, "855-missing-st.edi", "\n".join(lines) + "\n")
    code, out, err = cli("translate", path)
    assert code == 1, out
    assert "interchange 000000201 rejected: X12-R008" in err
    assert '"po_number"' not in out  # sets of a rejected interchange are not passed on
    code, out, _ = cli("validate", path)
    assert code == 1 and "INVALID" in out
    code, out, _ = cli("ack", path)
    (ta1,) = acks_of(out)
    assert isinstance(ta1, TA1Ack) and ta1.code == "R" and ta1.control_number == "000000201"


def test_duplicate_gs06_fails_translate(tmp_path: Path) -> None:
    lines = [s + "~" for s in ACK_855.split("~\n") if s.strip()]
    group = lines[1:-1]
    second = [g.replace("4500012345", "4500099999") for g in group]
    text = "\n".join([lines[0], *group, *second, "IEA*2*000000201~"]) + "\n"
    path = write(tmp_path, "855-dup-gs06.edi", text)
    code, _, err = cli("translate", path)
    assert code == 1 and "X12-G007" in err
    code, _, _ = cli("validate", path)
    assert code == 1


def test_bad_isa_fails_translate(tmp_path: Path) -> None:
    # An ISA15 that is neither T nor P: the envelope is rejected, and a TA1 can still name it.
    path = write(tmp_path, "855-bad-isa.edi", ACK_855.replace("*000000201*0*P", "*000000201*0*X"))
    code, out, err = cli("translate", path)
    assert code == 1 and "rejected: X12-I" in err
    code, out, _ = cli("ack", path)
    (ta1,) = acks_of(out)
    assert isinstance(ta1, TA1Ack) and ta1.code == "R"


def test_isa13_no_ta1_can_echo_fails_translate_and_says_why(tmp_path: Path) -> None:
    path = write(tmp_path, "855-bad-isa13.edi", ACK_855.replace("*000000201*0*P", "*00000020X*0*P"))
    code, out, err = cli("translate", path)
    assert code == 1 and "rejected: X12-I004" in err
    code, out, err = cli("ack", path)
    assert not acks_of(out) and "X12-A002" in err


def test_clean_file_still_translates_with_exit_0() -> None:
    code, out, err = cli("translate", str(SAMPLES / "855-4010-medsupply-ack.edi"))
    assert code == 0, err
    assert '"po_number": "4500012345"' in out


# --- acknowledgments that come back to us ---------------------------------------------------------

INBOUND_997 = """ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *261124*1010*U*00401*000000777*0*P*>~
GS*FA*MEDSUPPLY*MERCYHOSP*20261124*1010*777*X*004010~
ST*997*0001~
AK1*PO*101~
AK2*850*0001~
AK3*PO1*14*PO1*8~
AK4*4*212*4*ABC~
AK5*R*5~
AK9*R*1*1*0~
SE*8*0001~
GE*1*777~
IEA*1*000000777~
"""

INBOUND_TA1 = """ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *261124*1010*U*00401*000000778*1*P*>~
TA1*000000101*261123*0930*R*025~
IEA*0*000000778~
"""


@pytest.mark.parametrize("text", [INBOUND_997, INBOUND_TA1], ids=["997", "TA1"])
def test_an_acknowledgment_is_never_acknowledged(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "ack-in.edi", text)
    code, out, err = cli("ack", path)
    assert out == "" and code == 1
    assert "never acknowledged" in err


def test_an_inbound_997_is_read_not_translated(tmp_path: Path) -> None:
    path = write(tmp_path, "997-in.edi", INBOUND_997)
    code, out, err = cli("translate", path, "--json")
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert result["status"] == "acknowledgment" and result["document"] is None and not result["errors"]
    ack = result["acknowledgment"]
    assert (ack["kind"], ack["functional_id"], ack["group_control"], ack["code"]) == ("997", "PO", "101", "R")
    assert ack["sets"][0]["segments"][0]["elements"][0]["value"] == "ABC"
    assert "group PO 101 rejected" in ack["summary"] and "set 850 0001 rejected" in ack["summary"]
    code, out, _ = cli("validate", path)
    assert code == 0


def test_decide_reads_a_ta1_and_plans_no_ack() -> None:
    from gateway.verdict import decisions

    ws = load_workspace(REPO)
    items = ws.translator().translate(INBOUND_TA1.encode(), FileInput(name="ta1.edi", partner_id="medsupply"))
    (verdict,) = list(decisions(items, partners=ws.partners, expected="medsupply", file="ta1.edi"))
    assert verdict.ack is None and verdict.claim
    (ta1,) = verdict.received_acks
    assert (ta1.control_number, ta1.code, ta1.note_code) == ("000000101", "R", "025")


# --- partner-accepted findings ---------------------------------------------------------------------


def _855_v107() -> str:
    """An 855 written PO1, ACK, PID (004010 wants PID before the ACK loop): X12-V107."""
    return ACK_855.replace(
        "ACK*IA*10*BX*068*20261125~\n", "ACK*IA*10*BX*068*20261125~\nPID*F****NITRILE GLOVES~\n"
    ).replace("SE*13*0001", "SE*14*0001")


def home_with(tmp_path: Path, partner: str, extra: str) -> Path:
    """A deployment with the repository's maps and partners, ``extra`` appended to one profile."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "maps").symlink_to(REPO / "maps", target_is_directory=True)
    shutil.copytree(PARTNERS, home / "partners", ignore=shutil.ignore_patterns("cases"))
    profile = home / "partners" / f"{partner}.yaml"
    profile.write_text(profile.read_text() + extra)
    return home


ACCEPT_V107 = """accepted_findings:
  - code: X12-V107
    sets: ["855"]
    segment: PID
    reason: writes PID after the ACK loop since 2012
"""


def test_without_the_profile_entry_the_855_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "855-v107.edi", _855_v107())
    assert cli("validate", path)[0] == 1
    _code, out, _ = cli("ack", path)
    (ack,) = acks_of(out)
    assert isinstance(ack, FunctionalAck) and [s.code for s in ack.sets] == ["R"]
    assert cli("translate", path)[0] == 1


def test_an_accepted_finding_translates_with_ak5_e(tmp_path: Path) -> None:
    home = str(home_with(tmp_path, "medsupply", ACCEPT_V107))
    path = write(tmp_path, "855-v107.edi", _855_v107())
    code, out, _ = cli("validate", path, "--home", home)
    assert code == 0, out
    assert "warning [X12-V107]" in out and "accepted: partner medsupply accepts X12-V107" in out
    code, out, err = cli("ack", path, "--home", home)
    assert code == 0, err
    (ack,) = acks_of(out)
    assert isinstance(ack, FunctionalAck) and ack.code == "E"
    (st,) = ack.sets
    assert st.code == "E" and [(s.segment_id, s.code) for s in st.segments] == [("PID", "7")]
    assert "AK5*E" in out and "AK9*E*1*1*1" in out
    code, out, err = cli("translate", path, "--home", home)
    assert code == 0, err
    assert '"po_number": "4500012345"' in out
    assert "WARNING X12-V107" in err and "writes PID after the ACK loop since 2012" in err


def test_an_accepted_finding_is_scoped_to_its_sets(tmp_path: Path) -> None:
    home = str(home_with(tmp_path, "medsupply", ACCEPT_V107.replace('["855"]', '["856"]')))
    path = write(tmp_path, "855-v107.edi", _855_v107())
    assert cli("validate", path, "--home", home)[0] == 1


TARE_856 = (PARTNERS / "orthosupply" / "cases" / "856-implants-tare.edi").read_text()
PADDED_ISA = "ISA*00*          *00*          *ZZ*MEDSUPPLY      *ZZ*MERCYHOSP      *"


@pytest.mark.parametrize(
    ("partner", "text", "entry"),
    [
        ("orthosupply", TARE_856.replace("GS|SH|", "GS|IN|"), "code: X12-S007\n    sets: ['856']"),
        ("medsupply", ACK_855.replace(PADDED_ISA, "ISA*00**00**ZZ*MEDSUPPLY*ZZ*MERCYHOSP*"), "code: X12-R002"),
        (
            "orthosupply",
            TARE_856.replace("MAN|GM|00088812340000077118", "MAN|CP|00088812340000077118"),
            "code: X12-V207\n    segment: MAN\n    element: 1",
        ),
    ],
    ids=["gs01-not-the-set", "unpadded-isa", "unknown-qualifier"],
)
def test_each_kind_of_habit_can_be_accepted(tmp_path: Path, partner: str, text: str, entry: str) -> None:
    path = write(tmp_path, "habit.edi", text)
    code, out, _ = cli("validate", path)
    assert code == 1, out
    home = str(home_with(tmp_path, partner, f"accepted_findings:\n  - {entry}\n    reason: their habit\n"))
    code, out, _ = cli("validate", path, "--home", home)
    assert code == 0 and "(accepted: partner" in out, out
    code, out, err = cli("translate", path, "--home", home)
    assert code == 0, err
    code, out, err = cli("ack", path, "--home", home)
    assert code == 0, err
    verdicts = acks_of(out)
    assert verdicts and all(a.code in ("A", "E") for a in verdicts)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (ACCEPT_V107.replace("    sets:", "    set:"), "unknown key 'set' (did you mean sets?)"),
        (ACCEPT_V107.replace("X12-V107", "X12-V17"), "unknown finding code 'X12-V17' (did you mean X12-V107?)"),
        (ACCEPT_V107.replace("X12-V107", "X12-S002"), "X12-S002 (SE02 does not match ST02) cannot be accepted"),
        (ACCEPT_V107.replace("    reason: writes PID after the ACK loop since 2012\n", ""), "reason"),
        ("accepted_finding: []\n", "unknown key 'accepted_finding' (did you mean accepted_findings?)"),
    ],
    ids=["entry-key", "code", "envelope-code", "no-reason", "profile-key"],
)
def test_accepted_findings_key_is_checked(tmp_path: Path, extra: str, message: str) -> None:
    home = home_with(tmp_path, "medsupply", extra)
    with pytest.raises(MapLoadError) as info:
        load_workspace(home)
    text = str(info.value)
    assert "partners/medsupply.yaml" in text and message in text


# --- one partner cannot send as another ----------------------------------------------------------


def two_partner_file() -> str:
    """medsupply's invoice, then a second interchange carrying summitmed's ISA (their 810 case)."""
    return INVOICE_810 + SUMMIT_810


def test_a_second_interchange_of_another_partner_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "two-senders.edi", two_partner_file())
    code, out, err = cli("translate", path, "--partner", "medsupply")
    assert code == 1
    assert "SEC-001" in err and "names sender 01:079123456 (partner summitmed)" in err
    assert "this file belongs to partner medsupply" in err
    code, out, err = cli("validate", path, "--partner", "medsupply")
    assert code == 1 and "REJECTED SEC-001" in out
    code, out, err = cli("ack", path, "--partner", "medsupply")
    (ack,) = acks_of(out)  # the first interchange only: nothing is sent about the other partner's
    assert isinstance(ack, FunctionalAck) and ack.group_control == "413"
    assert "not acknowledged: its sender is not this file's partner" in err
    # Without --partner each interchange is its own sender's: both translate.
    assert cli("translate", path)[0] == 0


def test_x12_in_a_csv_partners_folder_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x12.csv", INVOICE_810)
    code, _, err = cli("translate", path, "--partner", "coastal")
    assert code == 1 and "partner coastal sends csv, not X12" in err


def test_cxml_with_another_partners_credential_is_refused(tmp_path: Path) -> None:
    xml = (PARTNERS / "carelink" / "cases" / "invoice.xml").read_text()
    path = write(tmp_path, "invoice.xml", xml)
    code, _, err = cli("translate", path, "--partner", "medsupply")
    assert code == 1
    assert "SEC-001" in err and "NetworkID:CL00000042 is partner carelink's" in err
    unknown = write(tmp_path, "unknown.xml", xml.replace("CL00000042", "CL99999999"))
    code, _, err = cli("translate", unknown, "--partner", "carelink")
    assert code == 1 and "is not one of partner carelink's" in err
    assert cli("translate", path, "--partner", "carelink")[0] == 0


# --- every acknowledgment these tests produced, through `gateway validate` ---------------------------


def test_every_ack_produced_here_validates(tmp_path: Path) -> None:
    """Runs last in this module: each ack the tests above got, through the CLI validator this time."""
    assert len(PRODUCED) >= 6
    for n, data in enumerate(PRODUCED):
        path = tmp_path / f"ack-{n}.x12"
        path.write_bytes(data)
        code, out, _ = cli("validate", str(path))
        assert code == 0, out
