"""Outbound maps: a canonical document written as X12, declared in YAML and checked when it loads (pure).

The public API of the outbound direction; the implementation lives in its
small modules (paths, nodes, compiler, library, render, functions); reading
the files is :mod:`gateway.outbound_loader`'s job. ``docs/outbound-maps.md`` describes the format; in short::

    map: x12-850-004010-out
    document: purchase_order
    target: {format: x12, set: "850", version: "004010"}
    segments:                                  # in the set's order; checked against the definition
      - BEG: [{first_of: [purpose_code, {from: purpose, fn: table, table: purpose_out}]},
              {from: order_type, default: SA}, po_number, release_number,
              {from: order_date, fn: format_date}]
      - CUR: [{const: BY}, currency]           # a bare string is a field path; a literal is {const: X}
      - each: references                       # one REF per list item
        segments: [{REF: [qualifier, value, description]}]
      - each: lines                            # first segment PO1 triggers a loop: one PO1 loop per line
        segments:
          - PO1: [line_number, {from: quantity.value, fn: format_decimal}, quantity.uom,
                  {from: unit_price.amount, fn: format_decimal}, null,
                  {item_ids: item, qualifiers: {vendor_part: VN, buyer_item: IN, gtin: UP}}]
          - REF: {when: {path: "references[qualifier=LT]", exists: false}, elements: [{const: LT}, lot]}
      - CTT: [{from: lines, fn: count}]

Usage::

    library = OutboundLibrary.build(map_texts, table_texts, catalog, outbound_functions())
    cmap = library.for_partner(profile, "850")
    data = render_850(po, profile, cmap, control_numbers=sequence, when=now)

An outbound map whose target is ``csv``, ``fixed`` or ``xml`` is an export layout
(:mod:`gateway.outbound.layout`)::

    layouts = build_layouts(map_texts, table_texts, outbound_functions())
    layout = layouts["ap-invoice-lines-csv"]
    data = render_layout(layout, parse_document(layout, canonical_json))
"""

from __future__ import annotations

from gateway.outbound.compiler import compile_outbound
from gateway.outbound.functions import format_decimal, outbound_functions
from gateway.outbound.layout import Layout, build_layouts
from gateway.outbound.layout_render import parse_document, render_layout
from gateway.outbound.library import OutboundLibrary
from gateway.outbound.nodes import OutboundMap
from gateway.outbound.render import RenderError, render, render_850

__all__ = [
    "Layout",
    "OutboundLibrary",
    "OutboundMap",
    "RenderError",
    "build_layouts",
    "compile_outbound",
    "format_decimal",
    "outbound_functions",
    "parse_document",
    "render",
    "render_850",
    "render_layout",
]
