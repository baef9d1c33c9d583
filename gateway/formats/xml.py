"""Hardened XML parsing for partner documents (cXML and in-house XML).

Partner XML is untrusted input. This parser never fetches anything (no DTD
loading, no network, no external entities) and refuses documents that
declare entities at all, which rules out both XXE and entity-expansion
bombs ("billion laughs") before libxml2 sees them; ``huge_tree`` stays off,
so libxml2's own depth and size limits apply too. cXML's customary
``<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/...">`` is accepted: the DTD
is named but never loaded.
"""

from __future__ import annotations

import re

from lxml import etree

from gateway.errors import DocumentError, Location

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


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


def parse_xml(data: bytes, *, source: str | None = None) -> etree._Element:
    """Parse ``data`` into an element tree root; raises :class:`XmlDocumentError`.

    ``source`` names the file in error messages.
    """
    found = _ENTITY_DECL.search(data)
    if found is not None:
        raise XmlDocumentError(
            f"the document declares entities (<!ENTITY at byte {found.start()}); entity declarations are "
            "refused to prevent entity expansion and external entity attacks",
            "XML-001",
            Location(file=source, byte_offset=found.start()),
        )
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        where = f" at line {line}" if line else ""
        raise XmlDocumentError(
            f"not well-formed XML{where}: {exc.msg}", "XML-002", Location(file=source, line=line)
        ) from exc
    if root is None:
        raise XmlDocumentError("the document has no root element", "XML-003", Location(file=source))
    return root
