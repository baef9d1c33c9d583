"""Reports as plain data (for ``--json``) and as text lines (for people)."""

from __future__ import annotations

from typing import Any

from gateway.x12.findings import Finding
from gateway.x12.validate.report import FileReport, GroupReport, InterchangeReport, SetReport


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as JSON-ready data; location fields that are unknown are left out."""
    loc = {k: getattr(f.location, k) for k in f.location.__slots__ if getattr(f.location, k) is not None}
    out: dict[str, Any] = {"code": f.code, "severity": f.severity.value, "message": f.message, "location": loc}
    if f.value is not None:
        out["value"] = f.value
    if f.element_ref:
        out["element_ref"] = f.element_ref
    if f.waived is not None:
        out["accepted"] = f.waived
    return out


def set_dict(s: SetReport) -> dict[str, Any]:
    """A set report as JSON-ready data."""
    return {
        "set_id": s.header.set_id,
        "control_number": s.header.control_number,
        "definition": s.definition,
        "outcome": s.outcome.value,
        "segment_count": s.segment_count,
        "truncated": s.truncated,
        "findings": [finding_dict(f) for f in s.findings],
    }


def group_dict(g: GroupReport) -> dict[str, Any]:
    """A group report as JSON-ready data."""
    h = g.header
    return {
        "functional_id": h.functional_id,
        "control_number": h.control_number,
        "version": h.version,
        "sender": h.sender_id,
        "receiver": h.receiver_id,
        "outcome": g.outcome.value,
        "findings": [finding_dict(f) for f in g.findings],
        "sets": [set_dict(s) for s in g.sets],
    }


def interchange_dict(ic: InterchangeReport) -> dict[str, Any]:
    """An interchange report as JSON-ready data."""
    h = ic.header
    return {
        "control_number": h.control_number,
        "sender": f"{h.sender_qualifier}:{h.sender_id}",
        "receiver": f"{h.receiver_qualifier}:{h.receiver_id}",
        "version": h.version,
        "usage": h.usage,
        "accepted": ic.accepted,
        "findings": [finding_dict(f) for f in ic.findings],
        "groups": [group_dict(g) for g in ic.groups],
        "orphan_sets": [set_dict(s) for s in ic.orphan_sets],
    }


def file_dict(name: str, report: FileReport, valid: bool | None = None) -> dict[str, Any]:
    """A file's report as JSON-ready data (``valid``: the caller's verdict, when it knows more)."""
    return {
        "file": name,
        "valid": report.valid if valid is None else valid,
        "findings": [finding_dict(f) for f in report.findings],
        "interchanges": [interchange_dict(ic) for ic in report.interchanges],
    }


def _finding_lines(findings: list[Finding], indent: str) -> list[str]:
    lines = []
    for f in findings:
        text = f"{indent}{'error' if f.is_error else 'warning'} [{f.code}] {f.location.describe()}: {f.message}"
        if f.value is not None and f.value not in f.message:
            text += f" (value {f.value!r})"
        if f.waived is not None:
            text += f" (accepted: {f.waived})"
        lines.append(text)
    return lines


def _set_lines(s: SetReport, indent: str) -> list[str]:
    label = f"{indent}ST {s.header.set_id} {s.header.control_number}: {s.outcome.value}"
    if s.definition:
        label += f" ({s.definition})"
    lines = [label, *_finding_lines(s.findings, indent + "  ")]
    if s.truncated:
        lines.append(f"{indent}  ... more errors not listed (cap reached)")
    return lines


def file_lines(name: str, report: FileReport, valid: bool | None = None) -> list[str]:
    """A file's report as indented text lines (``valid``: the caller's verdict, when it knows more)."""
    if not report.interchanges:
        first = next((f for f in report.findings if f.is_error), None)
        reason = first.message if first else "no interchange found"
        return [f"{name}: {reason}"]
    valid = report.valid if valid is None else valid
    lines = [f"{name}: {'valid' if valid else 'INVALID'}"]
    lines += _finding_lines(report.findings, "  ")
    for ic in report.interchanges:
        h = ic.header
        lines.append(
            f"  ISA {h.control_number} {h.sender_qualifier}:{h.sender_id} -> {h.receiver_qualifier}:"
            f"{h.receiver_id} ({h.version}, {h.usage}): {'accepted' if ic.accepted else 'rejected'}"
        )
        lines += _finding_lines(ic.findings, "    ")
        for g in ic.groups:
            lines.append(
                f"    GS {g.header.functional_id} {g.header.control_number} {g.header.version}: {g.outcome.value} "
                f"({g.accepted_count} of {g.received} sets accepted)"
            )
            lines += _finding_lines(g.findings, "      ")
            for s in g.sets:
                lines += _set_lines(s, "      ")
        for s in ic.orphan_sets:
            lines += _set_lines(s, "    ")
    return lines
