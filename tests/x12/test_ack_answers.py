"""A 997/999 written from compact per-set answers (kept as sets end, reports dropped) is byte for byte the
one written from the kept reports: what lets a big interchange be acknowledged at flat memory."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import ISA_5010, PO_850, control_sequence, interchange

from gateway.errors import ConfigError
from gateway.x12.ack.answers import Answers
from gateway.x12.ack.build import build_acks
from gateway.x12.reader import X12Reader
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.report import InterchangeReport, SetReport
from gateway.x12.validate.validator import Validator

WHEN = datetime(2026, 11, 23, 14, 5)
BAD = ["BEG*00*SA**20261123", *PO_850[1:]]  # BEG03 missing, an invalid date: rejected


def streamed(catalog: Catalog, data: bytes) -> tuple[InterchangeReport, Answers]:
    """The interchange's report without its set reports, and the answers kept as the sets ended."""
    answers = Answers()
    found: list[InterchangeReport] = []
    for item in Validator(catalog, keep_sets=False).stream(X12Reader(data)):
        if isinstance(item, SetReport):
            answers.add(item)
        elif isinstance(item, InterchangeReport):
            found.append(item)
    (ic,) = found
    return ic, answers


@pytest.mark.parametrize(
    "data",
    [
        interchange([PO_850, BAD, PO_850, BAD]),
        interchange([PO_850] * 5),
        interchange([BAD, BAD]),
        interchange([PO_850, BAD], isa=ISA_5010, version="005010X999"),
    ],
    ids=["997-partial", "997-accepted", "997-rejected", "999-partial"],
)
def test_answers_give_the_same_ack_as_reports(catalog: Catalog, data: bytes) -> None:
    full = Validator(catalog).validate(data).interchanges[0]
    expected = build_acks(full, control_sequence(41, 7, 1), WHEN)
    ic, answers = streamed(catalog, data)
    assert all(not g.sets for g in ic.groups), "the reports were not kept"
    got = build_acks(ic, control_sequence(41, 7, 1), WHEN, answers=answers)
    assert got is not None and got == expected
    assert Validator(catalog).validate(got).valid


def test_without_reports_or_answers_no_ack_is_guessed(catalog: Catalog) -> None:
    ic, _ = streamed(catalog, interchange([PO_850]))
    with pytest.raises(ConfigError):
        build_acks(ic, control_sequence(41, 7, 1), WHEN)
