"""Reading back an acknowledgment interchange we built: its ISA13, and whether it holds a group.

An ISA is fixed width (106 characters with its terminator): ISA13 is at characters 90-99, the element
separator at 3 and the segment terminator at 105. The runtime names what it sends from these, so the
byte offsets live here, with the X12 code, not in the runtime.
"""

from __future__ import annotations

__all__ = ["carries_group", "interchange_control"]


def interchange_control(data: bytes) -> str:
    """ISA13 of an interchange we built (a fixed-width ISA)."""
    return data[90:99].decode("latin-1")


def carries_group(data: bytes) -> bool:
    """True when an acknowledgment interchange holds a functional group (a 997/999), not only a TA1."""
    element, terminator = data[3:4], data[105:106]
    return any(terminator + gap + b"GS" + element in data for gap in (b"", b"\n", b"\r\n"))
