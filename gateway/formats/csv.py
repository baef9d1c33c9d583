"""Reading partner CSV into rows, by a declared dialect; grouping rows into documents.

Parsing is the standard library's ``csv`` module (quoting and embedded
delimiters done right); this module adds what partner files need on top:
a declared dialect (delimiter, quote, encoding, header or named columns,
rows to skip, trimming of padded values), line numbers on every row for
error messages, and grouping of line rows into documents (lines of one PO
together). Values stay strings here: decimal commas and dates are the
maps' named functions, so the rules live in one place.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import DocumentError, Location


class CsvDocumentError(DocumentError):
    """A CSV file that does not match its declared dialect; ``location`` names the line."""


class CsvDialect(BaseModel):
    """How a partner's CSV is written (part of a CSV map)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    header: bool = True
    columns: list[str] | None = Field(
        default=None, description="Column names for a header-less file (or to rename a header's columns)."
    )
    skip_rows: int = Field(default=0, ge=0, description="Lines to skip before the header or the data.")
    strip: bool = Field(default=True, description="Trim spaces around values (space-padded exports).")
    allow_ragged: bool = Field(default=False, description="Accept rows with fewer columns than the header.")


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its 1-based line number in the file and its values by column name."""

    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values[column]


def read_rows(data: bytes, dialect: CsvDialect, *, source: str | None = None) -> Iterator[Row]:
    """The data rows of ``data``; raises :class:`CsvDocumentError` naming the line."""
    try:
        text = data.decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        raise CsvDocumentError(
            f"not {dialect.encoding}: undecodable byte 0x{data[exc.start]:02x} at byte {exc.start}",
            "CSV-001",
            Location(file=source, byte_offset=exc.start),
        ) from exc
    reader = csv.reader(_lines(text), delimiter=dialect.delimiter, quotechar=dialect.quotechar)
    columns = list(dialect.columns) if dialect.columns else None
    try:
        for raw in reader:
            line = reader.line_num
            if line <= dialect.skip_rows or not any(cell.strip() for cell in raw):
                continue
            cells = [c.strip() for c in raw] if dialect.strip else raw
            if dialect.header and columns is None:
                columns = cells
                continue
            if dialect.header and dialect.columns and line == dialect.skip_rows + 1:
                continue  # the file's own header, renamed by ``columns``
            if columns is None:
                raise CsvDocumentError("a header-less dialect needs `columns`", "CSV-002", Location(file=source))
            yield _row(cells, columns, line, dialect, source)
    except csv.Error as exc:
        raise CsvDocumentError(
            f"malformed CSV at line {reader.line_num}: {exc}",
            "CSV-003",
            Location(file=source, line=reader.line_num),
        ) from exc


def _lines(text: str) -> Iterator[str]:
    """Lines with their endings, split on LF only (CR stays for the csv module to handle)."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start : end + 1]
        start = end + 1
    if start < len(text):
        yield text[start:]


def _row(cells: list[str], columns: list[str], line: int, dialect: CsvDialect, source: str | None) -> Row:
    if len(cells) > len(columns) or (len(cells) < len(columns) and not dialect.allow_ragged):
        raise CsvDocumentError(
            f"line {line} has {len(cells)} values, the columns are {len(columns)} ({', '.join(columns)})",
            "CSV-004",
            Location(file=source, line=line),
        )
    values = dict(zip(columns, cells, strict=False))
    for missing in columns[len(cells) :]:
        values[missing] = ""
    return Row(line, values)


def group_rows(rows: Iterable[Row], key: list[str]) -> Iterator[list[Row]]:
    """Rows with the same ``key`` values, as one group each (a document's lines), in order of first
    appearance. Rows of one document need not be next to each other: a file sorted by line number
    instead of by PO must not split a PO into two documents (the second would be taken for a
    duplicate and its lines lost)."""
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.values[k] for k in key), []).append(row)
    yield from groups.values()
