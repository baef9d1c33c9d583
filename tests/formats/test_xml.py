"""Hardened XML parsing: no entity expansion, no external fetches, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS

from gateway.formats.xml import XmlDocumentError, parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>"""

CXML = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.050/cXML.dtd">
<cXML payloadID="1@example" timestamp="2026-11-23T10:00:00-05:00"><Request><OrderRequest/></Request></cXML>"""


def test_billion_laughs_is_refused_clearly() -> None:
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(BILLION_LAUGHS, source="inbox/saas/po.xml")
    assert err.value.code == "XML-001"
    assert "entity" in str(err.value) and "inbox/saas/po.xml" in str(err.value)
    assert err.value.location.byte_offset == BILLION_LAUGHS.index(b"<!ENTITY")


def test_external_entity_is_refused() -> None:
    with pytest.raises(XmlDocumentError):
        parse_xml(XXE)


def test_cxml_doctype_parses_without_fetching() -> None:
    root = parse_xml(CXML)
    assert root.tag == "cXML" and root.find("Request/OrderRequest") is not None


def test_malformed_xml_names_the_line() -> None:
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(b"<a>\n<b>\n</a>", source="x.xml")
    assert err.value.code == "XML-002" and "line" in str(err.value)


def test_corpus_xml_parses(corpus: Path) -> None:
    files = sorted((CORPUS / "xml").rglob("*.xml"))
    assert files
    for path in files:
        root = parse_xml(path.read_bytes(), source=path.name)
        assert root.tag
