"""Giving an interchange we sent new control numbers, to send it again (pure: the caller passes the
number and the time).

A resend must not reuse a control number: the partner's gateway would drop it as a duplicate (TA1
note 025) or match our resend to its first answer. ISA13, GS06 and IEA02/GE02 take ``number``; ST02
and SE02 count 1, 2, ... inside each group, as :class:`gateway.runtime.send.ControlCounter` numbers
them, keeping their width; ISA09/ISA10 and GS04/GS05 take ``when``. The content is not touched.
Delimiters come from the fixed-width ISA (element separator at 3, terminator at 105), so this only
takes interchanges whose ISA is fixed width, as everything the gateway writes is.
"""

from __future__ import annotations

from datetime import datetime

from gateway.errors import DocumentError, Location

__all__ = ["renumber"]

ISA_LENGTH = 106


def renumber(data: bytes, number: int, when: datetime) -> bytes:
    """``data`` with interchange and group control number ``number`` and its sets renumbered from 1.
    Raises DocumentError (ACK-001) when ``data`` does not start with a fixed-width ISA."""
    if len(data) < ISA_LENGTH or not data.startswith(b"ISA"):
        raise DocumentError("not an interchange with a fixed-width ISA: cannot renumber it", "ACK-001", Location())
    if not 0 < number <= 999_999_999:
        raise ValueError(f"an interchange control number is 1 to 999999999, not {number}")
    text = data.decode("latin-1")
    element, terminator = text[3], text[105]
    isa13 = f"{number:09d}"
    out: list[str] = []
    set_number = 0
    current = ""
    for raw in text.split(terminator):
        body = raw.lstrip("\r\n")
        lead = raw[: len(raw) - len(body)]
        fields = body.split(element)
        tag = fields[0]
        if tag == "ISA" and len(fields) > 13:
            fields[9], fields[10], fields[13] = when.strftime("%y%m%d"), when.strftime("%H%M"), isa13
        elif tag == "IEA" and len(fields) > 2:
            fields[2] = isa13
        elif tag == "GS" and len(fields) > 6:
            fields[4], fields[5], fields[6] = when.strftime("%Y%m%d"), when.strftime("%H%M"), str(number)
            set_number = 0
        elif tag == "GE" and len(fields) > 2:
            fields[2] = str(number)
        elif tag == "ST" and len(fields) > 2:
            set_number += 1
            fields[2] = str(set_number).zfill(max(4, len(fields[2])))
            current = fields[2]
        elif tag == "SE" and len(fields) > 2 and set_number:
            fields[2] = current
        out.append(lead + element.join(fields))
    return terminator.join(out).encode("latin-1")
