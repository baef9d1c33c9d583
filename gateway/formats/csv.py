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


MAX_FIELDS = 1_000
"""Values per row, by default: partner exports have tens; a file of separators must not become millions of
values in memory."""
MAX_LINE_CHARS = 1 << 20
"""Characters per line, by default (the csv module parses a whole line before we see its values)."""
MAX_ROWS = 50_000
"""Data rows per file, by default: a file's rows are grouped into documents in memory, and a document of
millions of lines is hostile, not an export."""


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
    max_fields: int = Field(default=MAX_FIELDS, ge=1, description="Most values a row may have (a bound on memory).")
    max_line_chars: int = Field(
        default=MAX_LINE_CHARS, ge=1, description="Longest line a file may have, in characters (a bound on memory)."
    )
    max_rows: int = Field(default=MAX_ROWS, ge=1, description="Most data rows a file may have (a bound on memory).")


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
    lines = _lines(text, dialect.max_line_chars, source)
    reader = csv.reader(lines, delimiter=dialect.delimiter, quotechar=dialect.quotechar)
    columns = list(dialect.columns) if dialect.columns else None
    rows = 0
    try:
        for raw in reader:
            line = reader.line_num
            if len(raw) > dialect.max_fields:
                raise CsvDocumentError(
                    f"line {line} has {len(raw):,} values, more than the {dialect.max_fields:,} a row may have "
                    "(the dialect's max_fields)",
                    "CSV-006",
                    Location(file=source, line=line),
                )
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
            rows += 1
            if rows > dialect.max_rows:
                raise CsvDocumentError(
                    f"more than {dialect.max_rows:,} data rows (the dialect's max_rows): split the file",
                    "CSV-007",
                    Location(file=source, line=line),
                )
            yield _row(cells, columns, line, dialect, source)
    except csv.Error as exc:
        raise CsvDocumentError(
            f"malformed CSV at line {reader.line_num}: {exc}",
            "CSV-003",
            Location(file=source, line=reader.line_num),
        ) from exc


def _lines(text: str, limit: int, source: str | None) -> Iterator[str]:
    """Lines with their endings, split on LF only (CR stays for the csv module to handle); a line longer
    than ``limit`` characters is refused before the csv module splits it."""
    start = line = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        line += 1
        if end - start > limit:
            raise CsvDocumentError(
                f"line {line} is {end - start:,} characters long, more than the {limit:,} a line may have "
                "(the dialect's max_line_chars)",
                "CSV-005",
                Location(file=source, line=line),
            )
        yield text[start:end]
        start = end


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
