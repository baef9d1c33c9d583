"""A file decided as ``gateway run`` decides it, for ``translate``, ``validate`` and ``ack``.

The command line reads the file, lets the workspace's translator (partner
maps, guide overlays, accepted findings) read it, and hands the result to
:func:`gateway.verdict.decisions`: the same decision the runtime records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.translate import FileInput, Translation, Translator
from gateway.verdict import (
    InterchangeVerdict,
    SetVerdict,
    decide,
    decisions,
    group_refusals,
    loose_failure,
    sender_refusal,
    set_verdict,
)
from gateway.workspace import Workspace
from gateway.x12.validate.report import FileReport, InterchangeReport

STREAM_BYTES = 4 << 20
"""A file bigger than this is read as it is translated, not into memory first."""

CHUNK_SETS = 64
"""Sets of one interchange held before they are decided (ahead of its trailer) and printed: a big
interchange's envelopes are then read first, in a quick pass, as ``gateway run`` does."""


@dataclass(slots=True)
class DecidedFile:
    """What every command knows of one file: its verdicts, its loose translations, and the report."""

    name: str
    verdicts: list[InterchangeVerdict] = field(default_factory=list)
    loose: list[Translation] = field(default_factory=list)
    report: FileReport = field(default_factory=FileReport)

    def translations(self) -> list[tuple[Translation, SetVerdict | None]]:
        """Every translation in file order, each with its set's verdict (None: outside any interchange)."""
        out: list[tuple[Translation, SetVerdict | None]] = []
        for v in self.verdicts:
            out.extend((s.translation, s) for s in v.sets())
        out.extend((t, None) for t in self.loose)
        return sorted(out, key=lambda pair: pair[0].index)

    @property
    def valid(self) -> bool:
        """What ``validate`` says: X12, every envelope accepted, no set rejected."""
        return self.report.valid and all(v.valid for v in self.verdicts)

    def problems(self) -> list[str]:
        """One line for each part of the file that was not accepted (empty: all of it was)."""
        out = [line for v in self.verdicts for line in v.problems()]
        for t in self.loose:
            why = loose_failure(t)
            if why is not None:
                what = f"set {t.set_id} {t.set_control}" if t.set_id else f"document {t.index}"
                out.append(f"{what} failed: {why}")
        if not self.verdicts and not self.loose:
            out.append("no transaction sets or documents found")
        return out


def decide_file(
    translator: Translator,
    ws: Workspace,
    path: Path,
    partner: str | None,
    *,
    x12_only: bool = False,  # validate/ack: X12 read and validated, sets not mapped
    map_name: str | None = None,
) -> DecidedFile:
    """``path`` translated and decided (``partner``: the file's partner, as its inbox folder would say)."""
    data = path.read_bytes()
    # validate and ack need the decision, not the documents: X12 only, sets validated but not mapped.
    given = FileInput(name=str(path), partner_id=partner, map_name=map_name, map_sets=not x12_only)
    items = translator.x12(data, given) if x12_only else translator.translate(data, given)
    decided = DecidedFile(str(path))
    for item in decisions(items, partners=ws.partners, expected=partner, file=str(path)):
        if isinstance(item, InterchangeVerdict):
            decided.verdicts.append(item)
            decided.report.interchanges.append(item.report)
        else:
            if item.finding is not None:
                decided.report.findings.append(item.finding)
            decided.loose.append(item)
    return decided


@dataclass(slots=True)
class StreamedFile:
    """``translate``'s view of a file as it goes: iterate for (translation, verdict) pairs in file order,
    each printed as it comes; ``problems`` fills as the parts not accepted are met (complete at the end).
    The decision is :func:`decide`'s, as ``gateway run`` takes it (big interchanges included)."""

    translator: Translator
    ws: Workspace
    path: Path
    partner: str | None
    map_name: str | None = None
    problems: list[str] = field(default_factory=list)
    _envelopes: dict[int, InterchangeReport] | None = None

    def __iter__(self) -> Iterator[tuple[Translation, SetVerdict | None]]:
        big = self.path.stat().st_size > STREAM_BYTES
        info = FileInput(name=str(self.path), partner_id=self.partner, map_name=self.map_name, report_sets=False)
        pending: list[Translation] = []
        position, early = 0, 0  # interchanges begun; sets of the open interchange already decided and printed
        seen = False  # any set or document (an interchange without sets translates nothing)
        with self.path.open("rb") as source:
            for item in self.translator.translate(source if big else source.read(), info):
                seen = seen or not isinstance(item, InterchangeReport)
                if isinstance(item, InterchangeReport):
                    position += not early
                    verdict = decide(item, pending, partners=self.ws.partners, expected=self.partner,
                                     position=position, file=str(self.path))  # fmt: skip
                    self.problems.extend(verdict.problems())
                    yield from sorted(((s.translation, s) for s in verdict.sets()), key=lambda p: p[0].index)
                    pending, early = [], 0
                elif item.set_id is not None and item.validation is not None:
                    pending.append(item)
                    if len(pending) >= CHUNK_SETS:
                        position += not early
                        early += len(pending)
                        yield from self._early(pending, position)
                        pending = []
                else:
                    self._loose(item)
                    yield item, None
        for item in pending:  # sets of an interchange without a trailer
            self._loose(item)
            yield item, None
        if not seen:
            self.problems.append("no transaction sets or documents found")

    def _early(self, sets: list[Translation], position: int) -> Iterator[tuple[Translation, SetVerdict]]:
        """Sets of a big interchange decided before its trailer, as ``gateway run`` records them (whether
        its envelope refuses them is known from a first quick pass over the file's envelopes)."""
        if self._envelopes is None:
            with self.path.open("rb") as first:
                forced = self.ws.partners.get(self.partner) if self.partner else None
                reports = self.translator.envelopes(first, forced)
                self._envelopes = {ic.header.segment.offset or 0: ic for ic in reports}
        envelopes = self._envelopes
        assert sets[0].validation is not None
        header = sets[0].validation.header.interchange
        _, mismatch = sender_refusal(
            header, partners=self.ws.partners, expected=self.partner, position=position, file=str(self.path)
        )
        envelope = envelopes.get(header.segment.offset or 0)
        refusals = group_refusals(envelope) if envelope is not None else {}
        for item in sets:
            group = item.validation.header.group if item.validation is not None else None
            key = (group.segment.offset or 0) if group is not None else -1
            verdict = set_verdict(item, mismatch or refusals.get(key))
            if not verdict.accepted and verdict.reason != mismatch:  # (a mismatch is said once, at the trailer)
                where = f"interchange {header.control_number}"
                why = f"{verdict.status}: {verdict.reason}" if verdict.reason else verdict.status
                self.problems.append(f"{where}, set {item.set_id} {item.set_control} {why}")
            yield item, verdict

    def _loose(self, item: Translation) -> None:
        why = loose_failure(item)
        if why is not None:
            what = f"set {item.set_id} {item.set_control}" if item.set_id else f"document {item.index}"
            self.problems.append(f"{what} failed: {why}")


__all__ = ["DecidedFile", "StreamedFile", "decide_file"]
