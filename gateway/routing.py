"""Routing: which destinations a document goes to, decided by rules (pure: no store, files or clock).

A rule (``routes:`` in ``gateway.yaml``, and in a partner profile for that partner only) matches
on the partner, the document type, the direction, test or production, and predicates over the
canonical JSON; it sends the document to one or more destinations (fan-out)::

    routes:
      - name: implants-to-billing
        match:
          doc_type: ship_notice
          where:
            - {path: "parties[role=ship_to].ids[qualifier=92].value", op: eq, value: MGH-OR}
        to: [billing-api, erp-staging]
        stop: false          # later rules may add destinations too
      - name: default
        match: {direction: inbound}
        to: [canonical-json]

Rules are tried in order (a profile's before the global ones). A matching rule adds its destinations;
with ``stop: true`` (the default) it is the last rule tried: the first matching rule wins. ``stop:
false`` lets later rules add theirs. The decision lists the rules that matched and the destinations,
in order and each once. When no rule matches, the decision is ``unrouted`` with a reason that says
why each rule did not: the caller makes it an exception an operator sees, never a silent drop.

What we send partners (our 997/999/TA1 and 850s) is routed by the rules that can match it
(:func:`sends`: ``direction: outbound``, or a ``doc_type`` naming one of :data:`OUTBOUND_TYPES`), so
a catch-all inbound rule never takes an acknowledgment; when ``gateway.yaml`` has none,
:data:`DEFAULT_OUTBOUND` (everything to ``partner-outbox``) ends the list (:func:`outbound_rules`).

Predicate paths are dotted keys (``total.amount``); a list on the way is searched element by element;
``key[field=value]`` keeps only the list elements whose ``field`` is ``value``. ``eq``, ``in``, ``gt``...
hold when any value found does; ``ne``, ``not_in`` and ``missing`` when none does. Two numbers compare
as decimals, except that a zero-padded code (``01``) is text; anything else compares as text, so ISO
dates order correctly. ``matches`` is a regular-expression search (docs/routing.md says it all).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gateway.canonical.paths import MODELS, path_problem

__all__ = [
    "DEFAULT_OUTBOUND",
    "DOC_TYPES",
    "OPS",
    "OUTBOUND_TYPES",
    "PARTNER_OUTBOX",
    "Match",
    "Predicate",
    "RouteDecision",
    "RouteInput",
    "Rule",
    "outbound_rules",
    "parse_path",
    "route",
    "rules_for",
    "sends",
]

#: The document types a rule may name: the canonical types, then what we send partners, then the
#: acknowledgment-tracking alerts (routed only by rules that name them: see gateway.runtime.acks).
DOC_TYPES = ("purchase_order", "po_acknowledgment", "ship_notice", "invoice", "997", "999", "TA1", "850",
             "ack_overdue", "ack_rejected", "ack_unmatched", "recon_exception", "billing_event")  # fmt: skip

Op = Literal["eq", "ne", "in", "not_in", "gt", "ge", "lt", "le", "exists", "missing", "matches"]
OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]

_CANONICAL_OF = {"850": "purchase_order"}  # what we send whose routed payload is a canonical document
_STEP = re.compile(r"([^.\[\]=]+)((?:\[[^\[\]=]+=[^\[\]]*\])*)")
_SELECTOR = re.compile(r"\[([^\[\]=]+)=([^\[\]]*)\]")


@dataclass(frozen=True, slots=True)
class Step:
    """One key of a path, with the ``[field=value]`` selectors that filter a list under it."""

    key: str
    selectors: tuple[tuple[str, str], ...] = ()


@functools.lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[Step, ...]:
    """``parties[role=ship_to].ids[qualifier=92].value`` as steps; ValueError saying what is wrong."""
    if not path or not path.strip():
        raise ValueError("a path is dotted keys, e.g. total.amount")
    steps = []
    for part in path.split("."):
        found = _STEP.fullmatch(part.strip())
        if found is None:
            raise ValueError(f"bad path {path!r} at {part!r}: a step is a key, optionally with [field=value]")
        selectors = tuple((k.strip(), v.strip()) for k, v in _SELECTOR.findall(found.group(2)))
        steps.append(Step(found.group(1).strip(), selectors))
    return tuple(steps)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_SCALARS = (str, int, float, bool, Decimal)


class Predicate(_Strict):
    """A test over the canonical document: ``{path: total.amount, op: gt, value: 1000}``."""

    path: str = Field(description="Dotted keys; `key[field=value]` filters a list; lists are searched element-wise.")
    op: Op = Field(description="eq, ne, in, not_in, gt, ge, lt, le, exists, missing, matches (regex search).")
    value: Any = Field(
        default=None,
        description="What to compare with: a text, number or boolean; a list of them for in/not_in; a regular "
        "expression for matches; none for exists and missing.",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        parse_path(value)
        return value

    @field_validator("op", mode="before")
    @classmethod
    def _known_op(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in OPS:
            raise ValueError(f"unknown op {value!r}{_hint(value, OPS)} (ops: {', '.join(OPS)})")
        return value

    @field_validator("value")
    @classmethod
    def _value_fits_op(cls, value: Any, info: ValidationInfo) -> Any:
        items = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, _SCALARS) for v in items):
            raise ValueError("a value is a text, a number, a boolean or a list of them")
        op = info.data.get("op")
        if op is None:  # the op itself is wrong: that is the problem to report
            return value
        if op in ("exists", "missing") and value is not None:
            raise ValueError(f"op {op} takes no value")
        if op in ("in", "not_in") and value is not None and not isinstance(value, list):
            raise ValueError(f"op {op} needs a list of values, e.g. [A, B]")
        if op not in ("in", "not_in") and isinstance(value, list):
            raise ValueError(f"op {op} compares with one value, not a list (in/not_in take lists)")
        if op == "matches" and value is not None:
            try:
                re.compile(str(value))
            except re.error as exc:
                raise ValueError(f"bad regular expression {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _value_given(self) -> Predicate:
        if self.value is None and self.op not in ("exists", "missing"):
            raise ValueError(f"op {self.op} needs a value")
        return self

    def holds(self, document: dict[str, Any] | None) -> bool:
        """Whether the predicate is true of ``document`` (None: no document, nothing is found)."""
        found = [v for v in _resolve(document, parse_path(self.path)) if v is not None]
        if self.op == "exists":
            return bool(found)
        if self.op == "missing":
            return not found
        if self.op in ("ne", "not_in"):
            positive = "eq" if self.op == "ne" else "in"
            return not any(_compare(positive, v, self.value) for v in found)
        return any(_compare(self.op, v, self.value) for v in found)


class Match(_Strict):
    """What a rule matches; every condition given must hold (none given: every document)."""

    partner: str | list[str] | None = Field(default=None, description="A partner id or a list of them.")
    doc_type: str | list[str] | None = Field(
        default=None, description=f"A document type or a list: {', '.join(DOC_TYPES)}."
    )
    direction: Literal["inbound", "outbound"] | None = Field(default=None, description="Inbound or outbound.")
    test: bool | None = Field(default=None, description="true: test data only; false: production only.")
    where: list[Predicate] = Field(default_factory=list, description="Predicates over the canonical document.")

    @field_validator("doc_type")
    @classmethod
    def _doc_types(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in _as_list(value) or []:
            if name not in DOC_TYPES:
                raise ValueError(
                    f"unknown document type {name!r}{_hint(name, DOC_TYPES)} (known: {', '.join(DOC_TYPES)})"
                )
        return value

    @model_validator(mode="after")
    def _paths_exist(self) -> Match:
        """Each predicate's path names something the canonical types matched can hold: a misspelt key would
        make the rule match nothing, silently (the alerts' payloads are not canonical types: not checked)."""
        named = [self.doc_type] if isinstance(self.doc_type, str) else self.doc_type  # (rules made at import)
        kinds = [_CANONICAL_OF.get(t, t) for t in (named if named is not None else MODELS)]
        if not all(k in MODELS for k in kinds):
            return self  # an alert or an acknowledgment may be matched: its payload is not a canonical type
        for n, predicate in enumerate(self.where):
            steps = [(s.key, [field for field, _ in s.selectors]) for s in parse_path(predicate.path)]
            problem = path_problem(steps, kinds)
            if problem is not None:
                raise ValueError(f"where[{n}] path {predicate.path!r} names nothing in a document: {problem}")
        return self

    def partners(self) -> frozenset[str] | None:
        """The partner ids matched (None: any)."""
        names = _as_list(self.partner)
        return None if names is None else frozenset(names)

    def doc_types(self) -> frozenset[str] | None:
        """The document types matched (None: any)."""
        names = _as_list(self.doc_type)
        return None if names is None else frozenset(names)

    def covers(self, other: Match) -> bool:
        """Whether every document ``other`` matches is matched by this one (predicates aside: none here)."""
        if self.where:
            return False
        mine, theirs = self.partners(), other.partners()
        if mine is not None and (theirs is None or not theirs <= mine):
            return False
        mine, theirs = self.doc_types(), other.doc_types()
        if mine is not None and (theirs is None or not theirs <= mine):
            return False
        if self.direction is not None and self.direction != other.direction:
            return False
        return self.test is None or self.test == other.test


class Rule(_Strict):
    """A route: documents matching ``match`` go to the destinations ``to``."""

    name: str = Field(min_length=1, description="Recorded with every document it routes.")
    match: Match = Field(default_factory=Match, description="What the rule matches (empty: everything).")
    to: list[str] = Field(min_length=1, description="Destination names (keys of `destinations:` in gateway.yaml).")
    stop: bool = Field(
        default=True, description="true: the first matching rule wins; false: later rules may add destinations."
    )


@dataclass(frozen=True, slots=True)
class RouteInput:
    """What routing knows about a document besides its content."""

    partner_id: str | None
    doc_type: str
    direction: Literal["inbound", "outbound"] = "inbound"
    test: bool = False


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Which rules matched and where the document goes; ``unrouted`` with a ``reason`` when nowhere."""

    rules: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    unrouted: bool = False
    reason: str = ""
    misses: tuple[str, ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The decision as the ledger records it."""
        out: dict[str, Any] = {"rules": list(self.rules), "destinations": list(self.destinations)}
        if self.unrouted:
            out["unrouted"] = True
            out["reason"] = self.reason
        return out


def rules_for(partner_id: str | None, profile_rules: Iterable[Rule], rules: Iterable[Rule]) -> list[Rule]:
    """A partner's own rules (named ``<partner>/<name>``, matching that partner only), then the global ones."""
    own = []
    if partner_id is not None:
        for rule in profile_rules:
            match = rule.match.model_copy(update={"partner": partner_id})
            own.append(rule.model_copy(update={"name": f"{partner_id}/{rule.name}", "match": match}))
    return [*own, *rules]


PARTNER_OUTBOX = "partner-outbox"
"""The shipped destination of what we send partners (outbox/<partner>/, or its SFTP server)."""
OUTBOUND_TYPES = frozenset({"997", "999", "TA1", "850"})
"""The document types we send partners, routed by :func:`outbound_rules`."""
DEFAULT_OUTBOUND = Rule(name="default-outbound", match=Match(direction="outbound"), to=[PARTNER_OUTBOX])
"""What routes our acknowledgments and 850s when ``gateway.yaml`` has no rule of its own for them."""


def sends(rule: Rule) -> bool:
    """Whether ``rule`` takes part in routing what we send partners: it says ``direction: outbound``, or
    names one of :data:`OUTBOUND_TYPES` (and not ``direction: inbound``). A rule without either never
    takes an acknowledgment, so an inbound catch-all does not redirect them."""
    if rule.match.direction == "inbound":
        return False
    kinds = rule.match.doc_types()
    return rule.match.direction == "outbound" if kinds is None else bool(kinds & OUTBOUND_TYPES)


def outbound_rules(partner_id: str | None, profile_rules: Iterable[Rule], rules: Iterable[Rule]) -> list[Rule]:
    """The rules that route what we send ``partner_id``: its profile's, then ``gateway.yaml``'s, each kept
    when :func:`sends` says so; :data:`DEFAULT_OUTBOUND` last when ``gateway.yaml`` has none, so that a
    profile's ``stop: false`` copy still lets the document reach the partner."""
    common = [r for r in rules if sends(r)]
    own = [r for r in rules_for(partner_id, profile_rules, []) if sends(r)]
    return [*own, *(common or [DEFAULT_OUTBOUND])]


def route(meta: RouteInput, document: dict[str, Any] | None, rules: list[Rule]) -> RouteDecision:
    """Decide where a document goes: the matching rules in order, until one with ``stop``."""
    matched: list[str] = []
    destinations: list[str] = []
    misses: list[str] = []
    for rule in rules:
        why = _miss(rule.match, meta, document)
        if why is not None:
            misses.append(f"{rule.name}: {why}")
            continue
        matched.append(rule.name)
        destinations.extend(d for d in rule.to if d not in destinations)
        if rule.stop:
            break
    if matched:
        return RouteDecision(tuple(matched), tuple(destinations))
    what = f"{meta.direction} {meta.doc_type} from {meta.partner_id or 'an unknown partner'}"
    if not rules:
        reason = f"no rule matches {what}: no routes are configured"
    else:
        reason = f"no rule matches {what}: " + "; ".join(misses)
    return RouteDecision(unrouted=True, reason=reason, misses=tuple(misses))


def _miss(match: Match, meta: RouteInput, document: dict[str, Any] | None) -> str | None:
    """Why ``match`` does not match (None: it does)."""
    partners = match.partners()
    if partners is not None and meta.partner_id not in partners:
        return f"partner is {meta.partner_id}, not {', '.join(sorted(partners))}"
    kinds = match.doc_types()
    if kinds is not None and meta.doc_type not in kinds:
        return f"document type is {meta.doc_type}, not {', '.join(sorted(kinds))}"
    if match.direction is not None and meta.direction != match.direction:
        return f"direction is {meta.direction}, not {match.direction}"
    if match.test is not None and meta.test != match.test:
        return "test data, the rule takes production only" if meta.test else "production data, the rule takes test only"
    for predicate in match.where:
        if not predicate.holds(document):
            shown = "" if predicate.value is None else f" {_text(predicate.value)}"
            return f"{predicate.path} {predicate.op}{shown} does not hold"
    return None


def _resolve(document: Any, steps: tuple[Step, ...]) -> list[Any]:
    """Every value at ``steps`` under ``document``; lists on the way are searched element by element."""
    current = [document]
    for step in steps:
        following: list[Any] = []
        for value in _flatten(current):
            if not isinstance(value, dict) or step.key not in value:
                continue
            found = value[step.key]
            items = found if isinstance(found, list) else [found]
            following.extend(item for item in _flatten(items) if _selected(item, step.selectors))
        current = following
    return list(_flatten(current))


def _flatten(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _selected(item: Any, selectors: tuple[tuple[str, str], ...]) -> bool:
    if not selectors:
        return True
    return isinstance(item, dict) and all(k in item and _equal(item[k], v) for k, v in selectors)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


_PADDED = re.compile(r"[+-]?0\d")
_NUMERAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: Any) -> Decimal | None:
    """The value as a Decimal when it is a number and not a zero-padded code (X12 writes 01, 002)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    # A pattern first: most values compared are codes and names, and a failed Decimal() raises.
    if _PADDED.match(text) or not _NUMERAL.fullmatch(text):
        return None
    return Decimal(text)


def _equal(found: Any, wanted: Any) -> bool:
    a, b = _number(found), _number(wanted)
    if a is not None and b is not None:
        return a == b
    return _text(found) == _text(wanted)


def _compare(op: str, found: Any, wanted: Any) -> bool:
    if op == "eq":
        return _equal(found, wanted)
    if op == "in":
        return any(_equal(found, w) for w in wanted)
    if op == "matches":
        return re.search(str(wanted), _text(found)) is not None
    a: Any = _number(found)
    b: Any = _number(wanted)
    if a is None or b is None:
        a, b = _text(found), _text(wanted)  # ISO dates and times order as text
    if op == "gt":
        return bool(a > b)
    if op == "ge":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def _as_list(value: str | list[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _hint(wanted: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(wanted, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
