"""Hardened XML parsing for partner documents (cXML and in-house XML).

Partner XML is untrusted input. This parser never fetches anything (no DTD
loading, no network, no external entities) and refuses documents that
declare entities at all, which rules out both XXE and entity-expansion
bombs ("billion laughs") before libxml2 sees them; ``huge_tree`` stays off,
so libxml2's own depth and size limits apply too. cXML's customary
``<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/...">`` is accepted: the DTD
is named but never loaded.

The guard reads what the parser reads: the encoding is found first (byte-order mark, the
NUL pattern of UTF-16/32 without one, else the XML declaration's ``encoding``), and a
document in any encoding that is not a plain ASCII superset is decoded here, checked, and
handed to libxml2 as the UTF-8 text that was checked. Entity declarations and internal DTD
subsets are refused in every encoding.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import AnyStr

from lxml import etree

from gateway.errors import DocumentError, Location
from gateway.formats.encoding import encoding_name, unicode_encoding

_ENTITY = r"<!ENTITY"
#: ``<!DOCTYPE name ... [``: a DTD internal subset, where entities (and worse) are declared.
_SUBSET = r"<!DOCTYPE\s[^>\[]*\["
_REFUSED = ((_ENTITY, "declares entities (<!ENTITY"), (_SUBSET, "has a DTD internal subset (<!DOCTYPE ... ["))
_TEXT_GUARD = tuple((re.compile(p, re.IGNORECASE), what) for p, what in _REFUSED)
_BYTES_GUARD = tuple((re.compile(p.encode(), re.IGNORECASE), what) for p, what in _REFUSED)
_DECLARATION = re.compile(rb"\s*<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z][\w.:-]*)[\"']")
_TEXT_DECLARATION = re.compile(r"\A\s*<\?xml\s[^>]*\?>")
#: Encodings in which ``<!ENTITY`` and ``<!DOCTYPE`` are the same bytes as in ASCII: checked and parsed raw.
_ASCII_SUPERSETS = frozenset(
    ["utf-8", "ascii", "latin-1"] + [f"iso8859-{n}" for n in range(2, 17)] + [f"cp{n}" for n in range(1250, 1259)]
)


class XmlDocumentError(DocumentError):
    """The bytes are not XML we accept; ``location`` has the line and byte where known."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def xml_encoding(data: bytes) -> tuple[str, int]:
    """``(codec, BOM length)`` of an XML document: BOM, UTF-16/32 NUL pattern, declaration, else UTF-8."""
    found = unicode_encoding(data)
    if found is not None:
        return found
    declared = _DECLARATION.match(data[:512])
    return (declared.group(1).decode("ascii").lower() if declared else "utf-8"), 0


def looks_like_xml(data: bytes) -> bool:
    """The first non-blank character is ``<`` in the document's encoding (UTF-16/32 included)."""
    found = unicode_encoding(data)
    if found is None or found[0] == "utf-8":
        return data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")
    codec, bom = found
    width = 4 if "32" in codec else 2
    head = data[bom : bom + 64 * width]
    return head[: len(head) - len(head) % width].decode(codec, "replace").lstrip().startswith("<")


def _checked_text(data: bytes, source: str | None) -> bytes:
    """The bytes libxml2 will parse, after the entity and DTD guard, in the document's encoding."""
    codec, bom = xml_encoding(data)
    try:
        name = codecs.lookup(codec).name
    except LookupError as exc:
        raise XmlDocumentError(
            f"the XML declaration names an unknown encoding {codec!r}", "XML-004", Location(file=source)
        ) from exc
    if name in _ASCII_SUPERSETS:
        _guard(_BYTES_GUARD, data, source, lambda i: i)
        return data
    try:
        text = data[bom:].decode(name)
    except UnicodeDecodeError as exc:
        raise XmlDocumentError(
            f"not valid {encoding_name(name)} at byte {exc.start + bom}: {exc.reason}",
            "XML-005",
            Location(file=source, byte_offset=exc.start + bom),
        ) from exc
    _guard(_TEXT_GUARD, text, source, lambda i: bom + len(text[:i].encode(name)))
    # The declaration names the old encoding: dropped (its line breaks kept, for line numbers).
    declaration = _TEXT_DECLARATION.match(text)
    if declaration is not None:
        text = "\n" * declaration.group(0).count("\n") + text[declaration.end() :]
    return text.encode("utf-8")


def _guard(
    guard: tuple[tuple[re.Pattern[AnyStr], str], ...], text: AnyStr, source: str | None, offset: Callable[[int], int]
) -> None:
    """Raise XML-001 at the first entity declaration or internal DTD subset in ``text``."""
    for pattern, what in guard:
        found = pattern.search(text)
        if found is not None:
            at = offset(found.start())
            raise XmlDocumentError(
                f"the document {what} at byte {at}); entity declarations and DTDs are "
                "refused to prevent entity expansion and external entity attacks",
                "XML-001",
                Location(file=source, byte_offset=at),
            )


def parse_xml(data: bytes, *, source: str | None = None) -> etree._Element:
    """Parse ``data`` into an element tree root; raises :class:`XmlDocumentError`.

    ``source`` names the file in error messages.
    """
    checked = _checked_text(data, source)
    try:
        root = etree.fromstring(checked, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        where = f" at line {line}" if line else ""
        raise XmlDocumentError(
            f"not well-formed XML{where}: {exc.msg}", "XML-002", Location(file=source, line=line)
        ) from exc
    if root is None:
        raise XmlDocumentError("the document has no root element", "XML-003", Location(file=source))
    return root
