"""Definitions compiled for fast validation: specs, structure nodes, syntax rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SyntaxRule:
    """An X12 syntax note, e.g. ``P0102``: kind letter and 1-based positions."""

    kind: str
    positions: tuple[int, ...]
    text: str

    @classmethod
    def parse(cls, note: str) -> SyntaxRule:
        """Parse ``P0102`` / ``L010203``; raises ValueError when malformed."""
        kind, digits = note[:1], note[1:]
        if kind not in "PRECL" or not kind or len(digits) < 4 or len(digits) % 2 or not digits.isdigit():
            raise ValueError(f"syntax note {note!r} is not a letter P/R/E/C/L and 2-digit positions")
        return cls(kind, tuple(int(digits[i : i + 2]) for i in range(0, len(digits), 2)), note)


@dataclass(frozen=True, slots=True)
class ElementSpec:
    """A data element (or composite) at one position, fully resolved."""

    ref: str
    name: str
    type: str  # AN, ID, Nn, R, DT, TM, B, or "composite"
    min: int
    max: int
    req: str
    repeat: int = 1
    codes: frozenset[str] | None = None
    common: frozenset[str] | None = None
    components: tuple[ElementSpec, ...] = ()
    syntax: tuple[SyntaxRule, ...] = ()
    used: bool = True  # False: a partner guide says this element is never sent
    fast: str = field(init=False, default="")  # which inline check applies ("" = the full one)

    def __post_init__(self) -> None:
        simple = self.used and not self.components and self.repeat == 1
        kind = self.type if self.type in ("AN", "ID", "R", "DT", "TM") else "N" if self.type[0] == "N" else ""
        object.__setattr__(self, "fast", kind if simple else "")


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    """A segment's elements and syntax notes."""

    id: str
    name: str
    elements: tuple[ElementSpec, ...]
    syntax: tuple[SyntaxRule, ...] = ()
    mandatory: tuple[int, ...] = field(init=False, default=())  # 1-based positions with req M

    def __post_init__(self) -> None:
        positions = tuple(n for n, e in enumerate(self.elements, 1) if e.req == "M")
        object.__setattr__(self, "mandatory", positions)


@dataclass(slots=True)
class SegmentNode:
    """A segment's place in a set's structure."""

    spec: SegmentSpec
    pos: str
    req: str
    max: int | None
    used: bool = True
    from_guide: bool = False  # requirement tightened by a partner's guide
    #: the validator's generated check for this node (installed per repetition separator)
    fast: Callable[[list[str]], bool] = field(default=lambda elements: False, repr=False)

    @property
    def id(self) -> str:
        """The segment id this node matches."""
        return self.spec.id


@dataclass(frozen=True, slots=True)
class Level:
    """An HL level code and the level codes it may sit under (empty: top level)."""

    code: str
    name: str
    parents: frozenset[str]


@dataclass(slots=True)
class LoopNode:
    """A loop; ``children[0]`` is its trigger segment."""

    id: str
    req: str
    max: int | None
    children: list[SegmentNode | LoopNode]
    path: str = ""
    hierarchy: dict[str, Level] | None = None
    by_id: dict[str, tuple[int, ...]] = field(default_factory=dict)
    mandatory: tuple[int, ...] = ()
    repeat_after: int | None = None  # see index()
    trigger_id: str = ""  # the trigger segment id, kept as a field for the hot path
    #: [last matched position + 1][segment id] → (position, node, use cap), for moves that stay in this loop,
    #: land on a segment and skip no mandatory child: the validator's fast path.
    step: list[dict[str, tuple[int, SegmentNode, int]]] = field(default_factory=list)
    #: segment id → (whether it is this loop's trigger at position 0, the child it lands on, 0 for a segment,
    #: 1 for a loop, 2 for a loop whose first child is a loop): the mapping's scope builder's table, so that
    #: placing a segment is one lookup (see gateway.mapping.x12scope.build_scopes).
    scoping: dict[str, tuple[bool, SegmentNode | LoopNode, int]] = field(default_factory=dict)

    @property
    def trigger(self) -> str:
        """The segment id that starts an iteration of this loop."""
        first = self.children[0]
        return first.id if isinstance(first, SegmentNode) else first.trigger

    def _scoping(self, key: str, idxs: tuple[int, ...]) -> tuple[bool, SegmentNode | LoopNode, int]:
        """An entry of :attr:`scoping`: an id used at several positions lands on its loop, if one is a loop."""
        loops = [self.children[i] for i in idxs if isinstance(self.children[i], LoopNode)]
        child = loops[0] if loops and len(idxs) > 1 else self.children[idxs[0]]
        if isinstance(child, SegmentNode):
            kind = 0
        else:
            kind = 2 if isinstance(child.children[0], LoopNode) else 1
        return idxs[0] == 0 and key == self.trigger_id, child, kind

    def index(self) -> None:
        """Build the id → child positions table (a loop is found by its trigger)."""
        table: dict[str, list[int]] = {}
        for i, child in enumerate(self.children):
            key = child.id if isinstance(child, SegmentNode) else child.trigger
            table.setdefault(key, []).append(i)
            if isinstance(child, LoopNode):
                child.index()
        self.by_id = {k: tuple(v) for k, v in table.items()}
        self.mandatory = tuple(i for i, child in enumerate(self.children) if child.req == "M")
        first = self.children[0]
        self.trigger_id = self.trigger
        self.scoping = {key: self._scoping(key, idxs) for key, idxs in self.by_id.items()}
        # A new iteration can skip the general search when the trigger occurs only first,
        # is used, and the iteration has passed its last mandatory child.
        self.repeat_after = (
            max(self.mandatory, default=0)
            if self.by_id.get(self.trigger) == (0,) and isinstance(first, SegmentNode) and first.used
            else None
        )
        self.step = [{} for _ in range(len(self.children) + 1)]
        for pos in range(-1, len(self.children)):
            low = pos if pos > 0 else (0 if not self.path else 1)
            for key, idxs in self.by_id.items():
                j = next((i for i in idxs if i >= low), None)
                if j is None or not isinstance(self.children[j], SegmentNode):
                    continue
                if any(pos < m < j for m in self.mandatory):
                    continue
                node = self.children[j]
                assert isinstance(node, SegmentNode)
                # cap: the count above which the slow path reports (0 when a guide says "never")
                cap = (node.max if node.max is not None else 1 << 62) if node.used else 0
                self.step[pos + 1][key] = (j, node, cap)


@dataclass(slots=True)
class SetDefinition:
    """A compiled transaction set: its root loop plus identity."""

    id: str
    name: str
    version: str
    functional_group: str
    root: LoopNode
    segment_ids: frozenset[str]
    overlay: str | None = None
    #: the repetition separator the nodes' generated checks were made for ("\x00": none yet).
    #: The validator installs them on first use; definitions are shared, so validate one
    #: repetition separator at a time per process (the runtime's workers are processes).
    checks_for: str | None = "\x00"
