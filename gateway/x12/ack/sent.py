"""Reading back an acknowledgment interchange we built: its ISA13, and whether it holds a group.

An ISA is fixed width (106 characters with its terminator): ISA13 is at characters 90-99, the element
separator at 3 and the segment terminator at 105. The runtime names what it sends from these, so the
byte offsets live here, with the X12 code, not in the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.x12.model import SetStart
from gateway.x12.reader import read_events

__all__ = ["SentSet", "carries_group", "interchange_control", "sent_sets"]


def interchange_control(data: bytes) -> str:
    """ISA13 of an interchange we built (a fixed-width ISA)."""
    return data[90:99].decode("latin-1")


def carries_group(data: bytes) -> bool:
    """True when an acknowledgment interchange holds a functional group (a 997/999), not only a TA1."""
    element, terminator = data[3:4], data[105:106]
    return any(terminator + gap + b"GS" + element in data for gap in (b"", b"\n", b"\r\n"))


@dataclass(frozen=True, slots=True)
class SentSet:
    """One transaction set of an interchange we sent, named as a 997/999 (or TA1) will quote it."""

    interchange: str  # ISA13
    functional_id: str  # GS01
    group_control: str  # GS06
    version: str  # GS08
    set_id: str  # ST01
    set_control: str  # ST02


def sent_sets(data: bytes) -> list[SentSet]:
    """Every transaction set of ``data`` (an interchange we built) with its envelope's control numbers,
    in file order; acknowledgment sets (997/999) are left out: nobody acknowledges them."""
    out: list[SentSet] = []
    for ev in read_events(data):
        if isinstance(ev, SetStart):
            header = ev.header
            group = header.group
            if group is None or header.set_id in ("997", "999"):
                continue
            out.append(
                SentSet(
                    header.interchange.control_number,
                    group.functional_id,
                    group.control_number,
                    group.version,
                    header.set_id,
                    header.control_number,
                )
            )
    return out
