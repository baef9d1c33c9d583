"""How file names are shown in logs and on terminals (``fsutil.printable``): one line, reversible."""

from __future__ import annotations

from gateway.runtime.fsutil import printable


def test_every_ascii_character_is_shown_as_itself_or_escaped() -> None:
    """The usual name (printable ASCII, no backslash) comes back as it is; every other ASCII character
    is escaped, whether the name takes the quick way or not."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
    for code in range(128):
        ch = chr(code)
        shown = named.get(ch) or (ch if ch.isprintable() else f"\\x{code:02x}")
        assert printable(f"855-{ch}.edi") == f"855-{shown}.edi", code
        assert printable(f"855-é{ch}.edi") == f"855-é{shown}.edi", code


def test_names_beyond_ascii() -> None:
    assert printable("855-\udcff.edi") == "855-\\xff.edi"  # a byte that is not UTF-8
    assert printable("po\u2028x\u200b.edi") == "po\\u2028x\\u200b.edi"  # line separator, zero-width space
    assert printable("bon-de-commande-é.edi") == "bon-de-commande-é.edi"
