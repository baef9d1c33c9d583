"""A payload written through an export layout, for the destinations that take one (``files``, ``rest``).

A destination names its layout in its settings (``files``: ``layout: NAME``; ``rest``: ``body: NAME``);
the composition root hands the compiled layouts to the factories in its build context, and
``gateway config lint`` checks the name before anything is built. What cannot be laid out (a
document of another type, a value wider than its field) is refused for good: the delivery becomes a
dead letter whose reason lists every problem, located by canonical field; retrying would not change it.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.delivery.base import Payload, Rejected
from gateway.errors import ConfigError, Location
from gateway.outbound.layout import Layout
from gateway.outbound.layout_render import parse_document, render_layout
from gateway.outbound.render import RenderError

__all__ = ["find_layout", "lay_out"]


def find_layout(destination: str, name: str, context: object) -> Layout:
    """The layout ``name`` from the build context's ``layouts``; ConfigError CFG-040 when it is not there
    (``gateway config lint`` reports the same with the line to fix)."""
    layouts: Mapping[str, Layout] = getattr(context, "layouts", None) or {}
    found = layouts.get(name)
    if found is None:
        known = ", ".join(sorted(layouts)) or "none"
        raise ConfigError(f"destination {destination!r}: no layout {name!r} (known: {known})", code="CFG-040")
    return found


def lay_out(layout: Layout, payload: Payload) -> bytes | Rejected:
    """The payload's canonical document through ``layout``, or the rejection saying why it cannot be."""
    if payload.kind != "document" or payload.document is None:
        return Rejected(f"layout {layout.name} writes canonical documents, not a {payload.doc_type} interchange")
    where = Location(partner=payload.partner_id)
    try:
        return render_layout(layout, parse_document(layout, payload.document, where), where)
    except RenderError as exc:
        return Rejected(str(exc), response={"layout": layout.name, "codes": sorted({e.code for e in exc.errors})})
