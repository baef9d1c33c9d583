"""``extends`` for outbound maps: a partner's map states only what differs from the base.

A partner whose 850 differs from the base in one qualifier writes::

    map: summitmed-850-out
    extends: x12-850-004010-out
    elements:
      PO106: {qualifiers: {vendor_part: VP}}     # merged into the base's item_ids spec
      BEG02: {from: order_type, default: NE}     # a value spec replaces the base's element
      REF03#2: null                              # the second REF entry of the base: element emptied
    remove: [PID]                                # segment entries dropped (``SEG`` or ``SEG#k``)

Rules: ``document`` and ``target`` are inherited (and may not differ); ``tables`` merge over the
base's; ``segments``, when given, replace the base's list and ``elements``/``remove`` then
address that list. An address names a segment *entry* of the map in the order written
(``REF#2`` is the second REF entry, wherever it is); a plain ``REF`` must be the only REF entry.
An element given as a mapping without ``from``/``const``/``first_of``/``item_ids`` merges key by
key into the base element (so ``{qualifiers: {vendor_part: VP}}`` changes one qualifier); any
other value replaces it; ``null`` empties it. Every problem is reported with its ``file:line:col``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from gateway.mapping.marked import Mark, MDict, MList, key_mark, mark_of
from gateway.mapping.problems import Problems, did_you_mean

#: keys only a map that extends another may use (they are consumed here, never compiled)
EXTENDS_KEYS = frozenset({"elements", "remove"})
_ELEMENT = re.compile(r"^([A-Z][A-Z0-9]{1,2})(\d{2})(?:#(\d+))?$")
_SEGMENT = re.compile(r"^([A-Z][A-Z0-9]{1,2})(?:#(\d+))?$")
_WHOLE = frozenset({"from", "const", "first_of", "item_ids"})

Entry = tuple[str, list[Any], MDict]  # segment id, the list holding the entry, the entry


def resolve_outbound(
    raws: Mapping[str, MDict], name: str, problems: Problems, chain: tuple[str, ...] = ()
) -> MDict | None:
    """The raw map ``name`` with its ``extends`` chain applied (base first); None after a problem."""
    raw = raws[name]
    parent = raw.get("extends")
    if not parent:
        for key in sorted(EXTENDS_KEYS & set(raw)):
            problems.add("MAP-626", f"`{key}` changes a base map: it needs `extends`", key_mark(raw, key), key)
        return raw
    parent = str(parent)
    if parent == name or parent in chain:
        problems.add("MAP-622", f"extends cycle: {' -> '.join([*chain, name, parent])}", key_mark(raw, "extends"))
        return None
    if parent not in raws:
        hint = did_you_mean(parent, raws)
        problems.add("MAP-621", f"extends unknown outbound map {parent!r}{hint}", key_mark(raw, "extends"), "extends")
        return None
    base = resolve_outbound(raws, parent, problems, (*chain, name))
    if base is None:
        return None
    before = len(problems.items)
    out = _copy(base)
    out.mark = raw.mark
    for key, value in raw.items():
        if key in EXTENDS_KEYS:
            continue
        if key in ("document", "target") and value != base.get(key):
            problems.add(
                "MAP-627", f"{name} extends {parent}: its {key} is inherited, it cannot differ", key_mark(raw, key), key
            )
        elif key == "tables":
            merged = _copy(base.get("tables") or MDict())
            for tname, body in (value or {}).items():
                merged[tname] = body
                merged.key_marks[tname] = key_mark(value, tname)
            out["tables"] = merged
        else:
            out[key] = value
        out.key_marks[key] = key_mark(raw, key)
    segments = out.get("segments")
    if isinstance(segments, list):
        entries = list(_entries(segments))
        _apply_elements(raw.get("elements"), entries, key_mark(raw, "elements"), problems)
        _apply_remove(raw.get("remove"), entries, key_mark(raw, "remove"), problems)
        _drop_empty_groups(segments)
    return out if len(problems.items) == before else None


def _copy(value: Any) -> Any:
    """A deep copy keeping marks (the base map is shared by every map that extends it)."""
    if isinstance(value, MDict):
        out = MDict((k, _copy(v)) for k, v in value.items())
        out.mark, out.key_marks = value.mark, dict(value.key_marks)
        return out
    if isinstance(value, list):
        copied = MList(_copy(v) for v in value)
        copied.mark = mark_of(value)
        return copied
    return value


def _entries(entries: list[Any]) -> Iterator[Entry]:
    """Every segment entry in the order written, groups entered."""
    for entry in entries:
        if isinstance(entry, MDict) and "segments" in entry:
            inner = entry.get("segments")
            if isinstance(inner, list):
                yield from _entries(inner)
        elif isinstance(entry, MDict) and len(entry) == 1:
            yield str(next(iter(entry))), entries, entry


def _find(
    seg_id: str, nth: str | None, entries: list[Entry], mark: Mark | None, problems: Problems, key: str
) -> Entry | None:
    found = [e for e in entries if e[0] == seg_id]
    if not found:
        hint = did_you_mean(seg_id, sorted({e[0] for e in entries}))
        problems.add("MAP-624", f"the base map has no {seg_id} entry{hint}", mark, key)
        return None
    if nth is None:
        if len(found) > 1:
            which = ", ".join(f"{seg_id}#{i}" for i in range(1, len(found) + 1))
            problems.add("MAP-624", f"the base map has {len(found)} {seg_id} entries: say which ({which})", mark, key)
            return None
        return found[0]
    index = int(nth)
    if not 1 <= index <= len(found):
        problems.add("MAP-624", f"the base map has {len(found)} {seg_id} entries, not {index}", mark, key)
        return None
    return found[index - 1]


def _apply_elements(spec: Any, entries: list[Entry], mark: Mark | None, problems: Problems) -> None:
    if spec is None:
        return
    if not isinstance(spec, MDict):
        problems.add("MAP-623", "`elements` maps SEGNN (or SEGNN#k) to an element spec", mark, "elements")
        return
    for address, value in spec.items():
        where = key_mark(spec, address)
        key = f"elements.{address}"
        parsed = _ELEMENT.match(str(address))
        if parsed is None:
            problems.add("MAP-623", f"{address!r} is not an element address like PO106 or REF02#2", where, key)
            continue
        seg_id, position, nth = parsed[1], int(parsed[2]), parsed[3]
        found = _find(seg_id, nth, entries, where, problems, key)
        if found is None:
            continue
        entry = found[2]
        body = entry[seg_id]
        elements = body.get("elements") if isinstance(body, dict) else body
        if not isinstance(elements, list) or position < 1:
            problems.add("MAP-623", f"{seg_id} has no element list to change", where, key)
            continue
        while len(elements) < position:
            elements.append(None)
        elements[position - 1] = _merge_element(elements[position - 1], value)


def _merge_element(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict) and not (_WHOLE & set(override)):
        out = _copy(base) if isinstance(base, MDict) else dict(base)
        for key, value in override.items():
            out[key] = _merge_element(out.get(key), value)
        return out
    return override


def _apply_remove(spec: Any, entries: list[Entry], mark: Mark | None, problems: Problems) -> None:
    if spec is None:
        return
    if not isinstance(spec, list):
        problems.add("MAP-625", "`remove` is a list of segment entries (SEG or SEG#k)", mark, "remove")
        return
    doomed: list[Entry] = []
    for item in spec:
        where = mark_of(item, mark)
        parsed = _SEGMENT.match(str(item))
        if parsed is None:
            problems.add("MAP-625", f"{item!r} is not a segment entry like PID or REF#2", where, "remove")
            continue
        found = _find(parsed[1], parsed[2], entries, where, problems, "remove")
        if found is not None:
            doomed.append(found)
    for _, holder, entry in doomed:
        for i, candidate in enumerate(holder):
            if candidate is entry:
                del holder[i]
                break


def _drop_empty_groups(entries: list[Any]) -> None:
    """A group whose every segment was removed goes too (an empty group cannot compile)."""
    keep = []
    for entry in entries:
        if isinstance(entry, MDict) and isinstance(entry.get("segments"), list):
            _drop_empty_groups(entry["segments"])
            if not entry["segments"]:
                continue
        keep.append(entry)
    entries[:] = keep


__all__ = ["EXTENDS_KEYS", "resolve_outbound"]
