"""Compiled map nodes and their evaluation: pure functions of a scope and an evaluation context.

A compiled map is a tree of five node kinds: :class:`Value` (one value from
a path, a constant or several paths, through named functions), :class:`Obj`
(named fields), :class:`Each` (a list, one item per loop iteration, row or
XML element), :class:`Items` (a fixed list) and :class:`Special` (a
format-specific extractor such as the X12 qualifier/id pairs). Absent values
are ``None`` and drop out, so optional objects and list items vanish rather
than appear empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.mapping.functions import EvalContext, FunctionFailed, FunctionSpec, Params
from gateway.mapping.plan import object_function


@dataclass(slots=True)
class Env:
    """Per-document evaluation state: the context, the X12 component separator, the last place read."""

    ctx: EvalContext
    sep: str = ">"
    where: Any = None
    #: per-document memo for extractors (e.g. a segment's id pairs, read by several fields)
    cache: dict[Any, Any] = field(default_factory=dict)


class EvalFailure(Exception):
    """A node could not produce its value; ``trail`` is the key path, built on the way up."""

    def __init__(self, message: str, where: Any, source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.source = source
        self.trail: list[str] = []

    @property
    def path(self) -> str:
        """The key path, e.g. ``lines[2].unit_price.amount``."""
        out = ""
        for part in reversed(self.trail):
            out += part if part.startswith("[") else (f".{part}" if out else part)
        return out


Getter = Callable[[Any, Env], Any]
Selector = Callable[[Any, Env], list[Any]]
Condition = Callable[[Any, Env], bool]


@dataclass(slots=True)
class Call:
    """One function application with its validated parameters."""

    spec: FunctionSpec
    params: Params


class Node:
    """Base of compiled nodes."""

    __slots__ = ("when",)

    def __init__(self) -> None:
        self.when: Condition | None = None

    def evaluate(self, scope: Any, env: Env) -> Any:
        """The node's value in ``scope`` (None: absent)."""
        raise NotImplementedError

    @property
    def constant(self) -> bool:
        """True when the node never reads the document (a fixed value)."""
        return False


@dataclass(slots=True, eq=False)
class Value(Node):
    """A value: from one path, several paths (a list), or a constant; then through ``calls``."""

    getters: list[Getter] = field(default_factory=list)
    many: bool = False
    const: Any = None
    calls: list[Call] = field(default_factory=list)
    source: str = ""
    when: Condition | None = None
    _steps: list[tuple[Any, Any, bool, Call]] | None = None

    def evaluate(self, scope: Any, env: Env) -> Any:
        if self.when is not None and not self.when(scope, env):
            return None
        getters = self.getters
        if self.many:
            value: Any = [g(scope, env) for g in getters]
        elif getters:
            value = getters[0](scope, env)
            if not self.calls:
                return value  # the common case: a plain path
        else:
            value = self.const
        ctx = env.ctx
        steps = self._steps if self._steps is not None else self._prepare()
        for fn, params, takes_none, call in steps:
            if value is None and not takes_none:
                continue
            try:
                value = fn(value, params, ctx)
            except FunctionFailed as exc:
                raise EvalFailure(f"{call.spec.name}: {exc}", env.where, self.source) from exc
        return value

    def _prepare(self) -> list[tuple[Any, Any, bool, Call]]:
        """The calls as (function, params, takes_none, call) tuples: fewer lookups per value."""
        self._steps = [(c.spec.fn, c.params, c.spec.takes_none, c) for c in self.calls]
        return self._steps

    @property
    def constant(self) -> bool:
        return not self.getters


@dataclass(slots=True, eq=False)
class Obj(Node):
    """Named fields; absent (None) when every field that reads the document is absent.

    Evaluated by one generated function (:mod:`gateway.mapping.plan`), written on first use;
    :meth:`evaluate_fields` is the same evaluation field by field, the reference it is tested against.
    """

    fields: dict[str, Node] = field(default_factory=dict)
    when: Condition | None = None
    _fn: Callable[[Any, Env], Any] | None = None

    def evaluate(self, scope: Any, env: Env) -> Any:
        fn = self._fn
        if fn is None:
            fn = self.function()
        return fn(scope, env)

    def function(self) -> Callable[[Any, Env], Any]:
        """The generated function that evaluates this object (written once)."""
        if self._fn is None:
            self._fn = object_function(self, _direct)
        return self._fn

    def evaluate_fields(self, scope: Any, env: Env) -> Any:
        """:meth:`evaluate`, one field node at a time (the reference for the generated function)."""
        if self.when is not None and not self.when(scope, env):
            return None
        out: dict[str, Any] = {}
        found = False
        for name, node in self.fields.items():
            try:
                value = node.evaluate_fields(scope, env) if isinstance(node, Obj) else node.evaluate(scope, env)
            except EvalFailure as exc:
                exc.trail.append(name)
                raise
            if value is None or (value.__class__ is list and not value):
                continue
            out[name] = value
            if not node.constant:
                found = True
        return out if found else None


@dataclass(slots=True, eq=False)
class Each(Node):
    """A list: ``value`` evaluated once per scope the selector yields."""

    select: Selector = field(default=lambda scope, env: [])
    value: Node = field(default_factory=Value)
    when: Condition | None = None
    _value: Callable[[Any, Env], Any] | None = None

    def evaluate(self, scope: Any, env: Env) -> Any:
        if self.when is not None and not self.when(scope, env):
            return None
        evaluate = self._value
        if evaluate is None:
            evaluate = self._value = _direct(self.value)
        out = []
        for i, inner in enumerate(self.select(scope, env)):
            try:
                value = evaluate(inner, env)
            except EvalFailure as exc:
                exc.trail.append(f"[{i}]")
                raise
            if value is not None:
                out.append(value)
        return out


@dataclass(slots=True, eq=False)
class Items(Node):
    """A fixed list of nodes; absent items drop out."""

    items: list[Node] = field(default_factory=list)
    when: Condition | None = None

    def evaluate(self, scope: Any, env: Env) -> Any:
        if self.when is not None and not self.when(scope, env):
            return None
        out = []
        for i, node in enumerate(self.items):
            try:
                value = node.evaluate(scope, env)
            except EvalFailure as exc:
                exc.trail.append(f"[{i}]")
                raise
            if value is not None:
                out.append(value)
        return out


@dataclass(slots=True, eq=False)
class Special(Node):
    """A format-specific extractor compiled by the source adapter (e.g. X12 id pairs)."""

    fn: Getter = field(default=lambda scope, env: None)
    when: Condition | None = None

    def evaluate(self, scope: Any, env: Env) -> Any:
        if self.when is not None and not self.when(scope, env):
            return None
        return self.fn(scope, env)


def _direct(node: Node) -> Callable[[Any, Env], Any]:
    """The cheapest callable that evaluates ``node``: a plain path's getter itself, no wrapper frame."""
    if isinstance(node, Value) and node.when is None and not node.many and not node.calls and len(node.getters) == 1:
        return node.getters[0]
    if isinstance(node, Special) and node.when is None:
        return node.fn
    if isinstance(node, Obj):
        return node.function()
    return node.evaluate
