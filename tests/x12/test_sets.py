"""Whole transaction sets with their envelope context."""

from __future__ import annotations

from conftest import PO_850, REPO, interchange

from gateway.x12.sets import iter_transaction_sets


def test_sets_with_context() -> None:
    sets = list(iter_transaction_sets(interchange([PO_850, PO_850[:1]])))
    assert len(sets) == 2
    first = sets[0]
    assert first.segments[0].id == "ST" and first.segments[-1].id == "SE"
    assert [s.id for s in first.body] == [s.split("*")[0] for s in PO_850]
    assert first.header.group is not None and first.header.group.control_number == "77"
    assert first.header.interchange.control_number == "000000905"
    assert first.delimiters.element == "*"
    beg = first.first("BEG")
    assert beg is not None and beg.element(3) == "4500012345"
    assert len(list(first.find("PO1"))) == 2
    assert first.findings == []


def test_missing_trailer_is_a_finding() -> None:
    data = interchange([PO_850]).replace(b"SE*9*0001~\n", b"")
    (only,) = list(iter_transaction_sets(data))
    assert [f.code for f in only.findings] == ["X12-S001"]
    assert only.segments[-1].id == "CTT"


def test_samples() -> None:
    for path in sorted((REPO / "samples" / "x12").glob("*.edi")):
        sets = list(iter_transaction_sets(path.read_bytes()))
        assert len(sets) == 1 and not sets[0].findings
        assert int(sets[0].segments[-1].element(1)) == len(sets[0].segments)
