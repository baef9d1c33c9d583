"""Phase one for export layouts: a destination's layout exists, and routes send it only what it writes.

Part of ``gateway config lint`` (:func:`gateway.config_check.check_config` calls these; pure, like
it). A ``files`` destination names its layout in ``layout:``, a ``rest`` destination in ``body:``
(``canonical`` is no layout). Codes: ``CFG-040`` no layout of that name (did-you-mean, and the
layouts there are), ``CFG-041`` a rule sends a layout destination document types its layout does
not write (they would all be dead letters), ``CFG-042`` the layouts themselves do not compile (each
of their own problems is listed with its ``MAP-`` code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gateway.mapping.marked import key_mark, mark_of
from gateway.mapping.problems import Problems, did_you_mean
from gateway.routing import Rule

__all__ = ["LAYOUT_KEYS", "check_layout_name", "check_layout_routes"]

LAYOUT_KEYS = ("layout", "body")
"""The destination settings that name a layout (``files``: layout; ``rest``: body, unless canonical)."""


def layout_named(config: BaseModel) -> tuple[str, str] | None:
    """``(key, layout name)`` when a validated destination config names an export layout."""
    for key in LAYOUT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, str) and value and value != "canonical":
            return key, value
    return None


def check_layout_name(
    name: str, config: BaseModel, raw: Any, layouts: Mapping[str, str], problems: Problems
) -> str | None:
    """The document type the destination's layout writes (None: it names none, or one that does not exist)."""
    named = layout_named(config)
    if named is None:
        return None
    key, layout = named
    if layout in layouts:
        return layouts[layout]
    known = f" (layouts: {', '.join(sorted(layouts))})" if layouts else " (no layouts are defined in maps/outbound)"
    message = f"destination {name!r}: no export layout {layout!r}{did_you_mean(layout, layouts) or known}"
    problems.add("CFG-040", message, mark_of(raw.get(key), key_mark(raw, key)), f"destinations.{name}.{key}")
    return None


def check_layout_routes(
    routes: list[tuple[Rule, Any]], path: str, writes: Mapping[str, str], problems: Problems
) -> None:
    """Every rule sending to a layout destination (``writes``: destination → document type) matches
    only that document type."""
    for index, (rule, item) in enumerate(routes):
        for position, target in enumerate(rule.to):
            doc = writes.get(target)
            if doc is None:
                continue
            wanted = rule.match.doc_type
            types = [wanted] if isinstance(wanted, str) else list(wanted or [])
            others = [t for t in types if t != doc]
            if types and not others:
                continue
            what = f"{', '.join(others)} documents" if types else "every document type"
            message = (
                f"rule {rule.name!r} sends {what} to {target!r}, whose layout writes only {doc}: "
                f"match doc_type: {doc} (the others would be dead letters)"
            )
            to = item.get("to") if isinstance(item, dict) else None
            mark = mark_of(to[position], key_mark(item, "to")) if isinstance(to, list) else mark_of(item)
            problems.add("CFG-041", message, mark, f"{path}.{index}.to.{position}")
