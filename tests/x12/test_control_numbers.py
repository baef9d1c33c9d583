"""ST02s seen in a group are kept as ranges (a batch of 100,000 sets in sequence is one range), with exactly
the answers a set of strings gives."""

from __future__ import annotations

import random

from conftest import PO_850, interchange

from gateway.x12.envelope import ControlNumbers
from gateway.x12.schema.catalog import Catalog
from gateway.x12.validate.validator import Validator


def test_ranges_answer_as_a_set_of_strings_does() -> None:
    rng = random.Random(9)
    values = [f"{n:04d}" for n in rng.sample(range(1, 400), 300)] + ["0001", "1", "01", "A1", "", "12345"]
    values += [f"{n:04d}" for n in range(500, 900)]  # in sequence
    rng.shuffle(values)
    kept, plain = ControlNumbers(), set()
    for value in values:
        assert (value in kept) == (value in plain), value
        kept.add(value)
        plain.add(value)
    for probe in ["0000", "0001", "1", "001", "0400", "0899", "0900", "A1", "A2", "", "9999"]:
        assert (probe in kept) == (probe in plain), probe
    assert sum(len(starts) for starts, _ in kept.ranges.values()) < len(plain) // 2


def test_sequential_controls_are_one_range() -> None:
    kept = ControlNumbers()
    for n in range(1, 10_001):
        kept.add(f"{n:05d}")
    assert kept.ranges == {5: ([1], [10_000])}


def test_a_repeated_st02_is_still_found(catalog: Catalog) -> None:
    data = interchange([PO_850, PO_850, PO_850]).replace(b"ST*850*0003", b"ST*850*0001")
    data = data.replace(b"*0003~", b"*0001~")
    codes = [f.code for s in Validator(catalog).validate(data).sets() for f in s.findings]
    assert codes.count("X12-S008") == 1
