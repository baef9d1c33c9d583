"""Partner implementation-guide overlays, applied on top of a base set definition.

An overlay is data in the same spirit as the definitions (YAML)::

    overlay: acme-850          # a name for messages and reports
    set: "850"
    version: "004010"
    segments:                  # key: [loop path/]segment id
      REF: {req: M}            # the partner always sends a REF
      PO1/PID: {req: M, max: 1}
      TD5: {usage: never}      # never sent: its presence is an error
    elements:                  # key: [loop path/]segment id + 2-digit position
      BEG03: {max: 10}
      PO103: {codes: [EA, CA, BX]}
      N1/N104: {req: M}
      REF04: {usage: never}

A key without a loop path applies wherever the segment is used in the set.
Every key must name something the base set has; a misspelling fails with a
did-you-mean, so an overlay can never silently do nothing.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import DefinitionError
from gateway.x12.schema.compiled import ElementSpec, LoopNode, SegmentNode, SetDefinition
from gateway.x12.schema.files import MaxUse, Str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentOverride(_Strict):
    """How a partner uses a segment."""

    req: Literal["M", "O"] | None = None
    max: MaxUse | None = None
    usage: Literal["used", "never"] = "used"


class ElementOverride(_Strict):
    """How a partner uses an element: tighter requirement, lengths or codes."""

    req: Literal["M", "O"] | None = None
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)
    codes: list[Str] | None = None
    usage: Literal["used", "never"] = "used"


class OverlayFile(_Strict):
    """A partner's implementation-guide overlay for one set and version."""

    overlay: str
    set: Str
    version: Str
    segments: dict[str, SegmentOverride] = Field(default_factory=dict)
    elements: dict[str, ElementOverride] = Field(default_factory=dict)


_ELEMENT_KEY = re.compile(r"^(?:(?P<path>.+)/)?(?P<seg>[A-Z0-9]{2,3}?)(?P<pos>\d{2})$")


def _nodes(loop: LoopNode) -> list[SegmentNode]:
    found: list[SegmentNode] = []
    for child in loop.children:
        if isinstance(child, SegmentNode):
            found.append(child)
        else:
            found.extend(_nodes(child))
    return found


def _paths(loop: LoopNode, prefix: str = "") -> dict[int, str]:
    """id(node) → loop path of the loop holding it."""
    out: dict[int, str] = {}
    for child in loop.children:
        if isinstance(child, SegmentNode):
            out[id(child)] = loop.path
        else:
            out.update(_paths(child))
    return out


def _select(root: LoopNode, key_path: str | None, seg_id: str, where: str) -> list[SegmentNode]:
    paths = _paths(root)
    nodes = [n for n in _nodes(root) if n.id == seg_id]
    if key_path is not None:
        nodes = [n for n in nodes if paths[id(n)] == key_path or paths[id(n)].endswith("/" + key_path)]
    if not nodes:
        choices = sorted({(f"{paths[id(n)]}/" if paths[id(n)] else "") + n.id for n in _nodes(root)})
        wanted = f"{key_path}/{seg_id}" if key_path else seg_id
        hint = difflib.get_close_matches(wanted, choices, n=3)
        suggestion = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise DefinitionError(f"{where}: the set has no segment {wanted}{suggestion}", "X12-D010")
    return nodes


def apply_overlay(base: SetDefinition, fresh_root: LoopNode, overlay: OverlayFile, source: str) -> SetDefinition:
    """A new definition: ``fresh_root`` (an uncached compile of ``base``) with the overlay applied."""
    if (overlay.set, overlay.version) != (base.id, base.version):
        raise DefinitionError(
            f"{source}: overlay is for {overlay.set}/{overlay.version}, not {base.id}/{base.version}", "X12-D011"
        )
    for key, seg_override in overlay.segments.items():
        path, _, seg_id = key.rpartition("/")
        for node in _select(fresh_root, path or None, seg_id, f"{source}: segments.{key}"):
            if seg_override.req is not None:
                node.req = seg_override.req
                node.from_guide = seg_override.req == "M"
            if seg_override.max is not None:
                node.max = seg_override.max
            node.used = seg_override.usage == "used"
    for key, el_override in overlay.elements.items():
        match = _ELEMENT_KEY.match(key)
        if match is None:
            raise DefinitionError(
                f"{source}: elements.{key}: expected [loop/]SEG + 2-digit position, e.g. PO103", "X12-D012"
            )
        seg_id, pos = match["seg"], int(match["pos"])
        for node in _select(fresh_root, match["path"], seg_id, f"{source}: elements.{key}"):
            elements = list(node.spec.elements)
            if not 1 <= pos <= len(elements):
                raise DefinitionError(f"{source}: elements.{key}: {seg_id} has {len(elements)} elements", "X12-D013")
            elements[pos - 1] = _narrow(elements[pos - 1], el_override, f"{source}: elements.{key}")
            node.spec = replace(node.spec, elements=tuple(elements))
    fresh_root.index()
    return replace(base, root=fresh_root, overlay=overlay.overlay, checks_for="\x00")


def _narrow(spec: ElementSpec, override: ElementOverride, where: str) -> ElementSpec:
    changes: dict[str, object] = {}
    if override.req is not None:
        changes["req"] = override.req
    if override.min is not None:
        changes["min"] = override.min
    if override.max is not None:
        if override.max > spec.max:
            raise DefinitionError(f"{where}: max {override.max} is wider than the standard's {spec.max}", "X12-D014")
        changes["max"] = override.max
    if override.codes is not None:
        if spec.codes is not None:
            unknown = sorted(set(override.codes) - spec.codes)
            if unknown:
                raise DefinitionError(f"{where}: codes {', '.join(unknown)} are not in the standard list", "X12-D015")
        changes["codes"] = frozenset(override.codes)
        changes["common"] = None
    changes["used"] = override.usage == "used"
    return replace(spec, **changes)  # type: ignore[arg-type]
