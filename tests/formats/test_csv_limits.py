"""Hostile but well-formed CSV is refused with a located error before it costs memory: a line of millions of
separators, rows of too many values, a file of too many rows (the dialect's limits, raisable per map)."""

from __future__ import annotations

import pytest

from gateway.formats.csv import CsvDialect, CsvDocumentError, read_rows

HEADER = b"PO;LINE;QTY\n"


def error_of(data: bytes, dialect: CsvDialect) -> CsvDocumentError:
    with pytest.raises(CsvDocumentError) as caught:
        list(read_rows(data, dialect, source="hostile.csv"))
    return caught.value


def test_a_line_longer_than_the_limit_is_refused_before_it_is_split() -> None:
    data = HEADER + b"PO1;1;5\n" + b";" * 5000 + b"\n"
    exc = error_of(data, CsvDialect(delimiter=";", max_line_chars=4096))
    assert exc.code == "CSV-005"
    assert (exc.location.file, exc.location.line) == ("hostile.csv", 3)
    assert "5,001 characters" in exc.message and "max_line_chars" in exc.message


def test_a_row_of_too_many_values_is_refused() -> None:
    data = HEADER + b"PO1;1;5" + b";x" * 1200 + b"\n"
    exc = error_of(data, CsvDialect(delimiter=";"))  # the default limit, 1,000 values
    assert (exc.code, exc.location.line) == ("CSV-006", 2)
    assert "1,203 values" in exc.message


def test_a_header_of_separators_is_refused_too() -> None:
    exc = error_of(b";" * 2000 + b"\n", CsvDialect(delimiter=";"))
    assert (exc.code, exc.location.line) == ("CSV-006", 1)


def test_too_many_rows_are_refused_and_the_limit_is_the_dialects() -> None:
    data = HEADER + b"x;;\n" * 30
    exc = error_of(data, CsvDialect(delimiter=";", max_rows=25))
    assert (exc.code, exc.location.line) == ("CSV-007", 27)
    assert len(list(read_rows(data, CsvDialect(delimiter=";", max_rows=30)))) == 30


def test_within_the_limits_nothing_changes() -> None:
    rows = list(read_rows(HEADER + b"PO1;1;5\nPO1;2;7", CsvDialect(delimiter=";", max_line_chars=12, max_fields=3)))
    assert [(r.line, r["QTY"]) for r in rows] == [(2, "5"), (3, "7")]
