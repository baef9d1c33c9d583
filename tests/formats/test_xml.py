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


# --- the entity guard in every encoding (issue 9) -------------------------------------------------

INJECTION = """<?xml version="1.0" encoding="{enc}"?>
<!DOCTYPE OrderRequest [ <!ENTITY po "INJECTED-PO"> ]>
<OrderRequest><OrderRequestHeader orderID="&po;"/></OrderRequest>
"""

ENCODINGS = [
    ("UTF-8", "utf-8", b""),
    ("UTF-16", "utf-16-le", b"\xff\xfe"),
    ("UTF-16", "utf-16-be", b"\xfe\xff"),
    ("UTF-16", "utf-16-le", b""),
    ("UTF-16", "utf-16-be", b""),
    ("UTF-32", "utf-32-le", b"\xff\xfe\x00\x00"),
    ("UTF-32", "utf-32-be", b"\x00\x00\xfe\xff"),
    ("UTF-32", "utf-32-le", b""),
    ("UTF-32", "utf-32-be", b""),
]


@pytest.mark.parametrize(
    ("declared", "codec", "bom"), ENCODINGS, ids=[f"{c}{'-bom' if b else ''}" for _, c, b in ENCODINGS]
)
def test_entity_declarations_are_refused_in_every_encoding(declared: str, codec: str, bom: bytes) -> None:
    data = bom + INJECTION.format(enc=declared).encode(codec)
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(data)
    assert err.value.code == "XML-001"
    assert err.value.location is not None
    offset = err.value.location.byte_offset
    assert offset is not None and data[offset:].startswith("<!ENTITY".encode(codec))


def test_an_internal_dtd_subset_without_entities_is_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE a [ <!ATTLIST a x CDATA "1"> ]><a/>'
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(data)
    assert err.value.code == "XML-001" and "DTD" in err.value.message


def test_an_encoding_that_hides_ascii_is_decoded_before_the_guard() -> None:
    # UTF-7 spells "<" as "+ADw-": a byte scan for "<!ENTITY" sees nothing.
    data = b'<?xml version="1.0" encoding="UTF-7"?>\n<!DOCTYPE a [+ADw-!ENTITY e "X">]><a>&e;</a>'
    assert b"<!ENTITY" not in data and "<!ENTITY" in data.decode("utf-7")
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(data)
    assert err.value.code == "XML-001"


@pytest.mark.parametrize(("codec", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b""), ("utf-32-le", b"")])
def test_utf16_and_utf32_xml_without_entities_parses(codec: str, bom: bytes) -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.050/cXML.dtd">\n<cXML payloadID="é-1"><Header/></cXML>'
    root = parse_xml(bom + text.encode(codec))
    assert root.tag == "cXML" and root.get("payloadID") == "é-1"


def test_unknown_or_wrong_encodings_are_clear_errors() -> None:
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(b'<?xml version="1.0" encoding="no-such-enc"?><a/>')
    assert err.value.code == "XML-004" and "no-such-enc" in err.value.message
    with pytest.raises(XmlDocumentError) as err:
        parse_xml(b"\xff\xfe<\x00a\x00/\x00>\x00\x00\xd8")  # a lone surrogate
    assert err.value.code in ("XML-005", "XML-002")
