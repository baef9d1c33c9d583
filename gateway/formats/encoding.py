"""What a file's bytes are, before any format reads them: Unicode encodings and binary content.

XML may come in UTF-16 or UTF-32, with or without a byte-order mark (XML 1.0, appendix F);
everything else the gateway reads (X12, CSV) is ASCII-compatible text. These functions tell
them apart from the first bytes, so that a guard can read what the parser will read, and a
user is told "UTF-16 text" or "binary" instead of a misleading format error.
"""

from __future__ import annotations

_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)

_NAMES = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "utf-32-le": "UTF-32LE",
    "utf-32-be": "UTF-32BE",
}


def unicode_encoding(data: bytes) -> tuple[str, int] | None:
    """``(codec, BOM length)`` from a byte-order mark or the NUL pattern of UTF-16/32 text, else None.

    Without a BOM, the first character (ASCII in every text format we read: ``<``, ``I``, a
    letter, white space) shows the width and order: ``00 00 00 3C`` UTF-32BE, ``3C 00 00 00``
    UTF-32LE, ``00 3C`` UTF-16BE, ``3C 00`` UTF-16LE.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    head = data[:4]
    if len(head) == 4 and head[:3] == b"\x00\x00\x00" and head[3]:
        return "utf-32-be", 0
    if len(head) == 4 and head[0] and head[1:] == b"\x00\x00\x00":
        return "utf-32-le", 0
    if len(head) >= 2 and head[0] == 0 and head[1]:
        return "utf-16-be", 0
    if len(head) >= 2 and head[0] and head[1] == 0:
        return "utf-16-le", 0
    return None


def encoding_name(codec: str) -> str:
    """``UTF-16LE`` for ``utf-16-le``: the name a user knows."""
    return _NAMES.get(codec, codec.upper())


def describe_content(data: bytes) -> str | None:
    """What the bytes are when they are not ASCII-compatible text (None when they are).

    ``"UTF-16LE text (with a byte-order mark) starting 'ISA*00*...'"`` or ``"binary content
    (a NUL byte at offset 12)"``: for error messages about files no reader can take.
    """
    found = unicode_encoding(data)
    if found is not None and found[0] != "utf-8":
        codec, bom = found
        sample = data[bom : bom + 256]
        sample = sample[: len(sample) - len(sample) % (4 if "32" in codec else 2)]
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            text = None
        if text and all(c.isprintable() or c in "\r\n\t" for c in text):
            how = "with a byte-order mark" if bom else "no byte-order mark"
            return f"{encoding_name(codec)} text ({how}) starting {text.strip()[:24]!r}"
    nul = data.find(b"\x00", 0, 65536)
    if nul >= 0:
        return f"binary content (a NUL byte at offset {nul})"
    head = data[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not a character cut at the end of the sample
            controls = sum(1 for b in head if b < 9 or 13 < b < 32)
            if controls * 20 > len(head):
                return f"binary content ({controls} control bytes in the first {len(head)})"
    return None
