"""Segment placement: loops, order, requirement and repeat counts, HL hierarchy.

A :class:`SetMatcher` walks a compiled set structure one segment at a time,
keeping a stack of open loops. For each segment it looks forward in the
innermost loop, then in each enclosing loop (closing the inner ones), which
is how X12 resolves a segment id that appears in several places.
"""

from __future__ import annotations

from gateway.x12.schema.compiled import LoopNode, SegmentNode, SetDefinition
from gateway.x12.segment import is_digits

#: One problem: (code, message, loop path, value).
StructureProblem = tuple[str, str, str, str | None]


class _Frame:
    """An open loop: its last matched position and per-child counts (``step`` is the loop's table)."""

    __slots__ = ("counts", "loop", "pos", "step")

    def __init__(self, loop: LoopNode, pos: int) -> None:
        self.loop = loop
        self.pos = pos
        self.counts = [0] * len(loop.children)
        self.step = loop.step


def _label(node: SegmentNode | LoopNode) -> str:
    if isinstance(node, SegmentNode):
        return f"{node.id} (position {node.pos})"
    return f"loop {node.path} (starts with {node.trigger})"


class SetMatcher:
    """Places the segments of one transaction set; collects structure problems."""

    def __init__(self, definition: SetDefinition, known_segment: set[str] | frozenset[str]) -> None:
        self.definition = definition
        self.known = known_segment
        self.stack = [_Frame(definition.root, -1)]
        self.problems: list[StructureProblem] = []
        self.hl_levels: dict[str, str] = {}
        self.last_hl = 0

    @property
    def loop_path(self) -> str:
        """The innermost open loop's path (``""`` at the set's top level)."""
        return self.stack[-1].loop.path

    def feed(self, elements: list[str]) -> SegmentNode | None:
        """Place a segment (its element list); returns its node, or None if it has no place."""
        sid = elements[0]
        stack = self.stack
        frame = stack[-1]
        hit = frame.step[frame.pos + 1].get(sid)
        if hit is not None:
            j, node, cap = hit
            counts = frame.counts
            counts[j] += 1
            frame.pos = j
            if counts[j] > cap:
                self._segment_limits(node, frame)
            return node
        repeated = self.next_iteration(elements)
        if repeated is not None:
            return repeated
        for level in range(len(stack) - 1, -1, -1):
            frame = stack[level]
            idxs = frame.loop.by_id.get(sid)
            if not idxs:
                continue
            low = frame.pos if frame.pos > 0 else (0 if level == 0 else 1)
            for j in idxs:
                if j >= low:
                    return self._take(level, j, elements)
        self._misplaced(sid)
        return None

    def next_iteration(self, elements: list[str]) -> SegmentNode | None:
        """The next iteration of the open loop (HL after HL) if that is where ``elements`` goes.

        The shortcut applies only where the general search would land the same way:
        the trigger occurs only first in the loop, the iteration has passed its last
        mandatory child, and the loop is under its maximum.
        """
        stack = self.stack
        frame = stack[-1]
        loop = frame.loop
        if loop.repeat_after is None or elements[0] != loop.trigger_id or frame.pos < loop.repeat_after:
            return None
        parent = stack[-2]
        j = parent.pos
        if loop.max is not None and parent.counts[j] >= loop.max:
            return None
        parent.counts[j] += 1
        frame.pos = 0
        frame.counts = [0] * len(loop.children)
        frame.counts[0] = 1
        if loop.hierarchy is not None:
            self._check_hl(loop, elements)
        first = loop.children[0]
        assert isinstance(first, SegmentNode)
        return first

    def _take(self, level: int, j: int, elements: list[str]) -> SegmentNode:
        stack = self.stack
        while len(stack) - 1 > level:
            self._close(stack.pop())
        frame = stack[level]
        children = frame.loop.children
        for i in frame.loop.mandatory:
            if frame.pos < i < j:
                self._missing_if_required(frame, i)
        child = children[j]
        frame.counts[j] += 1
        frame.pos = j
        if isinstance(child, SegmentNode):
            self._segment_limits(child, frame)
            return child
        if child.max is not None and frame.counts[j] > child.max:
            self.problems.append(
                ("X12-V104", f"loop {child.path} occurs more than {child.max} times", child.path, None)
            )
        inner = _Frame(child, 0)
        inner.counts[0] = 1
        stack.append(inner)
        trigger = child.children[0]
        assert isinstance(trigger, SegmentNode)
        if not trigger.used:
            self.problems.append(
                ("X12-V111", f"loop {child.path} is never sent under this partner's guide", child.path, None)
            )
        if child.hierarchy is not None:
            self._check_hl(child, elements)
        return trigger

    def _segment_limits(self, child: SegmentNode, frame: _Frame) -> None:
        """Max use and guide usage of a segment just placed in ``frame``."""
        count = frame.counts[frame.pos]
        if child.max is not None and count > child.max:
            self.problems.append(
                ("X12-V105", f"{child.id} occurs more than {child.max} times here", frame.loop.path, None)
            )
        elif not child.used:
            self.problems.append(
                ("X12-V111", f"{child.id} is never sent under this partner's guide", frame.loop.path, None)
            )

    def _missing_if_required(self, frame: _Frame, i: int) -> None:
        child = frame.loop.children[i]
        if child.req == "M" and frame.counts[i] == 0:
            trigger = child if isinstance(child, SegmentNode) else child.children[0]
            code = "X12-V110" if isinstance(trigger, SegmentNode) and trigger.from_guide else "X12-V103"
            where = f" in loop {frame.loop.path}" if frame.loop.path else ""
            missing_id = trigger.id if isinstance(trigger, SegmentNode) else None
            self.problems.append((code, f"mandatory {_label(child)} is missing{where}", frame.loop.path, missing_id))

    def _close(self, frame: _Frame) -> None:
        for i in frame.loop.mandatory:
            if i > frame.pos:
                self._missing_if_required(frame, i)

    def finish(self) -> list[StructureProblem]:
        """Close every open loop (reporting missing mandatory segments); returns all problems."""
        while len(self.stack) > 1:
            self._close(self.stack.pop())
        self._close(self.stack[0])
        return self.problems

    def _misplaced(self, sid: str) -> None:
        path = self.loop_path
        if sid in self.definition.segment_ids:
            self.problems.append(("X12-V107", f"{sid} is not in its proper place in the sequence", path, sid))
        elif sid in self.known:
            self.problems.append(("X12-V106", f"{sid} is not part of transaction set {self.definition.id}", path, sid))
        else:
            self.problems.append(("X12-V101", f"{sid!r} is not a known segment id", path, sid))

    def _check_hl(self, loop: LoopNode, elements: list[str]) -> None:
        levels = loop.hierarchy
        assert levels is not None
        n = len(elements)
        hl_id = elements[1] if n > 1 else ""
        parent = elements[2] if n > 2 else ""
        code = elements[3] if n > 3 else ""
        path = loop.path
        number = int(hl_id) if is_digits(hl_id) else None
        if number is None or number != self.last_hl + 1:
            self.problems.append(
                ("X12-V108", f"HL01 {hl_id!r} should be {self.last_hl + 1} (HL ids count up from 1)", path, hl_id)
            )
        if number is not None:
            self.last_hl = number
        level = levels.get(code)
        if level is None:
            self.problems.append(("X12-V108", f"HL03 level {code!r} is not one of {', '.join(levels)}", path, code))
        elif parent:
            parent_level = self.hl_levels.get(parent)
            if parent_level is None:
                self.problems.append(("X12-V108", f"HL02 parent {parent!r} is not an earlier HL01", path, parent))
            elif parent_level not in level.parents:
                allowed = ", ".join(sorted(level.parents)) or "nothing (top level)"
                self.problems.append(
                    (
                        "X12-V108",
                        f"level {code} ({level.name}) cannot sit under level {parent_level}; allowed under {allowed}",
                        path,
                        parent,
                    )
                )
        elif level.parents:
            self.problems.append(("X12-V108", f"level {code} ({level.name}) needs a parent (HL02)", path, code))
        self.hl_levels[hl_id] = code
