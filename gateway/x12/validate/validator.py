"""The validator: envelope events and segments in, reports out (SNIP levels 1 and 2).

:meth:`Validator.stream` is streaming: it yields each :class:`SetReport`
as its SE is read and keeps no segments, so a 1 GB file validates in flat
memory. :meth:`Validator.validate` builds the whole :class:`FileReport` for
one file (what the CLI and the ack builder use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from gateway.errors import Location
from gateway.x12.findings import Finding, Severity
from gateway.x12.model import (
    GroupEnd,
    GroupStart,
    InterchangeEnd,
    InterchangeHeader,
    InterchangeStart,
    Problem,
    ServiceSegment,
    SetEnd,
    SetStart,
)
from gateway.x12.reader import Source, X12Reader
from gateway.x12.schema.catalog import Catalog, resolve_version
from gateway.x12.schema.compiled import SegmentNode, SegmentSpec, SetDefinition
from gateway.x12.segment import Delimiters, Segment
from gateway.x12.validate.elements import check_segment
from gateway.x12.validate.fastcheck import FastCheck, compile_check
from gateway.x12.validate.report import FileReport, GroupReport, InterchangeReport, SetReport
from gateway.x12.validate.structure import SetMatcher

#: Findings that break the fixed-width rules; ``strict_isa=False`` makes them warnings.
LENIENT_CODES = frozenset({"X12-R002", "X12-R003"})
#: Structure codes whose value is the id of the segment that is missing.
MISSING_CODES = frozenset({"X12-V103", "X12-V110"})
#: Picks the definition for (version, set id, interchange sender id); lets partner overlays in.
DefinitionResolver = Callable[[str, str, str], SetDefinition | None]

#: A partner's accepted deviations: ``(error, its interchange's header, its set id or None)`` → the
#: finding as it stands, or waived (:meth:`Finding.waive`). Only errors are offered.
FindingPolicy = Callable[[Finding, InterchangeHeader, str | None], Finding]

Report = SetReport | GroupReport | InterchangeReport | Finding


@dataclass(slots=True)
class _SetState:
    report: SetReport
    matcher: SetMatcher | None
    delimiters: Delimiters
    st_index: int
    errors: int = 0
    position: int = 1  # of the segment being checked, counted from 1 at ST
    offset: int | None = None  # its byte offset when not the reader's current one (ST, SE)
    reader: X12Reader | None = None


def _never_fast(elements: list[str]) -> bool:
    """The check ``fast_checks=False`` installs: never sure, so the full check runs."""
    return False


class Validator:
    """Validates X12 against the catalog's definitions (plus partner overlays)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        resolver: DefinitionResolver | None = None,
        max_errors: int = 100,
        strict_isa: bool = True,
        pedantic: bool = False,
        keep_sets: bool = True,
        accept: FindingPolicy | None = None,
        fast_checks: bool = True,
        check_sets: bool = True,
    ) -> None:
        self.catalog = catalog
        self.resolver = resolver
        self.max_errors = max_errors
        self.strict_isa = strict_isa
        self.pedantic = pedantic  # also warn about codes outside the usual lists
        self.keep_sets = keep_sets  # False: groups keep tallies only (flat memory on huge files)
        self.accept = accept  # a partner's accepted findings (None: every error stands)
        #: False: every segment's generated check says "look closer", so each takes the full check (the
        #: tests compare both paths this way; a subclass cannot do it when the module is compiled)
        self.fast_checks = fast_checks
        self._fast: dict[tuple[int, str | None], tuple[SegmentSpec, FastCheck]] = {}
        #: False: sets are counted, not checked (no definition looked up, no finding of their own): the
        #: envelope-only pass, whose callers read the envelope and group findings only
        self.check_sets = check_sets

    def validate(self, source: Source) -> FileReport:
        """Read and validate a whole file into one report."""
        report = FileReport()
        for item in self.stream(X12Reader(source)):
            if isinstance(item, InterchangeReport):
                report.interchanges.append(item)
            elif isinstance(item, Finding):
                report.findings.append(item)
        return report

    def _definition(self, version: str, set_id: str, sender: str) -> SetDefinition | None:
        if self.resolver is not None:
            return self.resolver(version, set_id, sender)
        return self.catalog.definition(version, set_id)

    def stream(self, reader: X12Reader) -> Iterator[Report]:  # noqa: C901 - one dispatch loop
        """Yield set reports as sets end, group and interchange reports as those end.

        Interchange reports carry their groups and sets; a Finding is yielded
        for problems outside any interchange.
        """
        ic: InterchangeReport | None = None
        group: GroupReport | None = None
        state: _SetState | None = None
        pedantic = self.pedantic
        matcher: SetMatcher | None = None  # the open set's, when it has a definition
        position = 0
        seen: dict[tuple[str, str, str], int] = {}  # (ISA05, ISA06, ISA13) → byte offset of its first ISA
        for ev in reader:
            if type(ev) is list:
                # The hot path, inlined: a move from the loop's step table, then the segment's
                # generated check. Anything else (no table entry, max use reached, a failed
                # check, pedantic mode) takes the full path, which also explains what is wrong.
                if matcher is not None:
                    position += 1
                    frame = matcher.stack[-1]
                    hit = frame.step[frame.pos + 1].get(ev[0])
                    if hit is not None and not pedantic:
                        j, node, cap = hit
                        counts = frame.counts
                        if counts[j] < cap:
                            counts[j] += 1
                            frame.pos = j
                            if node.fast(ev):
                                continue
                            assert state is not None
                            state.position = position
                            self._explain(state, ev, node)
                            continue
                    assert state is not None
                    state.position = position
                    if not pedantic:
                        problems = matcher.problems
                        before = len(problems)
                        first = matcher.next_iteration(ev)
                        if first is not None:
                            if len(problems) != before or not first.fast(ev):
                                self._after_feed(state, ev, first, before)
                            continue
                    self._segment(state, ev)
                continue
            if isinstance(ev, SetStart):
                state = self._start_set(ev, ic, group)
                state.reader = reader
                matcher = state.matcher
                position = 1
            elif isinstance(ev, SetEnd):
                matcher = None
                if state is not None:
                    state.position = position
                    self._end_set(state, ev)
                    if self.accept is not None:
                        header = state.report.header
                        state.report.findings = self._accepted(state.report.findings, header.interchange, header.set_id)
                    if group is not None:
                        group.add(state.report, self.keep_sets)
                    elif ic is not None:
                        ic.orphan_sets.append(state.report)
                    yield state.report
                state = None
            elif isinstance(ev, GroupStart):
                group = GroupReport(ev.header, None, 0, list(ev.findings))
                self._check_group(group, ic)
                if ic is not None:
                    group.findings = self._accepted(group.findings, ic.header, None)
            elif isinstance(ev, GroupEnd):
                if group is not None:
                    group.trailer = ev.trailer
                    group.set_count = ev.set_count
                    group.findings.extend(self._accepted(ev.findings, ic.header, None) if ic else ev.findings)
                    if ic is not None:
                        ic.groups.append(group)
                    yield group
                group = None
            elif isinstance(ev, InterchangeStart):
                ic = InterchangeReport(
                    ev.header, findings=self._accepted([self._policy(f) for f in ev.findings], ev.header, None)
                )
                repeat = _repeated_isa13(ev.header, seen)
                if repeat is not None:
                    ic.findings.append(repeat)
            elif isinstance(ev, InterchangeEnd):
                if ic is not None:
                    ic.trailer = ev.trailer
                    ic.findings.extend(self._accepted(ev.findings, ic.header, None))
                    yield ic
                ic = None
            elif isinstance(ev, ServiceSegment):
                if ic is not None:
                    ic.service_segments.append(ev.segment)
            elif isinstance(ev, Problem):
                if ic is not None:
                    ic.findings.extend(self._accepted([ev.finding], ic.header, None))
                else:
                    yield ev.finding

    def _accepted(self, findings: list[Finding], header: InterchangeHeader, set_id: str | None) -> list[Finding]:
        """``findings`` with the errors the partner's profile accepts waived (see :data:`FindingPolicy`)."""
        accept = self.accept
        if accept is None or not findings:
            return findings
        return [accept(f, header, set_id) if f.is_error else f for f in findings]

    def _policy(self, finding: Finding) -> Finding:
        if not self.strict_isa and finding.code in LENIENT_CODES:
            return replace(finding, severity=Severity.WARNING)
        return finding

    def _check_group(self, group: GroupReport, ic: InterchangeReport | None) -> None:
        version = resolve_version(group.header.version)
        if not self.catalog.has_version(version):
            seg = group.header.segment
            group.findings.append(
                Finding(
                    "X12-G004",
                    f"version {group.header.version!r} is not supported (supported: "
                    f"{', '.join(self.catalog.versions)})",
                    Location(
                        segment_id="GS",
                        interchange_index=seg.index,
                        byte_offset=seg.offset,
                        element=8,
                        group=group.header.control_number,
                    ),
                    value=group.header.version,
                )
            )

    def _start_set(self, ev: SetStart, ic: InterchangeReport | None, group: GroupReport | None) -> _SetState:
        header = ev.header
        report = SetReport(header, 0, list(ev.findings))
        st = header.segment
        state = _SetState(report, None, header.interchange.delimiters, st.index)
        if group is None or not self.check_sets:
            return state
        version = resolve_version(group.header.version)
        if not self.catalog.has_version(version):
            report.findings.append(
                self._set_finding(
                    st, header.control_number, "X12-S004", f"version {group.header.version!r} is not supported"
                )
            )
            return state
        definition = self._definition(version, header.set_id, header.interchange.sender_id)
        if definition is None:
            known = ", ".join(self.catalog.set_ids(version))
            report.findings.append(
                self._set_finding(
                    st,
                    header.control_number,
                    "X12-S004",
                    f"transaction set {header.set_id} is not supported in {version} (supported: {known})",
                )
            )
            return state
        if group.header.functional_id != definition.functional_group:
            report.findings.append(
                self._set_finding(
                    st,
                    header.control_number,
                    "X12-S007",
                    f"a {header.set_id} belongs in a {definition.functional_group} group, "
                    f"not {group.header.functional_id!r} (GS01)",
                )
            )
        report.definition = f"{definition.version}/{definition.id}" + (
            f"+{definition.overlay}" if definition.overlay else ""
        )
        known_ids = self.catalog.known_segments(version)
        self._install_checks(definition, header.interchange.delimiters.repetition)
        state.matcher = SetMatcher(definition, known_ids)
        self._control_segment(state, st)
        return state

    @staticmethod
    def _set_finding(st: Segment, control: str, code: str, message: str) -> Finding:
        loc = Location(
            segment_id="ST", segment_index=1, interchange_index=st.index, byte_offset=st.offset, transaction_set=control
        )
        return Finding(code, message, loc, value=st.element(1))

    def _segment(self, state: _SetState, elements: list[str]) -> None:
        """Place and check one segment (the inlined loop in :meth:`stream` is the fast twin)."""
        matcher = state.matcher
        if matcher is None:
            return
        before = len(matcher.problems)
        node = matcher.feed(elements)
        self._after_feed(state, elements, node, before)

    def _after_feed(self, state: _SetState, elements: list[str], node: SegmentNode | None, before: int) -> None:
        matcher = state.matcher
        assert matcher is not None
        if state.errors >= self.max_errors:
            del matcher.problems[before:]  # the cap is reached (_add marked the report truncated): not kept
            return
        if len(matcher.problems) > before:
            self._structure_findings(state, elements, matcher.problems[before:])
            del matcher.problems[before:]  # reported: a hostile set of a million bad HLs does not pile them up
        if node is not None and (self.pedantic or not node.fast(elements)):
            self._explain(state, elements, node)

    def _explain(self, state: _SetState, elements: list[str], node: SegmentNode) -> None:
        """The full element check, for a segment whose generated check said no."""
        if state.errors >= self.max_errors:
            return
        problems = check_segment(elements, node.spec, state.delimiters, self.pedantic)
        if problems:
            assert state.matcher is not None
            self._element_findings(state, elements, state.matcher.loop_path, problems)

    def _install_checks(self, definition: SetDefinition, rep: str | None) -> None:
        """Put the generated checks for ``rep`` on every segment node of ``definition`` (once per change)."""
        if not self.fast_checks:
            definition.checks_for = "\x00"  # (whatever a fast validator of the same definitions installs next)
        elif definition.checks_for == rep:
            return
        stack = [definition.root]
        while stack:
            loop = stack.pop()
            for child in loop.children:
                if isinstance(child, SegmentNode):
                    child.fast = self._fast_check(child.spec, rep) if self.fast_checks else _never_fast
                else:
                    stack.append(child)
        if self.fast_checks:
            definition.checks_for = rep

    def _fast_check(self, spec: SegmentSpec, repetition: str | None) -> FastCheck:
        # Keyed by id() for speed; the entry keeps its spec so a reused id is never mistaken.
        key = (id(spec), repetition)
        entry = self._fast.get(key)
        if entry is None or entry[0] is not spec:
            if len(self._fast) > 20_000:  # overlays compiled per call must not grow this forever
                self._fast.clear()
            entry = self._fast[key] = (spec, compile_check(spec, repetition))
        return entry[1]

    def _control_segment(self, state: _SetState, seg: Segment) -> None:
        """ST and SE go through the same checks, located by their own positions."""
        state.position = seg.index - state.st_index + 1
        state.offset = seg.offset
        self._segment(state, seg.elements)
        state.offset = None

    def _location(
        self,
        state: _SetState,
        elements: list[str],
        loop: str,
        element: int | None = None,
        component: int | None = None,
    ) -> Location:
        header = state.report.header
        return Location(
            interchange=header.interchange.control_number,
            group=header.group.control_number if header.group else None,
            transaction_set=header.control_number,
            segment_id=elements[0],
            segment_index=state.position,
            interchange_index=state.st_index + state.position - 1,
            byte_offset=state.offset if state.offset is not None or state.reader is None else state.reader.offset,
            element=element,
            component=component,
            loop=loop or None,
        )

    def _add(self, state: _SetState, finding: Finding) -> None:
        if state.errors >= self.max_errors:
            state.report.truncated = True
            return
        state.report.findings.append(finding)
        if finding.is_error:
            state.errors += 1
            if state.errors >= self.max_errors:
                state.report.truncated = True

    def _structure_findings(
        self, state: _SetState, elements: list[str], problems: list[tuple[str, str, str, str | None]]
    ) -> None:
        for code, message, loop, value in problems:
            loc = self._location(state, elements, loop)
            if code in MISSING_CODES and value:
                # A missing segment is located where it was expected, under its own id (AK3 reports it so).
                loc = replace(loc, segment_id=value, byte_offset=None)
                value = None
            self._add(state, Finding(code, message, loc, value=value))

    def _element_findings(
        self,
        state: _SetState,
        elements: list[str],
        loop: str,
        problems: list[tuple[str, int, int | None, str, str | None, str | None]],
    ) -> None:
        for code, pos, comp, message, value, ref in problems:
            severity = Severity.WARNING if code == "X12-V214" else Severity.ERROR
            loc = self._location(state, elements, loop, pos, comp)
            self._add(state, Finding(code, message, loc, severity, value, ref))

    def _end_set(self, state: _SetState, ev: SetEnd) -> None:
        report = state.report
        report.segment_count = ev.segment_count
        report.findings.extend(ev.findings)
        if state.matcher is None:
            return
        if ev.trailer is not None:
            self._control_segment(state, ev.trailer)
            where = ev.trailer.elements
        else:
            where = ["SE"]
        before = len(state.matcher.problems)
        problems = state.matcher.finish()
        if len(problems) > before:
            self._structure_findings(state, where, problems[before:])


def _repeated_isa13(header: InterchangeHeader, seen: dict[tuple[str, str, str], int]) -> Finding | None:
    """A warning on this ISA when an earlier interchange of the file has the same sender and ISA13."""
    key = (header.sender_qualifier, header.sender_id, header.control_number)
    offset = header.segment.offset
    first = seen.get(key)
    if first is None:
        seen[key] = offset
        return None
    return Finding(
        "X12-I012",
        f"ISA13 {header.control_number} repeats the interchange at byte {first} (same sender "
        f"{header.sender_qualifier}:{header.sender_id}): a partner's resend in one file, or a numbering error",
        Location(interchange=header.control_number, segment_id="ISA", byte_offset=offset, element=13),
        Severity.WARNING,
        value=header.control_number,
    )
