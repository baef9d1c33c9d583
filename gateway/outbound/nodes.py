"""A compiled outbound map: groups of segments, each element a value read from the document.

Evaluation is in :mod:`gateway.outbound.render`; these nodes only know how to
read their values from the document (``root``) and the current ``each`` item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gateway.canonical import ItemIds
from gateway.mapping.functions import CodeTable, EvalContext, FunctionFailed
from gateway.mapping.nodes import Call
from gateway.outbound.paths import FieldPath, plain
from gateway.x12.schema.catalog import Catalog
from gateway.x12.schema.compiled import SetDefinition


@dataclass(slots=True)
class Cond:
    """``when``: a path is present (not None, empty text or an empty list), or is (not) one of some codes."""

    path: FieldPath
    test: str  # exists, equals, not_equals, in, not_in
    codes: frozenset[str] = frozenset()
    exists: bool = True

    def __call__(self, root: Any, item: Any) -> bool:
        value = self.path.get(root, item)
        present = value is not None and value != "" and value != []
        if self.test == "exists":
            return present == self.exists
        hit = present and plain(value) in self.codes
        return hit if self.test in ("equals", "in") else not hit


@dataclass(slots=True)
class Elem:
    """One element's value: a path, a constant or the first present alternative, through functions."""

    path: FieldPath | None = None
    const: str | None = None
    alternatives: list[Elem] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    when: Cond | None = None

    @property
    def reads(self) -> bool:
        """True when the value comes from the document."""
        return self.path is not None or any(a.reads for a in self.alternatives)

    def value(self, root: Any, item: Any, prefix: str, ctx: EvalContext) -> tuple[Any, str]:
        """The value and the field path it came from; raises ValueFailed naming that field."""
        if self.when is not None and not self.when(root, item):
            return None, ""
        value: Any = self.const
        source = self.path.trail(prefix) if self.path is not None else prefix
        if self.path is not None:
            value = self.path.get(root, item)
        for alt in self.alternatives:
            value, source = alt.value(root, item, prefix, ctx)
            if value is not None and value != "":
                break
        for call in self.calls:
            if value is None and not call.spec.takes_none:
                continue
            try:
                value = call.spec.fn(value, call.params, ctx)
            except FunctionFailed as exc:
                raise ValueFailed(f"{call.spec.name}: {exc}", source) from exc
        return value, source


class ValueFailed(Exception):
    """A function failed on a document's value; ``source`` is the field path it was reading."""

    def __init__(self, message: str, source: str) -> None:
        super().__init__(message)
        self.message = message
        self.source = source


@dataclass(slots=True)
class Pairs:
    """``{item_ids: item, qualifiers: {field: code}}``: qualifier/id element pairs from an ItemIds."""

    path: FieldPath
    qualifiers: dict[str, str]
    other: bool  # also write ItemIds.other with their own qualifiers
    room: int  # how many pairs fit from the start position to the segment's end

    def pairs(self, root: Any, item: Any) -> tuple[list[tuple[str, str, str]], list[str]]:
        """``(qualifier, value, field)`` in the map's order, and the set fields that have no qualifier."""
        ids = self.path.get(root, item)
        if not isinstance(ids, ItemIds):
            return [], []
        out = [(code, value, name) for name, code in self.qualifiers.items() if (value := getattr(ids, name))]
        unmapped = [n for n in ItemIds.model_fields if n not in ("other", *self.qualifiers) and getattr(ids, n)]
        if self.other:
            out.extend((ident.qualifier, ident.value, f"other[{i}]") for i, ident in enumerate(ids.other))
        elif ids.other:
            unmapped.append("other")
        return out, unmapped


@dataclass(slots=True)
class SegOut:
    """One segment to write: its elements from position 01, then optional id pairs."""

    id: str
    elements: list[Elem | None]
    pairs: Pairs | None = None
    when: Cond | None = None

    @property
    def reads(self) -> bool:
        """True when any element reads the document (else the segment is written as it stands)."""
        return self.pairs is not None or any(e is not None and e.reads for e in self.elements)


@dataclass(slots=True)
class Group:
    """Segments written once (optionally ``when``) or once per list item (``each``)."""

    body: list[SegOut | Group]
    each: FieldPath | None = None
    when: Cond | None = None


@dataclass(slots=True)
class OutboundMap:
    """A checked outbound map; ``tables`` are the code tables it sees (shared, then its own)."""

    name: str
    document: str
    model: type[BaseModel]
    set_id: str
    version: str
    catalog: Catalog
    body: Group
    origin: str
    tables: dict[str, CodeTable] = field(default_factory=dict)

    @property
    def definition(self) -> SetDefinition:
        """The set definition the map writes (it exists: the map would not have compiled otherwise)."""
        found = self.catalog.definition(self.version, self.set_id)
        assert found is not None
        return found
