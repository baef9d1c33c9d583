"""Rendering: a canonical document and a partner profile through an outbound map to X12 bytes (pure).

The profile gives the envelope (our ``us`` identity as sender; the partner's
production identity, or its test identity for a document whose provenance
says test, as receiver; ISA15 ``T``/``P``; the partner's outbound
delimiters). Time and control numbers come in as arguments. Every problem
with the document is collected and raised at once as a :class:`RenderError`,
each located by canonical field path (``lines[2].item.gtin``); the written
interchange is validated before it is returned, and the validator's findings
are pointed back at the fields that fed the elements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel

from gateway.canonical import PurchaseOrder
from gateway.errors import ConfigError, DocumentError, Location
from gateway.mapping.functions import CodeTable, EvalContext
from gateway.outbound.nodes import Elem, Group, OutboundMap, Pairs, SegOut, ValueFailed
from gateway.partners.profile import Profile
from gateway.x12.segment import Delimiters
from gateway.x12.validate.validator import Validator
from gateway.x12.writer import ControlSequence, OutGroup, OutInterchange, OutSet, Party, write_interchange


class RenderError(DocumentError):
    """The document cannot be written; ``errors`` lists every problem, each located by canonical field.

    ``code`` and ``location`` are the first problem's. Codes: ``OUT-001`` a value holds a delimiter
    or control character, ``OUT-002`` a function failed, ``OUT-003`` a value needs a formatting
    function, ``OUT-004`` an item id the map has no qualifier for, ``OUT-005`` more item ids than
    the segment holds, ``X12-…`` the written set breaks the standard (the validator's finding);
    ``LAY-…`` for a document written through an export layout (:mod:`gateway.outbound.layout_render`).
    """

    def __init__(self, errors: Sequence[DocumentError], what: str) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        lines = "\n".join(f"  {e.location.path or e.location.describe()}: [{e.code}] {e.message}" for e in self.errors)
        super().__init__(f"{len(self.errors)} problem(s) writing {what}:\n{lines}", first.code, first.location)


@dataclass(slots=True)
class Written:
    """A segment as written, with the canonical field behind each element (for located errors)."""

    elements: list[str]
    origins: dict[int, str]
    where: str


class _Run:
    """One document through one map: segments out, problems collected (not raised one by one)."""

    def __init__(self, root: BaseModel, ctx: EvalContext, delimiters: Delimiters, base: Location) -> None:
        self.root = root
        self.ctx = ctx
        self.forbidden = dict(zip(delimiters.chars(), _DELIMITER_NAMES, strict=False))
        self.base = base
        self.errors: list[DocumentError] = []
        self.out: list[Written] = []

    def fail(self, code: str, message: str, path: str, seg: str, pos: int | None) -> None:
        self.errors.append(DocumentError(message, code, replace(self.base, segment_id=seg, element=pos, path=path)))

    def group(self, group: Group, item: Any, prefix: str) -> None:
        if group.when is not None and not group.when(self.root, item):
            return
        if group.each is None:
            self.body(group.body, item, prefix)
            return
        base = group.each.trail(prefix)
        for index, inner in group.each.items(self.root, item):
            self.body(group.body, inner, f"{base}[{index}]")

    def body(self, body: list[SegOut | Group], item: Any, prefix: str) -> None:
        for node in body:
            if isinstance(node, Group):
                self.group(node, item, prefix)
            else:
                self.segment(node, item, prefix)

    def segment(self, seg: SegOut, item: Any, prefix: str) -> None:
        if seg.when is not None and not seg.when(self.root, item):
            return
        elements, origins, found = [seg.id], {}, False
        for pos, elem in enumerate(seg.elements, 1):
            text, source = self.element(elem, item, prefix, seg.id, pos) if elem is not None else ("", "")
            elements.append(text)
            if text:
                origins[pos] = source
                found = found or (elem is not None and elem.reads)
        if seg.pairs is not None:
            found = self.pairs(seg, seg.pairs, item, prefix, elements, origins) or found
        if found or not seg.reads:
            self.out.append(Written(elements, origins, prefix))

    def element(self, elem: Elem, item: Any, prefix: str, seg: str, pos: int) -> tuple[str, str]:
        try:
            value, source = elem.value(self.root, item, prefix, self.ctx)
        except ValueFailed as exc:
            self.fail("OUT-002", f"{seg}{pos:02d}: {exc.message}", exc.source, seg, pos)
            return "", exc.source
        if value is None:
            return "", source
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            what = type(value).__name__
            self.fail(
                "OUT-003", f"{seg}{pos:02d}: a {what} needs a formatting function (fn: format_…)", source, seg, pos
            )
            return "", source
        return self.check(value, source, seg, pos), source

    def check(self, text: str, source: str, seg: str, pos: int) -> str:
        """``text``, or an OUT-001 problem when it holds a delimiter or a control character."""
        for ch in text:
            if ch in self.forbidden or ord(ch) < 32 or ord(ch) == 127:
                what = f"the {self.forbidden[ch]} {ch!r}" if ch in self.forbidden else f"the control character {ch!r}"
                message = f"{seg}{pos:02d}: {text!r} contains {what}, which this partner's X12 cannot carry"
                self.fail("OUT-001", message, source, seg, pos)
                return ""
        return text

    def pairs(
        self, seg: SegOut, pairs: Pairs, item: Any, prefix: str, elements: list[str], origins: dict[int, str]
    ) -> bool:
        base = pairs.path.trail(prefix)
        found, unmapped = pairs.pairs(self.root, item)
        start = len(elements)
        for name in unmapped:
            message = f"{seg.id}: the map gives no X12 qualifier for item ids of kind {name} (add it to `qualifiers`)"
            self.fail("OUT-004", message, f"{base}.{name}", seg.id, start)
        if len(found) > pairs.room:
            message = f"{seg.id}: {len(found)} item ids, but the segment holds {pairs.room} qualifier/id pairs"
            self.fail("OUT-005", message, base, seg.id, start)
        for qualifier, value, name in found[: pairs.room]:
            pos = len(elements)
            source = f"{base}.{name}"
            elements += [self.check(qualifier, source, seg.id, pos), self.check(value, source, seg.id, pos + 1)]
            origins[pos] = origins[pos + 1] = source
        return bool(found)


_DELIMITER_NAMES = ("element separator", "component separator", "segment terminator", "repetition separator")


def _context(cmap: OutboundMap, profile: Profile, xrefs: Mapping[str, Mapping[str, str]] | None) -> EvalContext:
    """The map's tables with the partner's tables over them (codes merged, as inbound)."""
    tables = dict(cmap.tables)
    for name, body in profile.tables.items():
        base = tables.get(name)
        codes = body.get("codes", body)
        codes = codes if isinstance(codes, dict) else {}
        merged = {**(base.codes if base else {}), **{str(k): v for k, v in codes.items()}}
        has_default = "default" in body or (base is not None and base.has_default)
        tables[name] = CodeTable(name, merged, body.get("default", base.default if base else None), has_default)
    return EvalContext(tables=tables, xrefs=xrefs or {})


def _envelope(profile: Profile, cmap: OutboundMap, test: bool) -> tuple[OutInterchange, Delimiters]:
    """Our identity as sender, the partner's (test or production) as receiver, its delimiters."""
    x12 = profile.x12
    loc = Location(partner=profile.id)
    if x12 is None or x12.us is None:
        what = "an `x12:` section" if x12 is None else "`x12.us`, our ISA/GS identity on its interchanges"
        raise ConfigError(f"partner {profile.id} needs {what} to receive X12 from us", "OUT-020", loc)
    d = x12.delimiters
    delimiters = Delimiters(
        d.element, d.component, d.repetition if cmap.version >= "005010" else None, d.segment, d.suffix
    )
    if len(set(delimiters.chars())) != len(delimiters.chars()) or any(
        c.isalnum() or c == " " for c in delimiters.chars()
    ):
        raise ConfigError(f"partner {profile.id}: delimiters must be distinct punctuation", "OUT-024", loc)
    them = (x12.test or x12.production) if test else x12.production
    ic = OutInterchange(
        Party(x12.us.qualifier, x12.us.id), Party(them.qualifier, them.id), cmap.version[:5], "T" if test else "P"
    )
    ic.groups.append(OutGroup(cmap.definition.functional_group, x12.us.gs_id, them.gs_id, cmap.version))
    return ic, delimiters


def render(
    document: BaseModel,
    profile: Profile,
    cmap: OutboundMap,
    *,
    control_numbers: ControlSequence,
    when: datetime,
    xrefs: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """``document`` as one X12 interchange for ``profile`` through ``cmap``; validated before it is returned.

    Raises :class:`RenderError` (a DocumentError) listing every problem with the document, located
    by canonical field path, and ConfigError when the profile cannot receive X12 from us.
    ``control_numbers(kind)`` gives the next interchange, group and set control numbers.
    """
    if not isinstance(document, cmap.model):
        raise ConfigError(f"map {cmap.name} writes a {cmap.document}, not a {type(document).__name__}", "OUT-025")
    test = bool(getattr(getattr(document, "provenance", None), "test", False))
    ic, delimiters = _envelope(profile, cmap, test)
    what = f"{cmap.set_id} {cmap.version} for partner {profile.id}"
    run = _Run(document, _context(cmap, profile, xrefs), delimiters, Location(partner=profile.id))
    run.group(cmap.body, document, "")
    if run.errors:
        raise RenderError(run.errors, what)
    ic.groups[0].sets.append(OutSet(cmap.set_id, [w.elements for w in run.out]))
    try:
        data = write_interchange(ic, delimiters, control_numbers, when)
    except DocumentError as exc:
        # the body was checked above, so this is the envelope: our or the partner's ids
        raise RenderError([replace_error(exc, f"partner {profile.id} x12 identities")], what) from exc
    findings = _validate(data, cmap, run.out, profile.id)
    if findings:
        raise RenderError(findings, what)
    return data


def replace_error(exc: DocumentError, path: str) -> DocumentError:
    """``exc`` with ``path`` in its location."""
    return DocumentError(exc.message, exc.code, replace(exc.location, path=path))


def _validate(data: bytes, cmap: OutboundMap, written: list[Written], partner: str) -> list[DocumentError]:
    """The validator's errors on what was written, each pointed at the canonical field behind it."""
    report = Validator(cmap.catalog).validate(data)
    out: list[DocumentError] = []
    findings = [*report.findings]
    for ic in report.interchanges:
        findings += ic.findings
        for group in ic.groups:
            findings += group.findings
            for st in group.sets:
                findings += st.findings
    for f in findings:
        if not f.is_error:
            continue
        loc = f.location
        body = (loc.segment_index or 0) - 2  # ST is 1; the map's first segment is 2
        path = "(envelope)"
        if 0 <= body < len(written):
            w = written[body]
            path = w.origins.get(loc.element or 0) or w.where or "(document)"
        out.append(
            DocumentError(
                f.message + (f" (value {f.value!r})" if f.value else ""),
                f.code,
                replace(loc, partner=partner, path=path),
            )
        )
    return out


def render_850(
    document: PurchaseOrder,
    profile: Profile,
    cmap: OutboundMap,
    *,
    control_numbers: ControlSequence,
    when: datetime,
    xrefs: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """A purchase order as an X12 850 interchange for ``profile`` (see :func:`render`)."""
    if cmap.set_id != "850":
        raise ConfigError(f"map {cmap.name} writes a {cmap.set_id}, not an 850", "OUT-025")
    return render(document, profile, cmap, control_numbers=control_numbers, when=when, xrefs=xrefs)


__all__ = ["RenderError", "Written", "render", "render_850"]
