"""Matching an inbound 997/999/TA1 to the transaction sets we sent (pure: no store, no clock).

The rules, as the big gateways apply them:

- a 997/999 answers the group whose GS06 is its ``AK102`` (functional id ``AK101``), and in it the
  sets whose ST02 is an ``AK202`` (set id ``AK201``: ST02 is unique only inside its group, so both are
  needed). An ``AK1`` + ``AK9`` with no ``AK2`` loop answers every set of the group with ``AK901``'s
  verdict; a set an ``AK2`` list leaves out takes the group's verdict too;
- a TA1 answers the interchange whose ISA13 is its ``TA101``: a rejected one (``R``) rejects every set
  still waiting in it (no 997 will come), an accepted one is noted and the sets wait on;
- a set already answered is not answered again: the second acknowledgment is a *duplicate*, reported
  with its own verdict and never applied; an acknowledgment (or a set in it) that names nothing we sent
  is *unmatched*, reported too. Neither is ever dropped;
- an answer received after the set's deadline still reconciles, marked *late*.

Error codes come out in words (``AK304 3: Mandatory Segment Missing``) from the code lists of the
version (:class:`CodeWords`, built from the catalog by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.x12.ack.read import ElementError, FunctionalAck, SegmentError, SetAck, TA1Ack

__all__ = [
    "CodeWords",
    "Owed",
    "Reconciliation",
    "SetOutcome",
    "ack_from_dict",
    "reconcile",
    "set_status",
]

ANSWERED = frozenset({"accepted", "accepted_with_errors", "rejected"})
"""Statuses of a set that has its answer: a later acknowledgment of it is a duplicate."""

_SET_VERDICTS = {"A": "accepted", "E": "accepted_with_errors"}  # R, M, W, X: rejected
_GROUP_VERDICTS = {"A": "accepted", "E": "accepted_with_errors", "P": "partially_accepted"}

# Data element numbers of the acknowledgment codes, per acknowledgment kind.
_ELEMENTS = {
    "997": {"segment": "720", "element": "723", "set": "718", "group": "716", "verdict": "717"},
    "999": {"segment": "620", "element": "621", "set": "618", "group": "716", "verdict": "717"},
}
_LABELS = {
    "997": {"segment": "AK304", "element": "AK403", "set": "AK502", "group": "AK905"},
    "999": {"segment": "IK304", "element": "IK403", "set": "IK502", "group": "AK905"},
}


@dataclass(frozen=True, slots=True)
class CodeWords:
    """Code lists by data element number (``720`` → {``3``: ``Mandatory Segment Missing``}); a code a list
    lacks is shown as itself, never dropped."""

    lists: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def say(self, element: str, code: str) -> str:
        """``code: words`` (``code`` alone when the list does not know it)."""
        words = self.lists.get(element, {}).get(code)
        return f"{code}: {words}" if words else code


@dataclass(frozen=True, slots=True)
class Owed:
    """One transaction set we sent, as tracked: ``key`` is its tracking row's id."""

    key: int
    outbound_id: int
    interchange: str
    functional_id: str
    group_control: str
    set_id: str
    set_control: str
    status: str
    due_at: datetime | None = None
    ta1_code: str | None = None


@dataclass(frozen=True, slots=True)
class SetOutcome:
    """What an acknowledgment says of one set we sent. ``duplicate``: the set had its answer already,
    so this one is reported and not applied."""

    key: int
    outbound_id: int
    status: str
    group_status: str | None
    errors: tuple[str, ...] = ()
    late: bool = False
    duplicate: bool = False
    ta1_code: str | None = None
    changes: bool = True  # False: only noted (a TA1 accepting an interchange whose sets wait on)


@dataclass(slots=True)
class Reconciliation:
    """An acknowledgment matched against what we sent: per-set outcomes, what it names that we never
    sent (``unmatched``, in words), and the overall ``outcome`` (matched, partly_matched, unmatched,
    duplicate) with a one-line ``summary``."""

    kind: str
    control_number: str
    outcome: str
    summary: str
    sets: list[SetOutcome] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    group_status: str | None = None
    group_errors: list[str] = field(default_factory=list)

    @property
    def applied(self) -> list[SetOutcome]:
        """The outcomes that change a set (not duplicates)."""
        return [s for s in self.sets if not s.duplicate]

    @property
    def rejected(self) -> list[SetOutcome]:
        """The sets this acknowledgment rejects (applied ones)."""
        return [s for s in self.applied if s.status == "rejected" and s.changes]

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the ledger and ``--json``."""
        return {
            "kind": self.kind,
            "control_number": self.control_number,
            "outcome": self.outcome,
            "summary": self.summary,
            "group_status": self.group_status,
            "group_errors": self.group_errors,
            "unmatched": self.unmatched,
            "sets": [
                {
                    "id": s.key,
                    "outbound_id": s.outbound_id,
                    "status": s.status,
                    "errors": list(s.errors),
                    "late": s.late,
                    "duplicate": s.duplicate,
                }
                for s in self.sets
            ],
        }


def set_status(code: str) -> str:
    """An AK501/IK501 (or AK901) code as a set status: A accepted, E accepted with errors, else rejected."""
    return _SET_VERDICTS.get(code, "rejected")


def group_status(code: str) -> str:
    """An AK901 code as a group status (``P``: partially accepted)."""
    return _GROUP_VERDICTS.get(code, "rejected")


def reconcile(
    ack: FunctionalAck | TA1Ack, owed: Sequence[Owed], received_at: datetime, words: CodeWords | None = None
) -> Reconciliation:
    """Match ``ack`` against ``owed`` (the candidate sets: for a 997/999 those of the partner's group
    ``AK102``, for a TA1 those of the interchange ``TA101``)."""
    words = words or CodeWords()
    if isinstance(ack, TA1Ack):
        return _ta1(ack, owed, received_at, words)
    return _functional(ack, owed, received_at, words)


def _late(o: Owed, received_at: datetime) -> bool:
    return o.due_at is not None and received_at > o.due_at


def _outcome(rec: Reconciliation) -> None:
    """Set ``outcome`` from the sets and what did not match."""
    applied = rec.applied
    if not rec.sets:
        rec.outcome = "unmatched"
    elif not applied:
        rec.outcome = "duplicate"
    elif rec.unmatched or len(applied) < len(rec.sets):
        rec.outcome = "partly_matched"
    else:
        rec.outcome = "matched"


def _ta1(ack: TA1Ack, owed: Sequence[Owed], received_at: datetime, words: CodeWords) -> Reconciliation:
    note = words.say("I18", ack.note_code) if ack.note_code else ""
    verdict = {"A": "accepted", "E": "accepted with errors"}.get(ack.code, "rejected")
    rec = Reconciliation("TA1", ack.control_number, "unmatched", f"TA1: interchange {ack.control_number} {verdict}")
    if note:
        rec.summary += f" (note {note})"
    mine = [o for o in owed if o.interchange == ack.control_number]
    if not mine:
        rec.unmatched.append(f"interchange {ack.control_number}: we sent no interchange with that ISA13")
        rec.summary += ": matches nothing we sent"
        return rec
    repeat = any(o.ta1_code for o in mine)
    errors = (f"TA1 {ack.code}, note {note}",) if note else (f"TA1 {ack.code}",)
    for o in mine:
        if ack.accepted or o.status in ANSWERED or repeat:
            # Accepted: the sets still wait for their 997/999; answered ones keep their answer.
            rec.sets.append(
                SetOutcome(o.key, o.outbound_id, o.status, None, () if ack.accepted else errors, duplicate=repeat,
                           ta1_code=ack.code, changes=False)
            )  # fmt: skip
        else:
            rec.sets.append(
                SetOutcome(o.key, o.outbound_id, "rejected", None, errors, _late(o, received_at), ta1_code=ack.code)
            )
    _outcome(rec)
    if rec.outcome == "duplicate":
        rec.summary += ": a second TA1 for that interchange"
    return rec


def _functional(ack: FunctionalAck, owed: Sequence[Owed], received_at: datetime, words: CodeWords) -> Reconciliation:
    kind = ack.kind if ack.kind in _ELEMENTS else "997"
    elements, labels = _ELEMENTS[kind], _LABELS[kind]
    g_status = group_status(ack.code) if ack.code else None
    rec = Reconciliation(ack.kind, ack.group_control, "unmatched", "", group_status=g_status)
    rec.group_errors = [f"{labels['group']} {words.say(elements['group'], c)}" for c in ack.error_codes]
    group = [o for o in owed if o.group_control == ack.group_control and o.functional_id == ack.functional_id]
    what = f"{ack.kind}: group {ack.functional_id} {ack.group_control}"
    rec.summary = f"{what} {(g_status or 'no AK9 verdict').replace('_', ' ')}"
    if not group:
        rec.unmatched.append(f"group {ack.functional_id} {ack.group_control}: we sent no such group")
        rec.summary += ": matches nothing we sent"
        return rec
    by_set = {(o.set_id, o.set_control): o for o in group}
    named: set[int] = set()
    for st in ack.sets:
        o = by_set.get((st.set_id, st.control_number))
        if o is None:
            rec.unmatched.append(
                f"set {st.set_id} {st.control_number} in group {ack.group_control}: we sent no such set"
            )
            continue
        named.add(o.key)
        errors = _set_errors(st, kind, words) + tuple(rec.group_errors)
        rec.sets.append(
            _answer(o, set_status(st.code) if st.code else set_status(ack.code), g_status, errors, received_at)
        )
    for o in group:
        if o.key in named:
            continue
        # No AK2 for it: the group's verdict answers it. A partial group lists its sets in error, so one it
        # leaves out was accepted; without any list it cannot say which: accepted with errors.
        status = set_status(ack.code) if ack.code != "P" else ("accepted" if ack.sets else "accepted_with_errors")
        note = () if ack.sets == [] or ack.code in ("A", "E") else ("not listed in the acknowledgment",)
        rec.sets.append(_answer(o, status, g_status, note + tuple(rec.group_errors), received_at))
    _outcome(rec)
    counts: dict[str, int] = {}
    for s in rec.applied:
        counts[s.status] = counts.get(s.status, 0) + 1
    if counts:
        rec.summary += ": " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
    dup = sum(1 for s in rec.sets if s.duplicate)
    if dup:
        rec.summary += f"; {dup} set(s) already answered (duplicate acknowledgment)"
    if rec.unmatched:
        rec.summary += f"; {len(rec.unmatched)} set(s) we never sent"
    return rec


def _answer(o: Owed, status: str, g_status: str | None, errors: tuple[str, ...], received_at: datetime) -> SetOutcome:
    return SetOutcome(
        o.key, o.outbound_id, status, g_status, errors, _late(o, received_at), duplicate=o.status in ANSWERED
    )


def _set_errors(st: SetAck, kind: str, words: CodeWords) -> tuple[str, ...]:
    elements, labels = _ELEMENTS[kind], _LABELS[kind]
    out = [f"{labels['set']} {words.say(elements['set'], c)}" for c in st.error_codes]
    for seg in st.segments:
        where = f"segment {seg.segment_id}" + (f" at position {seg.position}" if seg.position is not None else "")
        if seg.loop:
            where += f" (loop {seg.loop})"
        if seg.code:
            out.append(f"{where}: {labels['segment']} {words.say(elements['segment'], seg.code)}")
        for el in seg.elements:
            pos = f"{el.element}" + (f".{el.component}" if el.component is not None else "")
            ref = f" (element {el.element_ref})" if el.element_ref else ""
            value = f", value {el.value!r}" if el.value else ""
            out.append(
                f"{where}, element {pos}{ref}: {labels['element']} {words.say(elements['element'], el.code)}{value}"
            )
    return tuple(out)


def ack_from_dict(data: Mapping[str, Any]) -> FunctionalAck | TA1Ack:
    """An acknowledgment back from :func:`gateway.x12.ack.read.ack_dict`'s plain data (as the ledger keeps
    it). Raises KeyError or TypeError when ``data`` is not such a record."""
    if data.get("kind") == "TA1":
        return TA1Ack(
            str(data.get("interchange", "")),
            str(data["control_number"]),
            str(data.get("date", "")),
            str(data.get("time", "")),
            str(data.get("code", "")),
            str(data.get("note_code", "")),
        )
    sets = [
        SetAck(
            str(s["set_id"]),
            str(s["control_number"]),
            str(s.get("code", "")),
            [str(c) for c in s.get("error_codes", [])],
            [
                SegmentError(
                    str(g["segment_id"]),
                    g.get("position"),
                    str(g.get("loop", "")),
                    str(g.get("code", "")),
                    [
                        ElementError(
                            e.get("element"),
                            e.get("component"),
                            str(e.get("element_ref", "")),
                            str(e.get("code", "")),
                            str(e.get("value", "")),
                        )
                        for e in g.get("elements", [])
                    ],
                )
                for g in s.get("segments", [])
            ],
        )
        for s in data.get("sets", [])
    ]
    return FunctionalAck(
        kind=str(data["kind"]),
        interchange=str(data.get("interchange", "")),
        control_number=str(data.get("control_number", "")),
        functional_id=str(data.get("functional_id", "")),
        group_control=str(data.get("group_control", "")),
        group_version=str(data.get("group_version", "")),
        code=str(data.get("code", "")),
        included=data.get("included"),
        received=data.get("received"),
        accepted_count=data.get("accepted_count"),
        error_codes=[str(c) for c in data.get("error_codes", [])],
        sets=sets,
    )
