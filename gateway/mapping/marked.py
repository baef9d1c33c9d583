"""YAML loaded with the line and column of every key and value, for ``file:line:col`` errors.

Maps are authored by hand, so every load-time problem must point at the
exact place. PyYAML's composer keeps marks on nodes; this loader builds
plain dict/list/str values whose subclasses carry those marks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Mark:
    """A place in a source file: 1-based line and column."""

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


class MStr(str):
    """A string scalar with its mark."""

    mark: Mark | None = None


class MDict(dict):  # type: ignore[type-arg]
    """A mapping with the mark of itself, of each key and of each value."""

    mark: Mark | None = None
    key_marks: dict[str, Mark]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        source = args[0] if args else None
        self.mark = getattr(source, "mark", None)
        self.key_marks = dict(getattr(source, "key_marks", {}))


class MList(list):  # type: ignore[type-arg]
    """A sequence with its mark."""

    mark: Mark | None = None


def mark_of(value: object, fallback: Mark | None = None) -> Mark | None:
    """The mark of a loaded value, or ``fallback`` for values without one (numbers, null)."""
    found = getattr(value, "mark", None)
    return found if isinstance(found, Mark) else fallback


def key_mark(mapping: object, key: str) -> Mark | None:
    """The mark of ``key`` in a loaded mapping (or of the mapping itself)."""
    if isinstance(mapping, MDict):
        return mapping.key_marks.get(key, mapping.mark)
    return mark_of(mapping)


class MarkedYamlError(ValueError):
    """A YAML syntax error, with its mark."""

    def __init__(self, message: str, mark: Mark) -> None:
        super().__init__(f"{mark}: {message}")
        self.mark = mark
        self.reason = message


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (same nodes and marks, several times faster)."""


def load_marked(text: str, source: str) -> Any:
    """Parse ``text`` (one YAML document) into marked values; raises :class:`MarkedYamlError`."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        pm = exc.problem_mark
        mark = Mark(source, pm.line + 1, pm.column + 1) if pm is not None else Mark(source, 1, 1)
        raise MarkedYamlError(str(exc.problem or exc), mark) from exc
    if node is None:
        return None
    return _build(node, source)


def _mark(node: yaml.Node, source: str) -> Mark:
    return Mark(source, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, source: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = MDict()
        out.mark = _mark(node, source)
        out.key_marks = {}
        for key_node, value_node in node.value:
            key = _build(key_node, source)
            if isinstance(key, list | dict):
                raise MarkedYamlError("a mapping key must be a scalar", _mark(key_node, source))
            out[str(key)] = _build(value_node, source)
            out.key_marks[str(key)] = _mark(key_node, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = MList(_build(item, source) for item in node.value)
        seq.mark = _mark(node, source)
        return seq
    assert isinstance(node, yaml.ScalarNode)
    # Only null and booleans are typed; every other scalar stays the text written, so X12 codes
    # such as 002 or 01 keep their leading zeros (YAML 1.1 would read 002 as the integer 2).
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        return node.value.lower() in ("true", "yes", "on")
    marked = MStr(node.value)
    marked.mark = _mark(node, source)
    return marked


_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
