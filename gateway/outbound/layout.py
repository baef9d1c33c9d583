"""Export layouts: outbound maps that write a canonical document as CSV, fixed-width or XML (pure).

A layout is an outbound map (``maps/outbound/**.yaml``, ``partners/<id>/outbound/*.yaml``) whose
``target`` names a file format instead of an X12 set. Its values are written in the same value
language as the X12 maps (:class:`~gateway.outbound.compiler.ValueCompiler`: field paths, ``$.``,
``const``, ``first_of``, ``fn`` with parameters, ``default``, ``when``), so a layout is checked when
it loads: every path against the canonical model, every function and table, dates and decimals
given a formatting function. ``docs/exports.md`` describes the format; in short::

    map: ap-invoice-lines-csv
    document: invoice
    target: {format: csv, header: true}         # csv | fixed | xml; extension, encoding, line_ending
    each: lines                                  # one row per line (omit: one row per document)
    fields:
      - {name: InvoiceNumber, value: $.invoice_number, required: true}
      - {name: Quantity, value: {from: quantity.value, fn: format_number, places: 2}}

Fixed-width fields add ``width``, ``align`` (left/right) and ``pad``; several record types are
``records: [{name, each?, when?, fields}]``. An XML layout gives ``root: {name, attributes,
value, children, each, when}``. The compiled form is :mod:`gateway.outbound.layout_nodes`, rendering
:mod:`gateway.outbound.layout_render`.

Problem codes: ``MAP-640`` target, ``MAP-641`` top-level keys, ``MAP-642`` a field or record,
``MAP-643`` fixed-width settings, ``MAP-644`` ``each`` is not a list, ``MAP-645`` CSV header
with several record types, ``MAP-646`` an XML name, ``MAP-034`` a layout name defined twice.
"""

from __future__ import annotations

import codecs
import re
import typing
from collections.abc import Mapping
from typing import Any

from gateway.mapping.functions import CodeTable, FunctionRegistry
from gateway.mapping.library import load_tables, load_yaml_file
from gateway.mapping.marked import Mark, MDict, key_mark, mark_of
from gateway.mapping.problems import Problems, did_you_mean
from gateway.outbound.compiler import ValueCompiler, check_header, local_tables
from gateway.outbound.layout_nodes import Layout, LayoutField, Record, XmlNode
from gateway.outbound.nodes import Cond, Elem
from gateway.outbound.paths import FieldPath

__all__ = [
    "FORMATS",
    "Layout",
    "LayoutField",
    "Record",
    "XmlNode",
    "build_layouts",
    "compile_layout",
    "is_layout",
]

FORMATS = ("csv", "fixed", "xml")
EXTENSIONS = {"csv": "csv", "fixed": "txt", "xml": "xml"}
TOP_KEYS = ("map", "document", "description", "target", "tables", "each", "when", "fields", "records", "root")
TARGET_KEYS = {
    "csv": {"format", "extension", "encoding", "line_ending", "delimiter", "header", "quoting"},
    "fixed": {"format", "extension", "encoding", "line_ending"},
    "xml": {"format", "extension", "encoding", "namespace", "declaration", "indent"},
}
FIELD_KEYS = {"name", "value", "required", "description", "width", "align", "pad"}
RECORD_KEYS = {"name", "each", "when", "fields", "description"}
XML_KEYS = {"name", "value", "attributes", "children", "each", "when", "required", "description"}
LINE_ENDINGS = {"crlf": "\r\n", "lf": "\n"}
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def is_layout(raw: Any) -> bool:
    """Whether a loaded outbound map file is a layout (``target.format`` is csv, fixed or xml)."""
    target = raw.get("target") if isinstance(raw, dict) else None
    return isinstance(target, dict) and str(target.get("format", "")) in FORMATS


class LayoutCompiler(ValueCompiler):
    """Compiles one layout's records or XML tree against the canonical model."""

    medium = "text"

    def each(self, spec: Mapping[str, Any], item: Any, key: str) -> tuple[FieldPath | None, Any, bool]:
        """``each`` (when given): the list path, the item type inside it, and whether it is usable."""
        if "each" not in spec:
            return None, item, True
        mark = key_mark(spec, "each")
        path = self.path(str(spec["each"]), item, mark, key)
        if path is None:
            return None, item, False
        if path.kind != "list" and not path.picks:
            self.problems.add("MAP-644", f"each: {path.text} is not a list", mark, key)
            return None, item, False
        return path, path.annotation if path.picks else typing.get_args(path.annotation)[0], True

    def when(self, spec: Mapping[str, Any], item: Any, key: str) -> Cond | None:
        """``when`` (when given)."""
        return self.condition(spec["when"], item, key_mark(spec, "when"), key) if "when" in spec else None

    def unknown(self, spec: Mapping[str, Any], allowed: set[str], code: str, what: str, key: str) -> bool:
        """Report keys outside ``allowed``; True when there were none."""
        bad = sorted(str(k) for k in set(spec) - allowed)
        for name in bad:
            hint = did_you_mean(name, allowed)
            self.problems.add(
                code, f"{what} takes {', '.join(sorted(allowed))}, not {name!r}{hint}", key_mark(spec, name), key
            )
        return not bad

    def field(self, spec: Any, item: Any, fixed: bool, key: str) -> LayoutField | None:
        """``{name, value, required?}`` plus, for fixed width, ``width`` (required), ``align``, ``pad``."""
        mark = mark_of(spec)
        if not isinstance(spec, dict) or "name" not in spec or "value" not in spec:
            self.problems.add("MAP-642", "a field is {name: N, value: PATH or value spec}", mark, key)
            return None
        key = f"{key}({spec['name']})"
        ok = self.unknown(spec, FIELD_KEYS, "MAP-642", "a field", key)
        value = self.elem(spec["value"], item, key_mark(spec, "value"), key)
        out = LayoutField(str(spec["name"]), value or Elem(), bool(spec.get("required", False)))
        if fixed:
            ok = self.box(spec, out, key) and ok
        else:
            for name in ("width", "align", "pad"):
                if name in spec:
                    self.problems.add("MAP-643", f"`{name}` is for fixed-width layouts", key_mark(spec, name), key)
                    ok = False
        return out if ok and value is not None else None

    def box(self, spec: Mapping[str, Any], out: LayoutField, key: str) -> bool:
        """A fixed-width field's ``width`` (a positive integer), ``align`` and one-character ``pad``."""
        width, align, pad = spec.get("width"), spec.get("align", "left"), spec.get("pad", " ")
        ok = True
        if not str(width).isdigit() or int(str(width)) < 1:  # YAML numbers load as text (codes keep zeros)
            self.problems.add("MAP-643", "a fixed-width field needs `width`, a positive integer", mark_of(spec), key)
            ok = False
        if align not in ("left", "right"):
            self.problems.add("MAP-643", f"align is left or right, not {align!r}", key_mark(spec, "align"), key)
            ok = False
        if not isinstance(pad, str) or len(pad) != 1:
            self.problems.add("MAP-643", f"pad is one character, not {pad!r}", key_mark(spec, "pad"), key)
            ok = False
        if ok:
            out.width, out.align, out.pad = int(str(width)), align, pad
        return ok

    def record(self, spec: Any, item: Any, fixed: bool, key: str) -> Record | None:
        """``{name?, each?, when?, fields}``."""
        if not isinstance(spec, dict):
            self.problems.add("MAP-642", "a record is {name, each?, when?, fields}", mark_of(spec), key)
            return None
        ok = self.unknown(spec, RECORD_KEYS, "MAP-642", "a record", key)
        each, inner, each_ok = self.each(spec, item, key)
        key = f"{key}.each({each.text})" if each is not None else key
        when = self.when(spec, item, key)
        raw_fields = spec.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            self.problems.add("MAP-642", "a record needs `fields:`, a list", key_mark(spec, "fields"), key)
            return None
        fields = [self.field(f, inner, fixed, f"{key}.fields.{i}") for i, f in enumerate(raw_fields)]
        if not ok or not each_ok or any(f is None for f in fields):
            return None
        return Record(str(spec.get("name") or ""), [f for f in fields if f is not None], each, when)

    def xml(self, spec: Any, item: Any, key: str) -> XmlNode | None:
        """``{name, value?, attributes?, children?, each?, when?, required?}``."""
        if not isinstance(spec, dict) or "name" not in spec:
            self.problems.add("MAP-642", "an XML element is {name, value?, attributes?, children?}", mark_of(spec), key)
            return None
        name = str(spec["name"])
        key = f"{key}/{name}"
        ok = self.unknown(spec, XML_KEYS, "MAP-642", "an XML element", key)
        ok = self.xml_name(name, key_mark(spec, "name"), key) and ok
        each, inner, each_ok = self.each(spec, item, key)
        node = XmlNode(name, each=each, when=self.when(spec, item, key), required=bool(spec.get("required", False)))
        if "value" in spec:
            node.value = self.elem(spec["value"], inner, key_mark(spec, "value"), key)
            ok = ok and node.value is not None
        attributes = spec.get("attributes") or {}
        if not isinstance(attributes, dict):
            self.problems.add("MAP-642", "attributes map names to values", key_mark(spec, "attributes"), key)
            attributes, ok = {}, False
        for attr, value in attributes.items():
            ok = self.xml_name(str(attr), key_mark(attributes, attr), f"{key}@{attr}") and ok
            elem = self.elem(value, inner, key_mark(attributes, attr), f"{key}@{attr}")
            if elem is not None:
                node.attributes.append((str(attr), elem))
            ok = ok and elem is not None
        children = spec.get("children") or []
        if not isinstance(children, list):
            self.problems.add("MAP-642", "children is a list of elements", key_mark(spec, "children"), key)
            children, ok = [], False
        for child in children:
            compiled = self.xml(child, inner, key)
            ok = ok and compiled is not None
            if compiled is not None:
                node.children.append(compiled)
        return node if ok and each_ok else None

    def xml_name(self, name: str, mark: Mark | None, key: str) -> bool:
        """Whether ``name`` is a plain XML name (no prefix: the namespace is the layout's)."""
        if _XML_NAME.match(name) and not name.lower().startswith("xml"):
            return True
        self.problems.add("MAP-646", f"{name!r} is not an XML element or attribute name", mark, key)
        return False


def compile_layout(
    raw: MDict, origin: str, registry: FunctionRegistry, tables: Mapping[str, CodeTable], problems: Problems
) -> Layout | None:
    """One layout file (a marked mapping) compiled; None after recording its problems in ``problems``."""
    before = len(problems.items)
    for bad in sorted(set(raw) - set(TOP_KEYS)):
        hint = did_you_mean(str(bad), TOP_KEYS)
        problems.add("MAP-641", f"a layout takes {', '.join(TOP_KEYS)}, not {bad!r}{hint}", key_mark(raw, bad), bad)
    name, document, model = check_header(raw, "a layout", problems)
    if model is None:
        return None
    target = raw["target"]
    fmt = str(target["format"])
    layout = Layout(name, document, model, fmt, origin, extension=EXTENSIONS[fmt])
    _target(layout, target, problems)
    layout.tables = {**tables, **local_tables(raw, problems)}
    compiler = LayoutCompiler(model, registry, set(layout.tables), problems)
    if fmt == "xml":
        for bad in ("fields", "records", "each", "when"):
            if bad in raw:
                problems.add(
                    "MAP-641",
                    f"an XML layout is a `root:` element; {bad!r} is for csv and fixed",
                    key_mark(raw, bad),
                    bad,
                )
        if not isinstance(raw.get("root"), dict) or "each" in raw["root"]:
            problems.add(
                "MAP-641", "an XML layout needs `root: {name, children}` (one, without each)", raw.mark, "root"
            )
        else:
            layout.root = compiler.xml(raw["root"], model, "root")
    else:
        _records(layout, raw, compiler, problems)
    if len(problems.items) > before or not name:
        return None
    return layout


def _records(layout: Layout, raw: MDict, compiler: LayoutCompiler, problems: Problems) -> None:
    """``fields`` (with top-level ``each``/``when``: one record type) or ``records``, not both."""
    fixed = layout.format == "fixed"
    if "root" in raw:
        problems.add("MAP-641", "`root` is for XML layouts", key_mark(raw, "root"), "root")
    if ("fields" in raw) == ("records" in raw):
        problems.add("MAP-641", "a csv or fixed layout gives `fields:` or `records:`, one of them", raw.mark)
        return
    if "records" in raw:
        specs = raw["records"] if isinstance(raw["records"], list) else []
        if not specs:
            problems.add("MAP-641", "`records:` is a list of {name, each?, when?, fields}", key_mark(raw, "records"))
        for bad in ("each", "when"):
            if bad in raw:
                problems.add("MAP-641", f"with `records:`, give {bad!r} to each record", key_mark(raw, bad), bad)
        found = [compiler.record(s, layout.model, fixed, f"records.{i}") for i, s in enumerate(specs)]
    else:
        one = MDict(raw)  # the top-level each, when and fields: one record type, marks kept
        for other in set(one) - RECORD_KEYS:
            del one[other]
        found = [compiler.record(one, layout.model, fixed, "fields")]
    layout.records = [r for r in found if r is not None]
    if layout.format == "csv" and layout.header and len(found) > 1:
        problems.add(
            "MAP-645", "a CSV header names one record type's columns: give header: false", key_mark(raw, "records")
        )


def _target(layout: Layout, target: MDict, problems: Problems) -> None:
    """The format's settings: extension, encoding, line ending; CSV delimiter, header, quoting; XML output."""
    allowed = TARGET_KEYS[layout.format]
    for bad in sorted(set(target) - allowed):
        hint = did_you_mean(str(bad), allowed)
        message = f"a {layout.format} target takes {', '.join(sorted(allowed))}, not {bad!r}{hint}"
        problems.add("MAP-640", message, key_mark(target, bad), f"target.{bad}")
    layout.extension = str(target.get("extension", layout.extension))
    if not re.fullmatch(r"[A-Za-z0-9]{1,10}", layout.extension):
        problems.add(
            "MAP-640",
            "extension is 1-10 letters or digits, without the dot",
            key_mark(target, "extension"),
            "target.extension",
        )
    layout.encoding = str(target.get("encoding", "ascii" if layout.format == "fixed" else "utf-8"))
    try:
        layout.encoding = codecs.lookup(layout.encoding).name
    except LookupError:
        problems.add(
            "MAP-640", f"unknown encoding {layout.encoding!r}", key_mark(target, "encoding"), "target.encoding"
        )
    ending = str(target.get("line_ending", "crlf"))
    if ending not in LINE_ENDINGS:
        problems.add(
            "MAP-640",
            f"line_ending is crlf or lf, not {ending!r}",
            key_mark(target, "line_ending"),
            "target.line_ending",
        )
    layout.line_ending = LINE_ENDINGS.get(ending, "\r\n")
    delimiter = str(target.get("delimiter", ","))
    if len(delimiter) != 1 or delimiter in '\r\n"':
        problems.add(
            "MAP-640",
            f"delimiter is one character (not a quote or line break), not {delimiter!r}",
            key_mark(target, "delimiter"),
            "target.delimiter",
        )
    layout.delimiter = delimiter
    layout.header = bool(target.get("header", True))
    quoting = str(target.get("quoting", "minimal"))
    if quoting not in ("minimal", "all"):
        problems.add(
            "MAP-640", f"quoting is minimal or all, not {quoting!r}", key_mark(target, "quoting"), "target.quoting"
        )
    layout.quoting = "all" if quoting == "all" else "minimal"
    namespace = target.get("namespace")
    layout.namespace = str(namespace) if namespace else None
    layout.declaration = bool(target.get("declaration", True))
    layout.indent = bool(target.get("indent", True))


def build_layouts(
    map_texts: Mapping[str, str], table_texts: Mapping[str, str], registry: FunctionRegistry
) -> dict[str, Layout]:
    """Every layout among the outbound map files (texts keyed by origin; X12 maps are skipped);
    raises MapLoadError listing every problem in every layout."""
    problems = Problems()
    tables = load_tables(table_texts, problems)
    layouts: dict[str, Layout] = {}
    for origin, text in sorted(map_texts.items()):
        raw = load_yaml_file(text, origin, Problems())  # a broken file is the X12 library's to report
        if raw is None or not is_layout(raw):
            continue
        layout = compile_layout(raw, origin, registry, tables, problems)
        if layout is None:
            continue
        if layout.name in layouts:
            other = layouts[layout.name].origin
            problems.add("MAP-034", f"map {layout.name!r} is also defined in {other}", key_mark(raw, "map"))
            continue
        layouts[layout.name] = layout
    problems.raise_if_any()
    return layouts
