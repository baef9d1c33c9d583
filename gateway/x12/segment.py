"""Segments and delimiters: the values the reader produces and the writer takes."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter


def is_digits(value: str) -> bool:
    """True for ASCII digits only (``str.isdigit`` also accepts ``²`` and friends)."""
    return value.isascii() and value.isdigit()


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four X12 delimiters of one interchange.

    ``segment`` is normally one character; ``suffix`` is what follows each
    terminator in the file (``"\\n"``, ``"\\r\\n"`` or ``""``) and is written
    back the same way. ``repetition`` is ``None`` before version 00402,
    where ISA11 is the standards identifier ``U`` instead.
    """

    element: str = "*"
    component: str = ">"
    repetition: str | None = None
    segment: str = "~"
    suffix: str = ""

    def chars(self) -> tuple[str, ...]:
        """The delimiter characters in use (for escaping checks)."""
        chars = [self.element, self.component, self.segment]
        if self.repetition:
            chars.append(self.repetition)
        return tuple(chars)


class Segment(tuple):  # type: ignore[type-arg]
    """One segment: ``(elements, offset, index)``, immutable.

    ``elements[0]`` is the segment id, so ``seg[n]`` style access uses
    :meth:`element` with X12 numbering (``element(1)`` is BEG01).
    ``offset`` is the byte offset of the segment's first byte in the file;
    ``index`` counts segments from 1 at the ISA of its interchange.

    A tuple subclass built with ``tuple.__new__`` because the reader makes
    millions of these; it is measurably cheaper than a slotted class (see
    ``docs/performance.md``).
    """

    __slots__ = ()

    elements: list[str] = property(itemgetter(0))  # type: ignore[assignment]
    offset: int = property(itemgetter(1))  # type: ignore[assignment]
    index: int = property(itemgetter(2))  # type: ignore[assignment]

    def __new__(cls, elements: list[str], offset: int = 0, index: int = 0) -> Segment:
        return tuple.__new__(cls, (elements, offset, index))

    @property
    def id(self) -> str:
        """The segment id, e.g. ``"BEG"``."""
        elements: list[str] = self[0]
        return elements[0]

    def element(self, position: int) -> str:
        """Element ``position`` (1-based) or ``""`` when absent."""
        els = self[0]
        return els[position] if position < len(els) else ""

    def components(self, position: int, delimiters: Delimiters) -> list[str]:
        """Element ``position`` split on the component separator."""
        return self.element(position).split(delimiters.component)

    def repeats(self, position: int, delimiters: Delimiters) -> list[str]:
        """Element ``position`` split on the repetition separator (if any)."""
        value = self.element(position)
        if delimiters.repetition is None:
            return [value]
        return value.split(delimiters.repetition)

    @property
    def element_count(self) -> int:
        """How many data elements the segment carries (trailing empties included)."""
        return len(self[0]) - 1

    def text(self, delimiters: Delimiters) -> str:
        """The segment as X12 text, without its terminator."""
        return delimiters.element.join(self[0])

    def __repr__(self) -> str:
        return f"Segment({'*'.join(self[0])!r}, offset={self[1]}, index={self[2]})"
