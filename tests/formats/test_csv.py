"""CSV by declared dialect: quoting, semicolons, padding, header-less files, grouping, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS
from pydantic import ValidationError

from gateway.formats.csv import CsvDialect, CsvDocumentError, group_rows, read_rows

ORDERS = b"""PO_NUMBER;LINE;ITEM;QTY;PRICE
4500012345;1;GLV-NIT-M;10;42,50
4500012345;2;"SYR;10ML";4;118,00

4500012399;1;GAUZE-4X4;100;0,35
"""


def test_semicolon_header_and_grouping() -> None:
    rows = list(read_rows(ORDERS, CsvDialect(delimiter=";"), source="orders.csv"))
    assert [r.line for r in rows] == [2, 3, 5]
    assert rows[1]["ITEM"] == "SYR;10ML"  # quoted delimiter kept
    assert rows[0]["PRICE"] == "42,50"  # decimal comma left to the map's function
    groups = list(group_rows(rows, ["PO_NUMBER"]))
    assert [len(g) for g in groups] == [2, 1]


def test_wrong_column_count_names_the_line() -> None:
    bad = ORDERS.replace(b"4500012399;1;GAUZE-4X4;100;0,35", b"4500012399;1;GAUZE-4X4")
    with pytest.raises(CsvDocumentError) as err:
        list(read_rows(bad, CsvDialect(delimiter=";"), source="orders.csv"))
    assert err.value.code == "CSV-004" and "line 5" in str(err.value) and "orders.csv" in str(err.value)
    ragged = list(read_rows(bad, CsvDialect(delimiter=";", allow_ragged=True)))
    assert ragged[-1]["PRICE"] == ""


def test_encoding_errors_are_located() -> None:
    with pytest.raises(CsvDocumentError) as err:
        list(read_rows(b"A,B\n1,\xff\n", CsvDialect(encoding="utf-8")))
    assert err.value.location.byte_offset == 6


def test_unknown_dialect_keys_are_errors() -> None:
    with pytest.raises(ValidationError):
        CsvDialect.model_validate({"delimitr": ";"})


def test_corpus_files(corpus: Path) -> None:
    pricat = list(
        read_rows(
            (CORPUS / "csv" / "botsplugins__pricat_articledata01.csv").read_bytes(),
            CsvDialect(delimiter=";", encoding="latin-1"),
        )
    )
    assert pricat and pricat[0]["GTIN/EAN"] == "8712345678906" and pricat[0]["Color"] == "white"
    lines = list(
        read_rows(
            (CORPUS / "csv" / "botsplugins__alto_ETRDTL.csv").read_bytes(),
            CsvDialect(header=False, columns=["order", "line", "qty", "price", "amount", "item"]),
        )
    )
    assert lines and all(r["order"].isdigit() for r in lines)
    assert [len(g) for g in group_rows(lines, ["order"])]
    orders = list(
        read_rows(
            (CORPUS / "csv" / "botsplugins__orders_to_csv_test.csv").read_bytes(),
            CsvDialect(header=False, columns=[f"c{i}" for i in range(30)], allow_ragged=True),
        )
    )
    assert len(orders) == 8 and orders[0]["c0"] == "ORDERSD96AUNEAN008"


def test_rows_of_one_document_need_not_be_adjacent():
    """A file sorted by line instead of by PO keeps each PO whole (review finding: lines were lost)."""
    data = b"po;line\nA;1\nB;1\nA;2\nB;2\n"
    rows = list(read_rows(data, CsvDialect(delimiter=";")))
    groups = list(group_rows(rows, ["po"]))
    assert [[r["line"] for r in g] for g in groups] == [["1", "2"], ["1", "2"]]
    assert [g[0]["po"] for g in groups] == ["A", "B"]
