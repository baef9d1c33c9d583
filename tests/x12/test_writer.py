"""The writer: padding, counts, control numbers, delimiter safety."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import control_sequence

from gateway.errors import DocumentError
from gateway.x12.model import InterchangeEnd, SetEnd
from gateway.x12.reader import read_events
from gateway.x12.segment import Delimiters
from gateway.x12.writer import OutGroup, OutInterchange, OutSet, Party, write_interchange


def test_counts_padding_and_controls() -> None:
    ic = OutInterchange(Party("ZZ", "MERCYHOSP"), Party("01", "123456789"), version="00501")
    ic.groups.append(
        OutGroup(
            "PO",
            "MERCYHOSP",
            "123456789",
            "005010",
            [
                OutSet("850", [["BEG", "00", "SA", "PO1", "", "20261123"], ["CTT", "1", ""]]),
                OutSet("850", [["BEG", "00", "SA", "PO2", "", "20261123"]]),
            ],
        )
    )
    data = write_interchange(ic, Delimiters("*", ":", "^", "~", "\n"), control_sequence(), datetime(2026, 1, 2, 3, 4))  # type: ignore[arg-type]
    lines = data.decode().splitlines()
    assert (
        lines[0]
        == "ISA*00*          *00*          *ZZ*MERCYHOSP      *01*123456789      *260102*0304*^*00501*000000001*0*P*:~"
    )
    assert len(lines[0]) == 106
    assert "CTT*1~" in lines  # trailing empty element trimmed
    assert "SE*4*0001~" in lines and "SE*3*0002~" in lines
    assert lines[-2:] == ["GE*2*1~", "IEA*1*000000001~"]
    ends = [ev for ev in read_events(data) if isinstance(ev, (SetEnd, InterchangeEnd))]
    assert all(not ev.findings for ev in ends)


def test_delimiter_in_data_is_refused() -> None:
    ic = OutInterchange(Party("ZZ", "A"), Party("ZZ", "B"))
    ic.groups.append(OutGroup("PO", "A", "B", "004010", [OutSet("850", [["BEG", "00", "SA", "PO*1"]])]))
    with pytest.raises(DocumentError) as err:
        write_interchange(ic, Delimiters(), control_sequence(), datetime(2026, 1, 1))  # type: ignore[arg-type]
    assert err.value.code == "X12-W001" and err.value.location.element == 3


def test_isa_field_too_long() -> None:
    ic = OutInterchange(Party("ZZ", "X" * 16), Party("ZZ", "B"))
    with pytest.raises(DocumentError):
        write_interchange(ic, Delimiters(), control_sequence(), datetime(2026, 1, 1))  # type: ignore[arg-type]
