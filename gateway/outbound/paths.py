"""Canonical field paths: parsed and checked against the pydantic models when a map loads.

Grammar (relative to the current item; the document at the top level)::

    path  := "." | ("$.")? step ("." step)*     "." is the item itself, "$." starts at the document
    step  := field | index | field "[" name ("=" | "!=") code ("|" code)* "]"

``ids.0.value`` is the first id's value; ``references[qualifier=LT].value``
the first LT reference's; as an ``each`` path, ``references[qualifier!=LT]``
iterates every matching item. A path knows the type at its end, so a map that
writes a date without ``format_date`` fails when it loads, not on a document.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Union

from pydantic import BaseModel

from gateway.mapping.marked import Mark
from gateway.mapping.problems import Problems, did_you_mean

_STEP = re.compile(r"^([a-z_][a-z0-9_]*)(?:\[([a-z_][a-z0-9_]*)(!?=)([^\]]*)\])?$|^(\d+)$")


@dataclass(frozen=True, slots=True)
class Pick:
    """``[qualifier=LT]`` (``!=`` negates, ``|`` separates codes): the list items whose field matches."""

    field: str
    codes: frozenset[str]
    negate: bool = False

    def __call__(self, item: Any) -> bool:
        return (plain(getattr(item, self.field, None)) in self.codes) != self.negate


Step = str | int | Pick


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A compiled path; ``kind`` is str, int, bool, date, decimal, list or object."""

    text: str
    steps: tuple[Step, ...]
    from_root: bool
    kind: str
    #: the type at the end of the path (for a path ending in a ``Pick``: the item type)
    annotation: Any = field(default=None, compare=False)

    @property
    def picks(self) -> bool:
        """True when the last step is a ``Pick`` (``each`` then keeps every match)."""
        return bool(self.steps) and isinstance(self.steps[-1], Pick)

    def get(self, root: Any, item: Any) -> Any:
        """The value (None when any step is absent); a ``Pick`` takes the first match."""
        value = root if self.from_root else item
        for step in self.steps:
            if value is None:
                return None
            if isinstance(step, str):
                value = getattr(value, step, None)
            elif isinstance(step, int):
                value = value[step] if isinstance(value, list) and step < len(value) else None
            else:
                value = next((v for v in value if step(v)), None) if isinstance(value, list) else None
        return value

    def items(self, root: Any, item: Any) -> list[tuple[int, Any]]:
        """``(index in the list, item)`` for ``each``; a final ``Pick`` keeps every match."""
        last = self.steps[-1] if self.picks else None
        value = (replace(self, steps=self.steps[:-1]) if last is not None else self).get(root, item)
        keep = last if isinstance(last, Pick) else None
        if not isinstance(value, list):
            return []
        return [(i, v) for i, v in enumerate(value) if keep is None or keep(v)]

    def trail(self, prefix: str) -> str:
        """The path as errors name it, e.g. ``lines[2].item.gtin``."""
        text = self.text[2:] if self.from_root else self.text
        if self.from_root or not prefix:
            return "" if text == "." else text
        return prefix if text == "." else f"{prefix}.{text}"


def plain(value: Any) -> str:
    """A value as text for comparisons (an enum by its value)."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def optional_inner(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def kind_of(annotation: Any) -> str:
    """What a type is, for the checks a map gets: list, object, date, decimal, bool, int or str."""
    if typing.get_origin(annotation) is list:
        return "list"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "object"
        if issubclass(annotation, datetime | date):
            return "date"
        for kind, cls in (("decimal", Decimal), ("bool", bool), ("int", int)):
            if issubclass(annotation, cls):
                return kind
    return "str"


def compile_path(
    text: str, model: type[BaseModel], item: Any, problems: Problems, mark: Mark | None, key: str
) -> FieldPath | None:
    """``text`` checked against ``item`` (the current item's type) or ``model`` (for ``$.``)."""
    from_root = text.startswith("$.")
    body = text[2:] if from_root else text
    current: Any = model if from_root else item
    steps: list[Step] = []
    for part in [] if body == "." else body.split("."):
        m = _STEP.match(part)
        current = optional_inner(current)
        if m is None:
            problems.add("MAP-611", f"{text!r}: {part!r} is not a field, an index or field[name=code]", mark, key)
            return None
        if m[5] is not None:
            if kind_of(current) != "list":
                problems.add("MAP-611", f"{text!r}: {part} indexes something that is not a list", mark, key)
                return None
            steps.append(int(m[5]))
            current = typing.get_args(current)[0]
            continue
        if kind_of(current) != "object":
            what = "a list: pick an item (.0, [field=code]) or use `each`" if kind_of(current) == "list" else "a value"
            problems.add("MAP-611", f"{text!r}: what comes before {part!r} is {what}", mark, key)
            return None
        fields = current.model_fields
        if m[1] not in fields:
            problems.add("MAP-610", f"{current.__name__} has no field {m[1]!r}{did_you_mean(m[1], fields)}", mark, key)
            return None
        steps.append(m[1])
        current = optional_inner(fields[m[1]].annotation)
        if m[2] is not None:
            inner = typing.get_args(current)[0] if kind_of(current) == "list" else None
            names = list(inner.model_fields) if inner is not None and kind_of(inner) == "object" else []
            if m[2] not in names:
                hint = did_you_mean(m[2], names)
                problems.add("MAP-611", f"{text!r}: cannot pick {m[1]} items by {m[2]!r}{hint}", mark, key)
                return None
            steps.append(Pick(m[2], frozenset(c.strip() for c in m[4].split("|")), m[3] == "!="))
            current = inner
    current = optional_inner(current)
    return FieldPath(text, tuple(steps), from_root, kind_of(current), current)
