"""The shape of the X12 definition files, as pydantic models.

Definitions are data, kept as YAML under ``gateway/x12/definitions/<version>/``:

``elements.yaml``
    ``elements: {"<id>": {name, type, min, max}}`` -- the data element
    dictionary. ``type`` is one of AN, ID, N0..N9, R, DT, TM, B.
``codes.yaml``
    ``codes: {"<element id>": {"<code>": "<description>"}}`` -- *complete*
    code lists for ID elements, enforced: a value outside one is an error,
    so a list here must never be partial. ``common: {...}`` in the same
    shape holds the usual values of elements whose full list is long; a
    value outside a common list is only a warning. An ID element with
    neither accepts any value of the right length.
``segments.yaml``
    ``segments: {"<seg id>": {name, elements: [[ref, req, repeat?], ...],
    syntax: ["P0102", ...]}}`` and ``composites: {"<C id>": {...}}`` in the
    same shape. ``req`` is M (mandatory), O (optional) or X (conditional,
    relational conditions are in ``syntax``).
``sets/<id>.yaml``
    ``id, name, functional_group, structure`` where ``structure`` is an
    ordered list of segment uses ``{seg, pos, req, max}`` and loops
    ``{loop, req, max, body: [...]}``; the first use in a loop body is the
    loop's trigger segment. An optional ``hierarchy`` block on an HL loop
    lists the level codes (HL03) and which levels each may sit under.

``max`` is a positive integer or ``">1"`` for unbounded. Everything here is
validated strictly (unknown keys are errors), so a typo in a definition
fails when the catalog loads, not when a partner's file arrives.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

ElementType = Literal["AN", "ID", "N0", "N1", "N2", "N3", "N4", "N5", "N6", "N7", "N8", "N9", "R", "DT", "TM", "B"]
Requirement = Literal["M", "O", "X"]


def _to_str(value: object) -> object:
    """YAML reads ``353`` as an int; element ids and codes are strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Str = Annotated[str, BeforeValidator(_to_str)]


def _max_use(value: object) -> object:
    if value == ">1":
        return None
    return value


MaxUse = Annotated[Annotated[int, Field(ge=1)] | None, BeforeValidator(_max_use)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ElementDef(_Strict):
    """One data element of the dictionary."""

    name: str
    type: ElementType
    min: int = Field(ge=0)
    max: int = Field(ge=1)


class ElementsFile(_Strict):
    """``elements.yaml``."""

    version: Str
    elements: dict[Str, ElementDef]


class CodesFile(_Strict):
    """``codes.yaml``: complete (``codes``) and usual (``common``) code lists."""

    version: Str
    codes: dict[Str, dict[Str, str]] = Field(default_factory=dict)
    common: dict[Str, dict[Str, str]] = Field(default_factory=dict)


def _element_use(value: object) -> object:
    """Accept the compact ``[ref, req]`` / ``[ref, req, repeat]`` form."""
    if isinstance(value, (list, tuple)):
        keys = ("ref", "req", "repeat")
        return dict(zip(keys, value, strict=False))
    return value


class ElementUse(_Strict):
    """A data element (or composite, ``C...``) at one position in a segment."""

    ref: Str
    req: Requirement
    repeat: int = Field(default=1, ge=1)


CompactElementUse = Annotated[ElementUse, BeforeValidator(_element_use)]


class SegmentDef(_Strict):
    """A segment (or composite): its elements in order and its syntax notes."""

    name: str
    elements: list[CompactElementUse]
    syntax: list[str] = Field(default_factory=list)


class SegmentsFile(_Strict):
    """``segments.yaml``."""

    version: Str
    segments: dict[str, SegmentDef]
    composites: dict[str, SegmentDef] = Field(default_factory=dict)


class SegmentUse(_Strict):
    """A segment's place in a transaction set."""

    seg: str
    pos: Str
    req: Requirement
    max: MaxUse = 1


class HierarchyLevel(_Strict):
    """An HL03 level code and the levels it may sit under (empty: top)."""

    name: str
    parents: list[Str] = Field(default_factory=list)


class LoopUse(_Strict):
    """A loop: repeated group of segments, triggered by its first segment."""

    loop: Str
    req: Requirement
    max: MaxUse = 1
    body: list[SegmentUse | LoopUse]
    hierarchy: dict[Str, HierarchyLevel] | None = None


class SetFile(_Strict):
    """``sets/<id>.yaml``: one transaction set's structure."""

    id: Str
    name: str
    functional_group: str
    version: Str
    structure: list[SegmentUse | LoopUse]


LoopUse.model_rebuild()
