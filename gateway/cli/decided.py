"""A file decided as ``gateway run`` decides it, for ``translate``, ``validate`` and ``ack``.

The command line reads the file, lets the workspace's translator (partner
maps, guide overlays, accepted findings) read it, and hands the result to
:func:`gateway.verdict.decisions`: the same decision the runtime records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gateway.translate import FileInput, Translation, Translator
from gateway.verdict import InterchangeVerdict, SetVerdict, decisions, loose_failure
from gateway.workspace import Workspace
from gateway.x12.validate.report import FileReport


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


__all__ = ["DecidedFile", "decide_file"]
