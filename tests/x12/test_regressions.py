"""Regressions found in review: each once let bad input through or crashed."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import PO_850, interchange

from gateway.errors import ConfigError
from gateway.x12.ack.build import build_acks
from gateway.x12.reader import read_events
from gateway.x12.schema.catalog import Catalog
from gateway.x12.segment import Segment
from gateway.x12.validate.validator import Validator


def ids(data: bytes, **kw: int) -> list[str]:
    return [ev.id for ev in read_events(data, **kw) if isinstance(ev, Segment)]


EXPECTED = ["BEG", "REF", "N1", "PO1", "PID", "PO1", "CTT"]


@pytest.mark.parametrize("junk", [b"\x00", b"\x1a", b"~"])
def test_fast_path_drops_junk_and_empty_parts(catalog: Catalog, junk: bytes) -> None:
    data = interchange([PO_850], term="~").replace(b"~PO1*1", b"~" + junk + b"PO1*1")
    assert ids(data) == EXPECTED
    assert Validator(catalog).validate(data).valid


@pytest.mark.parametrize("chunk", [5, 17, 101, 379])
def test_doubled_terminator_on_any_chunk_boundary(catalog: Catalog, chunk: int) -> None:
    data = interchange([PO_850], term="~").replace(b"CTT*2~", b"CTT*2~~")
    assert ids(data, chunk_size=chunk) == EXPECTED


def test_truncated_after_a_terminator_has_no_phantom_segment() -> None:
    data = interchange([PO_850], term="~\n")
    cut = data[: data.index(b"SE*")]
    assert ids(cut) == EXPECTED


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"DTM*002*20261130", b"DTM*002*2026113\xc2\xb2"),
        (b"SE*10*0001", b"SE*1\xc2\xb2*0001"),
        (b"PO1*1*10*", b"PO1*1*1\xc2\xb2*"),
    ],
)
def test_non_ascii_digits_are_errors_not_crashes(catalog: Catalog, old: bytes, new: bytes) -> None:
    body = [PO_850[0], "DTM*002*20261130", *PO_850[1:]]
    data = interchange([body]).replace(old, new)
    assert old not in data
    report = Validator(catalog).validate(data)
    assert not report.valid


def test_overlay_code_longer_than_the_element_is_still_a_length_error(catalog: Catalog) -> None:
    overlay = 'overlay: x\nset: "850"\nversion: "004010"\nelements:\n  BEG02: {codes: [SA, NEW]}\n'
    definition = catalog.with_overlay(overlay, "x.yaml")
    validator = Validator(catalog, resolver=lambda v, s, sender: definition if s == "850" else None)
    data = interchange([["BEG*00*NEW*4500012345**20261123", *PO_850[1:]]])
    codes = [f.code for f in validator.validate(data).sets()[0].findings]
    assert "X12-V205" in codes


def test_acks_refuse_tally_only_reports(catalog: Catalog) -> None:
    report = Validator(catalog, keep_sets=False).validate(interchange([PO_850]))
    with pytest.raises(ConfigError):
        build_acks(report.interchanges[0], lambda kind: 1, datetime(2026, 1, 1))


def test_unknown_long_segment_id_fits_ak301(catalog: Catalog) -> None:
    data = interchange([[*PO_850[:-1], "CTTXX*3", PO_850[-1]]])
    out = build_acks(Validator(catalog).validate(data).interchanges[0], lambda kind: 1, datetime(2026, 1, 1))
    assert out is not None and b"AK3*CTT*" in out and b"CTTXX" not in out
