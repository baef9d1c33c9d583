"""A compiled export layout: records of fields (CSV, fixed width) or a tree of XML elements.

Compiled by :mod:`gateway.outbound.layout`, written by :mod:`gateway.outbound.layout_render`; the
values are the X12 maps' own :class:`~gateway.outbound.nodes.Elem` and :class:`~gateway.outbound.nodes.Cond`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from gateway.mapping.functions import CodeTable
from gateway.outbound.nodes import Cond, Elem
from gateway.outbound.paths import FieldPath

__all__ = ["MEDIA_TYPES", "Layout", "LayoutField", "Record", "XmlNode"]

MEDIA_TYPES = {"csv": "text/csv", "fixed": "text/plain", "xml": "application/xml"}


@dataclass(slots=True)
class LayoutField:
    """One CSV column or fixed-width field: a header name, a value, and for fixed width its box."""

    name: str
    value: Elem
    required: bool = False
    width: int | None = None
    align: Literal["left", "right"] = "left"
    pad: str = " "


@dataclass(slots=True)
class Record:
    """One kind of row: written once (optionally ``when``) or once per item of ``each``."""

    name: str
    fields: list[LayoutField]
    each: FieldPath | None = None
    when: Cond | None = None


@dataclass(slots=True)
class XmlNode:
    """One XML element: text from ``value``, attributes, children; repeated per item of ``each``."""

    name: str
    value: Elem | None = None
    attributes: list[tuple[str, Elem]] = field(default_factory=list)
    children: list[XmlNode] = field(default_factory=list)
    each: FieldPath | None = None
    when: Cond | None = None
    required: bool = False


@dataclass(slots=True)
class Layout:
    """A checked layout: what it writes (``format``) and how; ``tables`` are the code tables it sees."""

    name: str
    document: str
    model: type[BaseModel]
    format: str
    origin: str
    records: list[Record] = field(default_factory=list)
    root: XmlNode | None = None
    extension: str = "csv"
    encoding: str = "utf-8"
    line_ending: str = "\r\n"
    delimiter: str = ","
    header: bool = True
    quoting: Literal["minimal", "all"] = "minimal"
    namespace: str | None = None
    declaration: bool = True
    indent: bool = True
    tables: dict[str, CodeTable] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        """The Content-Type of the written bytes (with the charset for text)."""
        return f"{MEDIA_TYPES[self.format]}; charset={self.encoding}"
