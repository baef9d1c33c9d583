"""``gateway translate`` says what a file is; XML in UTF-16/32 translates, and its entities are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from gateway.cli.main import main
from gateway.formats.encoding import describe_content

CARELINK = REPO / "partners" / "carelink" / "cases" / "invoice.xml"
X12 = REPO / "samples" / "x12" / "855-4010-medsupply-ack.edi"


def translate(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["translate", *args, "--home", str(REPO), str(path)])
    return result.exit_code, result.output


def documents(output: str) -> list[dict]:
    out = []
    for r in json.loads(output)["results"]:
        doc = dict(r["document"])
        doc.pop("provenance", None)
        out.append(doc)
    return out


def test_a_binary_file_is_called_binary(tmp_path: Path) -> None:
    path = tmp_path / "image.edi"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    code, out = translate(path)
    assert code == 1
    assert "binary content" in out and "CSV needs a partner" not in out


def test_utf16_x12_is_named_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "utf16.edi"
    path.write_bytes(X12.read_text("utf-8").encode("utf-16"))
    code, out = translate(path)
    assert code == 1
    assert "UTF-16LE text" in out and "'ISA*00*" in out and "re-encode" in out
    assert "CSV needs a partner" not in out


@pytest.mark.parametrize(("codec", "bom"), [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b""), ("utf-32-be", b"")])
def test_utf16_cxml_translates_like_utf8(tmp_path: Path, codec: str, bom: bytes) -> None:
    code, out = translate(CARELINK, "--json")
    assert code == 0, out
    expected = documents(out)
    text = CARELINK.read_text("utf-8").replace('encoding="UTF-8"', f'encoding="{codec[:6].upper()}"')
    path = tmp_path / "invoice.xml"
    path.write_bytes(bom + text.encode(codec))
    code, out = translate(path, "--json")
    assert code == 0, out
    assert documents(out) == expected


def test_an_entity_injection_in_utf16be_without_bom_is_refused(tmp_path: Path) -> None:
    text = CARELINK.read_text("utf-8").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    head, rest = text.split("\n", 1)
    rest = rest.replace(
        '<!DOCTYPE cXML SYSTEM "http://xml.cxml.org/schemas/cXML/1.2.056/InvoiceDetail.dtd">',
        '<!DOCTYPE cXML [ <!ENTITY po "INJECTED-PO"> ]>',
    )
    assert "<!ENTITY" in rest
    path = tmp_path / "injected.xml"
    path.write_bytes((head + "\n" + rest).encode("utf-16-be"))
    code, out = translate(path, "--json")
    assert code == 1
    assert "XML-001" in out and "INJECTED-PO" not in out


def test_describe_content() -> None:
    assert describe_content(b"ISA*00*") is None
    assert describe_content("a;b;c\nä;ö;ü\n".encode("latin-1")) is None, "Latin-1 CSV is text"
    assert describe_content(b"abc\x00def") == "binary content (a NUL byte at offset 3)"
    assert (describe_content("ISA*00".encode("utf-16-be")) or "").startswith("UTF-16BE text (no byte-order mark)")
