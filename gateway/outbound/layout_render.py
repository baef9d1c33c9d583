"""A canonical document written through an export layout: CSV, fixed-width or XML bytes (pure).

Every problem with the document is collected and raised at once as a
:class:`~gateway.outbound.render.RenderError`, each located by canonical field path
(``lines[2].unit_price.amount``) and the layout's field name. Nothing is cut or guessed: a value
longer than its fixed-width field is an error, not a truncation.

Codes: ``LAY-001`` a value longer than its fixed-width field, ``LAY-002`` a function failed,
``LAY-003`` a value needs a formatting function, ``LAY-004`` a required value is empty,
``LAY-005`` a line break or control character where the format cannot carry it, ``LAY-006`` a
character the layout's encoding cannot write, ``LAY-007`` the document is not the layout's type,
``LAY-008`` the document does not validate as that type.
"""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from enum import Enum
from typing import Any

from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.errors import DocumentError, Location
from gateway.mapping.functions import EvalContext
from gateway.outbound.layout import Layout, LayoutField, Record, XmlNode
from gateway.outbound.nodes import Elem, ValueFailed
from gateway.outbound.render import RenderError

__all__ = ["parse_document", "render_layout"]

_CONTROL = re.compile("[\x00-\x1f\x7f]")  # a line break or control character: no place in a fixed record
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not even escaped in XML 1.0


class _Lines:
    """The smallest file-like the csv module writes to (the pure core keeps no io buffers)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


class _Run:
    """One document through one layout: values out, problems collected."""

    def __init__(self, layout: Layout, root: BaseModel, base: Location) -> None:
        self.layout = layout
        self.root = root
        self.ctx = EvalContext(tables=layout.tables)
        self.base = base
        self.errors: list[DocumentError] = []

    def fail(self, code: str, message: str, path: str, name: str) -> None:
        self.errors.append(DocumentError(f"{name}: {message}", code, replace(self.base, path=path or "(document)")))

    def text(self, elem: Elem, item: Any, prefix: str, name: str, required: bool) -> tuple[str, str]:
        """The value as text, and the field path it came from ("" with a problem recorded when it cannot be)."""
        try:
            value, source = elem.value(self.root, item, prefix, self.ctx)
        except ValueFailed as exc:
            self.fail("LAY-002", exc.message, exc.source, name)
            return "", exc.source
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is not None and not isinstance(value, str):
            self.fail("LAY-003", f"a {type(value).__name__} needs a formatting function (fn: format_…)", source, name)
            return "", source
        text = value or ""
        if required and not text:
            self.fail("LAY-004", "is required but empty", source, name)
        try:
            if not text.isascii():  # ASCII is in every encoding a layout may name
                text.encode(self.layout.encoding)
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end]
            self.fail("LAY-006", f"{bad!r} cannot be written in {self.layout.encoding}", source, name)
            return "", source
        return text, source

    # csv and fixed width

    def rows(self) -> list[tuple[Record, list[tuple[LayoutField, str, str]]]]:
        """Every record's rows, in the layout's order: (record, [(field, text, source)])."""
        out: list[tuple[Record, list[tuple[LayoutField, str, str]]]] = []
        for record in self.layout.records:
            if record.when is not None and not record.when(self.root, self.root):
                continue
            items = [(self.root, "")]
            if record.each is not None:
                base = record.each.trail("")
                items = [(item, f"{base}[{i}]") for i, item in record.each.items(self.root, self.root)]
            for item, prefix in items:
                row = []
                for f in record.fields:
                    text, source = self.text(f.value, item, prefix, f.name, f.required)
                    row.append((f, text, source))
                out.append((record, row))
        return out

    def csv(self) -> str:
        sink = _Lines()
        writer = csv.writer(
            sink,
            delimiter=self.layout.delimiter,
            quoting=csv.QUOTE_ALL if self.layout.quoting == "all" else csv.QUOTE_MINIMAL,
            lineterminator=self.layout.line_ending,
        )
        if self.layout.header and self.layout.records:
            writer.writerow([f.name for f in self.layout.records[0].fields])
        for _record, row in self.rows():
            writer.writerow([text for _f, text, _s in row])
        return "".join(sink.parts)

    def fixed(self) -> str:
        lines: list[str] = []
        for _record, row in self.rows():
            lines.append("".join(self.box(f, text, source) for f, text, source in row))
        return "".join(line + self.layout.line_ending for line in lines)

    def box(self, f: LayoutField, text: str, source: str) -> str:
        """``text`` aligned and padded to the field's width (counted in encoded bytes); never cut."""
        if _CONTROL.search(text) is not None:
            self.fail("LAY-005", f"{text!r} holds a line break or control character", source, f.name)
            return ""
        width = f.width or 0
        size = len(text.encode(self.layout.encoding))
        if size > width:
            self.fail("LAY-001", f"{text!r} is {size} characters; the field is {width} wide", source, f.name)
            return ""
        fill = f.pad * (width - size)
        if f.align == "left":
            return text + fill
        if f.pad == "0" and text.startswith("-"):  # -12.50 in 8 zero-padded: -0012.50, not 00-12.50
            return "-" + fill + text[1:]
        return fill + text

    # xml

    def xml(self) -> bytes:
        assert self.layout.root is not None
        elements = self.element(self.layout.root, self.root, "")
        if self.errors:
            return b""
        if not elements:
            self.fail("LAY-004", "the document gives the root element nothing to hold", "", self.layout.root.name)
            return b""
        tree = elements[0]
        if self.layout.indent:
            etree.indent(tree, space="  ")
        data = etree.tostring(tree, xml_declaration=self.layout.declaration, encoding=self.layout.encoding)
        return bytes(data) + "\n".encode(self.layout.encoding)

    def element(self, node: XmlNode, item: Any, prefix: str) -> list[etree._Element]:
        """The elements ``node`` writes here: none (``when`` false, nothing to hold), one, or one per item."""
        if node.when is not None and not node.when(self.root, item):
            return []
        items = [(item, prefix)]
        if node.each is not None:
            base = node.each.trail(prefix)
            items = [(inner, f"{base}[{i}]") for i, inner in node.each.items(self.root, item)]
        out = []
        for inner, where in items:
            built = self.one(node, inner, where)
            if built is not None:
                out.append(built)
        if not out and node.required:
            self.fail("LAY-004", "is required but the document gives it nothing", prefix, node.name)
        return out

    def one(self, node: XmlNode, item: Any, prefix: str) -> etree._Element | None:
        """The element for one item, or None when it would hold nothing (no text, attribute or child)."""
        attrib = {}
        for attr, elem in node.attributes:
            text, source = self.text(elem, item, prefix, f"{node.name}@{attr}", False)
            if text and self.xml_ok(text, source, f"{node.name}@{attr}"):
                attrib[attr] = text
        value = ""
        if node.value is not None:
            text, source = self.text(node.value, item, prefix, node.name, node.required)
            value = text if text and self.xml_ok(text, source, node.name) else ""
        children = [el for child in node.children for el in self.element(child, item, prefix)]
        if not value and not children and not attrib:
            if node.required and node.value is None:
                self.fail("LAY-004", "is required but the document gives it nothing", prefix, node.name)
            return None
        namespace = self.layout.namespace
        tag = f"{{{namespace}}}{node.name}" if namespace else node.name
        # The namespace is declared once, on the root; the children's qualified tags inherit it.
        el = etree.Element(tag, attrib, nsmap={None: namespace} if namespace and node is self.layout.root else None)
        if value:
            el.text = value
        el.extend(children)
        return el

    def xml_ok(self, text: str, source: str, name: str) -> bool:
        """XML 1.0 cannot carry most control characters, even escaped."""
        if _NOT_XML.search(text) is None:
            return True
        self.fail("LAY-005", f"{text!r} holds a control character XML cannot carry", source, name)
        return False


def parse_document(layout: Layout, document: dict[str, Any], location: Location | None = None) -> BaseModel:
    """The canonical JSON object as the layout's document type; RenderError (LAY-007/008) when it is not one."""
    base = location or Location()
    found = document.get("document_type")
    if found != layout.document:
        error = DocumentError(f"layout {layout.name} writes {layout.document}, not {found}", "LAY-007", base)
        raise RenderError([error], f"layout {layout.name}")
    try:
        return layout.model.model_validate(document)
    except ValidationError as exc:
        errors = [
            DocumentError(e["msg"], "LAY-008", replace(base, path=".".join(str(p) for p in e["loc"])))
            for e in exc.errors()
        ]
        raise RenderError(errors, f"layout {layout.name}") from exc


def render_layout(layout: Layout, document: BaseModel, location: Location | None = None) -> bytes:
    """``document`` written through ``layout``; RenderError listing every problem, located by field path."""
    if not isinstance(document, layout.model):
        error = DocumentError(
            f"layout {layout.name} writes {layout.document}, not {type(document).__name__}", "LAY-007"
        )
        raise RenderError([error], f"layout {layout.name}")
    run = _Run(layout, document, location or Location())
    if layout.format == "xml":
        data = run.xml()
    else:
        text = run.csv() if layout.format == "csv" else run.fixed()
        data = b"" if run.errors else text.encode(layout.encoding)
    if run.errors:
        raise RenderError(run.errors, f"{layout.document} through layout {layout.name}")
    return data
