"""Translation: a received file's bytes in, one result per transaction set or document out (pure).

For X12 the file is read once: the validator streams over the reader while
a tee collects the current set's segments; when a set ends it is mapped
through its partner's map (or the base map for its set and version when no
profile matches) into a canonical document. The set is the unit of failure:
a set that fails validation or mapping yields a result with located errors
and its siblings go on. Interchange reports come out too, for the
acknowledgments. CSV and XML files go through their partner's map.

Nothing here reads files or the clock: maps, profiles, cross-reference
tables and the id generator are passed in by the composition root.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any, BinaryIO

from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.errors import DocumentError, GatewayError, Location
from gateway.formats.csv import CsvDocumentError, group_rows, read_rows
from gateway.formats.xml import XmlDocumentError, looks_like_xml, parse_xml
from gateway.mapping.adapters import CsvScope
from gateway.mapping.checks import DocumentWarning, check_document, default_currency
from gateway.mapping.compiler import CompiledMap
from gateway.mapping.functions import CodeTable, EvalContext
from gateway.mapping.library import MapLibrary
from gateway.mapping.nodes import Env, EvalFailure
from gateway.mapping.problems import MappingError
from gateway.mapping.x12scope import HierarchyTooDeepError, build_scopes
from gateway.partners.profile import PartnerDirectory, Profile
from gateway.x12.ack.read import FunctionalAck, is_acknowledgment, read_set
from gateway.x12.findings import Finding
from gateway.x12.model import InterchangeHeader
from gateway.x12.reader import Source, X12Reader
from gateway.x12.schema.catalog import Catalog, resolve_version
from gateway.x12.schema.compiled import SetDefinition
from gateway.x12.segment import Segment
from gateway.x12.validate.report import FileReport, InterchangeReport, SetReport
from gateway.x12.validate.validator import Validator


@dataclass(slots=True)
class Translation:
    """One transaction set (X12) or document (CSV/XML): its document, or why there is none."""

    index: int
    format: str
    partner: str | None = None
    map_name: str | None = None
    base_map: bool = False
    document_type: str | None = None
    set_id: str | None = None
    set_control: str | None = None
    group_control: str | None = None
    interchange_control: str | None = None
    version: str | None = None
    validation: SetReport | None = None
    document: BaseModel | None = None
    errors: list[GatewayError] = field(default_factory=list)
    #: business-level warnings on a produced document (``BIZ-*``, located): reported, never rejecting
    warnings: list[DocumentWarning] = field(default_factory=list)
    acknowledgment: FunctionalAck | None = None  # an inbound 997/999, read (it has no document)
    finding: Finding | None = None  # a validator finding outside any interchange (index 0)

    @property
    def ok(self) -> bool:
        """True when a document was produced (or an inbound acknowledgment read)."""
        return (self.document is not None or self.acknowledgment is not None) and not self.errors


@dataclass(slots=True)
class FileInput:
    """What the translator knows about the file besides its bytes."""

    name: str
    file_id: str | None = None
    partner_id: str | None = None
    received_on: date | None = None
    map_name: str | None = None  # force one map (golden cases of a map, `translate --map`)
    map_sets: bool = True  # False: validate (and read acknowledgments) only, for `validate` and `ack`
    report_sets: bool = True  # False: interchange reports keep group tallies, not every set's report


MAX_SET_SEGMENTS = 200_000
"""Segments one X12 set may have to be translated (a set is mapped whole, in memory): a real 856 of a
thousand cartons has tens of thousands; millions are hostile (validated still, in flat memory)."""


class UnknownFormatError(DocumentError):
    """Not X12, XML, or CSV for a partner with a CSV map."""


def sniff(data: bytes) -> str:
    """``x12``, ``xml`` or ``csv`` from the first non-blank bytes (CSV: anything else)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n\x00")
    if head.startswith(b"ISA") or head.startswith(b"\xc9\xe2\xc1"):
        return "x12"
    if head.startswith(b"<") or looks_like_xml(data):  # UTF-16/32 XML too
        return "xml"
    return "csv"


class Translator:
    """Translates files with a map library, partner profiles and (optional) guide overlays."""

    def __init__(
        self,
        catalog: Catalog,
        library: MapLibrary,
        partners: PartnerDirectory,
        *,
        overlays: Mapping[tuple[str, str, str], SetDefinition] | None = None,
        xrefs: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
        new_id: Callable[[], str] = lambda: "",
        max_errors: int = 100,
        strict_isa: bool = True,
        pedantic: bool = False,
        max_set_segments: int = MAX_SET_SEGMENTS,
    ) -> None:
        self.catalog = catalog
        self.library = library
        self.partners = partners
        self.overlays = dict(overlays or {})  # (partner id, version, set id) → definition
        self.xrefs = xrefs or {}
        self.new_id = new_id
        self.max_errors = max_errors
        self.strict_isa = strict_isa  # False: a non-fixed-width ISA is a warning (``validate --lenient-isa``)
        self.pedantic = pedantic  # also warn about codes outside the usual lists
        self.max_set_segments = max_set_segments
        self._contexts: dict[tuple[str | None, str], EvalContext] = {}

    # --- shared -----------------------------------------------------------------------------

    def context(self, profile: Profile | None, cmap: CompiledMap) -> EvalContext:
        """Code tables (shared, then the map's, then the partner's) and the partner's xrefs."""
        key = (profile.id if profile else None, cmap.name)
        ctx = self._contexts.get(key)
        if ctx is None:
            tables: dict[str, CodeTable] = {**self.library.tables, **cmap.tables}
            if profile is not None:
                for name, body in profile.tables.items():
                    base = tables.get(name)
                    codes = body.get("codes", body) if isinstance(body, dict) else {}
                    assert isinstance(codes, dict)
                    merged = {**(base.codes if base else {}), **{str(k): v for k, v in codes.items()}}
                    has_default = "default" in body or (base is not None and base.has_default)
                    default = body.get("default", base.default if base else None)
                    tables[name] = CodeTable(name, merged, default, has_default)
            xrefs = self.xrefs.get(profile.id, {}) if profile else {}
            ctx = EvalContext(tables=tables, xrefs=xrefs, currency=profile.currency if profile else None)
            self._contexts[key] = ctx
        return ctx

    def _finish(
        self,
        result: Translation,
        cmap: CompiledMap,
        scope: Any,
        env: Env,
        provenance: dict[str, Any],
        where: Callable[[Any], Location],
    ) -> None:
        result.map_name = cmap.name
        result.document_type = cmap.document
        try:
            values = cmap.root.evaluate(scope, env) or {}
        except EvalFailure as exc:
            loc = where(exc.where)
            detail = f" reading {exc.source}" if exc.source else ""
            result.errors.append(
                MappingError(
                    f"map {cmap.name}, field {exc.path}{detail}: {exc.message}",
                    "MAP-500",
                    _with(loc, path=exc.path),
                )
            )
            return
        default_currency(values, env.ctx.currency)
        values["provenance"] = provenance
        try:
            result.document = cmap.model.model_validate(values)
            for check in check_document(result.document, scope):
                result.warnings.append(DocumentWarning(check.code, check.message, where(check.found)))
        except ValidationError as exc:
            for err in exc.errors()[:20]:
                path = ".".join(str(p) for p in err["loc"])
                result.errors.append(
                    MappingError(
                        f"map {cmap.name} produced an invalid {cmap.document}: {path}: {err['msg']}",
                        "MAP-501",
                        _with(where(None), path=path),
                    )
                )

    # --- X12 --------------------------------------------------------------------------------

    def x12(self, source: Source, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        """Each set's translation as the set ends, then each interchange's report (for acks)."""
        collected: list[Segment] = []  # the reader keeps the open set's segments here
        reader = X12Reader(source, collect=collected, max_collect=self.max_set_segments)
        forced = self.partners.get(info.partner_id) if info.partner_id else None
        validator = self.validator(forced, keep_sets=info.report_sets)
        index = 0
        for item in validator.stream(reader):
            if isinstance(item, SetReport):
                index += 1
                too_big = reader.overflowed or len(collected) > self.max_set_segments
                yield self._x12_set(index, item, collected, forced, info, too_big=too_big)
            elif isinstance(item, InterchangeReport):
                yield item
            elif not isinstance(item, FileReport) and hasattr(item, "code") and hasattr(item, "location"):
                yield Translation(
                    index=0,
                    format="x12",
                    errors=[DocumentError(str(item), str(item.code), _with(item.location, file=info.name))],
                    finding=item if isinstance(item, Finding) else None,
                )

    def envelopes(self, source: Source, forced: Profile | None = None) -> Iterator[InterchangeReport]:
        """Each interchange's report with only its envelope and group findings, its sets counted but none
        checked against a definition (nor judged) and none mapped: a quick first pass over a big file, to
        know before an interchange's trailer whether its envelope refuses its sets (the full pass finds the
        same: the same validator, with the partner's accepted findings, ``forced`` as for :meth:`x12`)."""
        validator = self.validator(forced, keep_sets=False)
        validator.check_sets = False  # (the envelope findings do not depend on the sets' own)
        for item in validator.stream(X12Reader(source, body=False)):  # set bodies are not looked at here
            if isinstance(item, InterchangeReport):
                yield item

    def validator(self, forced: Profile | None = None, *, keep_sets: bool = True) -> Validator:
        """The validator every command uses: the partner's guide overlays and accepted findings applied
        (``forced``: the file's partner; otherwise each interchange's sender's profile; ``keep_sets``
        False: interchange reports keep group tallies, not every set's report)."""
        by_sender = {i.id: p for p in self.partners.profiles.values() for i, _ in reversed(p.identities())}

        def resolve(version: str, set_id: str, sender: str) -> SetDefinition | None:
            profile = forced or by_sender.get(sender)
            if profile is not None and self.overlays:
                overlay = self.overlays.get((profile.id, version, set_id))
                if overlay is not None:
                    return overlay
            return self.catalog.definition(version, set_id)

        def accept(finding: Finding, header: InterchangeHeader, set_id: str | None) -> Finding:
            profile = forced or by_sender.get(header.sender_id)
            return profile.accept(finding, set_id) if profile is not None else finding

        return Validator(
            self.catalog,
            resolver=resolve,
            max_errors=self.max_errors,
            strict_isa=self.strict_isa,
            pedantic=self.pedantic,
            accept=accept,
            keep_sets=keep_sets,
        )

    def _x12_set(
        self,
        index: int,
        report: SetReport,
        segments: list[Segment],
        forced: Profile | None,
        info: FileInput,
        *,
        too_big: bool = False,
    ) -> Translation:
        header = report.header
        ic = header.interchange
        group = header.group
        version = resolve_version(group.version) if group else None
        profile = forced or self.partners.by_x12_sender(
            ic.sender_qualifier, ic.sender_id, group.sender_id if group else None
        )
        result = Translation(
            index=index,
            format="x12",
            partner=profile.id if profile else None,
            set_id=header.set_id,
            set_control=header.control_number,
            group_control=group.control_number if group else None,
            interchange_control=ic.control_number,
            version=version,
            validation=report,
        )
        base_loc = Location(
            file=info.name,
            partner=result.partner,
            interchange=ic.control_number,
            group=result.group_control,
            transaction_set=header.control_number,
        )
        errors = [f for f in report.findings if f.is_error]
        if errors:
            for f in errors:
                result.errors.append(DocumentError(f.message, f.code, _merge(base_loc, f.location)))
            return result
        if version is None:
            return result
        if too_big:
            st = header.segment
            on_st = _with(base_loc, segment_id="ST", segment_index=1, interchange_index=st.index, byte_offset=st.offset)
            why = f"set has {report.segment_count:,} segments, more than the {self.max_set_segments:,} one set may have"
            result.errors.append(DocumentError(f"{why} to be translated", "MAP-411", on_st))
            return result
        if is_acknowledgment(header.set_id):
            # Read, never mapped (and never acknowledged: see gateway.verdict).
            result.document_type = "acknowledgment"
            result.acknowledgment = read_set(
                header.set_id,
                header.control_number,
                segments,
                interchange=ic.control_number,
                component=ic.delimiters.component,
            )
            return result
        if not info.map_sets:
            return result
        cmap, why = self._x12_map(profile, header.set_id, version, info.map_name)
        if cmap is None:
            result.errors.append(DocumentError(why, "MAP-404", base_loc))
            return result
        own = profile.inbound_map(header.set_id) if profile else None
        result.base_map = cmap.extends is None and (own is None or own.map != cmap.name)
        definition = self.catalog.definition(version, header.set_id)
        try:
            scope = build_scopes(segments, definition)
        except HierarchyTooDeepError as exc:
            found = exc.location
            seg_index = found.interchange_index
            at = None if seg_index is None else seg_index - header.segment.index + 1
            exc.location = _merge(base_loc, replace(found, segment_index=at))
            result.errors.append(exc)
            return result
        env = Env(self.context(profile, cmap), ic.delimiters.component)
        provenance = {
            "partner": result.partner,
            "source_file_id": info.file_id,
            "interchange_control": ic.control_number,
            "group_control": result.group_control,
            "set_control": header.control_number,
            "format": "x12",
            "version": version,
            "test": ic.is_test,
            "correlation_id": self.new_id() or None,
            "received_on": info.received_on,
        }

        st_index = header.segment.index

        def where(found: Any) -> Location:
            if isinstance(found, tuple) and isinstance(found[0], Segment):
                seg, ref = found
                return _with(
                    base_loc,
                    segment_id=seg.id,
                    segment_index=seg.index - st_index + 1,
                    interchange_index=seg.index,
                    byte_offset=seg.offset,
                    element=getattr(ref, "position", None),
                    component=getattr(ref, "component", None),
                )
            return base_loc

        self._finish(result, cmap, scope, env, provenance, where)
        return result

    def _x12_map(
        self, profile: Profile | None, set_id: str, version: str, forced: str | None = None
    ) -> tuple[CompiledMap | None, str]:
        if forced is not None:
            cmap = self.library.get(forced)
            if cmap is None or cmap.source.set_id != set_id or cmap.source.version != version:
                return None, f"map {forced!r} does not read {set_id} {version}"
            return cmap, ""
        settings = profile.inbound_map(set_id) if profile else None
        if settings is not None:
            cmap = self.library.get(settings.map)
            if cmap is None:
                return None, f"partner {profile.id if profile else ''}: map {settings.map!r} is not loaded"
            if cmap.source.version == version and cmap.source.set_id == set_id:
                return cmap, ""
            base = self.library.base_for(set_id, version)
            if base is not None:  # the partner's map is for another version: the base map, flagged as such
                return base, ""
            return (
                None,
                f"map {cmap.name} reads {cmap.source.set_id} {cmap.source.version}, this set is {set_id} {version}",
            )
        base = self.library.base_for(set_id, version)
        if base is None:
            return None, f"no map for {set_id} {version} (no partner map and no base map)"
        return base, ""

    # --- CSV and XML ------------------------------------------------------------------------

    def _file_maps(self, profile: Profile | None, fmt: str, info: FileInput) -> list[CompiledMap]:
        name = info.name
        if info.map_name is not None:
            forced = self.library.get(info.map_name)
            return [forced] if forced is not None and forced.source.format == fmt else []
        out: list[CompiledMap] = []
        if profile is not None:
            for settings in profile.documents.values():
                if settings.direction != "inbound":
                    continue
                cmap = self.library.get(settings.map)
                if cmap is None or cmap.source.format != fmt:
                    continue
                if settings.files and not fnmatch.fnmatch(name.rsplit("/", 1)[-1], settings.files):
                    continue
                out.append(cmap)
        if not out and fmt == "xml":
            out = self.library.of_format("xml", base_only=True)
        return out

    def csv(self, data: bytes, info: FileInput) -> Iterator[Translation]:
        """One translation per document (row group) of a partner's CSV file."""
        profile = self.partners.get(info.partner_id) if info.partner_id else None
        maps = self._file_maps(profile, "csv", info)
        loc = Location(file=info.name, partner=info.partner_id)
        if not maps:
            why = "CSV needs a partner whose profile has a CSV map (give --partner or drop it in inbox/<partner>/)"
            if profile is not None:
                why = f"partner {profile.id} has no CSV map matching {info.name}"
            yield Translation(
                index=0, format="csv", partner=info.partner_id, errors=[UnknownFormatError(why, "FMT-001", loc)]
            )
            return
        cmap = maps[0]
        assert cmap.source.dialect is not None
        try:
            rows = list(read_rows(data, cmap.source.dialect, source=info.name))
        except CsvDocumentError as exc:
            exc.location = _with(exc.location or loc, partner=info.partner_id)
            yield Translation(index=0, format="csv", partner=info.partner_id, map_name=cmap.name, errors=[exc])
            return
        groups = group_rows(rows, cmap.source.group_by) if cmap.source.group_by else [rows]
        env = Env(self.context(profile, cmap))
        for index, group in enumerate(groups, 1):
            result = Translation(index=index, format="csv", partner=info.partner_id)
            provenance = self._provenance("csv", None, profile, info, False)

            def where(found: Any, first: int = group[0].line) -> Location:
                if isinstance(found, tuple):
                    row, column = found
                    return _with(loc, line=row.line, path=str(column))
                return _with(loc, line=first)

            self._finish(result, cmap, CsvScope(group), env, provenance, where)
            yield result

    def xml(self, data: bytes, info: FileInput) -> Iterator[Translation]:
        """One translation per document element a map selects (cXML: one request per file)."""
        profile = self.partners.get(info.partner_id) if info.partner_id else None
        loc = Location(file=info.name, partner=info.partner_id)
        try:
            root = parse_xml(data, source=info.name)
        except XmlDocumentError as exc:
            yield Translation(index=0, format="xml", partner=info.partner_id, errors=[exc])
            return
        if profile is None:
            profile = self._cxml_sender(root)
        else:
            mismatch = self._cxml_mismatch(root, profile)
            if mismatch is not None:
                yield Translation(
                    index=1,
                    format="xml",
                    partner=None,
                    errors=[DocumentError(mismatch, "SEC-001", _with(loc, line=root.sourceline, path="Header/From"))],
                )
                return
        maps = self._file_maps(profile, "xml", info)
        partner = profile.id if profile else None
        index = 0
        for cmap in maps:
            env = Env(self.context(profile, cmap))
            try:
                elements = cmap.select_documents(root, env)
            except EvalFailure as exc:
                index += 1
                yield Translation(
                    index=index,
                    format="xml",
                    partner=partner,
                    map_name=cmap.name,
                    errors=[
                        MappingError(f"map {cmap.name}: {exc.message}", "MAP-500", _with(loc, path="source.documents"))
                    ],
                )
                continue
            for element in elements:
                index += 1
                result = Translation(index=index, format="xml", partner=partner, base_map=profile is None)
                version = _cxml_version(root)
                test = _cxml_test(root)
                provenance = self._provenance("xml", version, profile, info, test)

                def where(found: Any) -> Location:
                    line = getattr(found, "sourceline", None)
                    return _with(loc, partner=partner, line=line)

                self._finish(result, cmap, element, env, provenance, where)
                yield result
        if index == 0:
            tried = ", ".join(m.name for m in maps) or "none"
            why = f"no XML map takes this {_payload_name(root)} document (maps tried: {tried})"
            yield Translation(
                index=0,
                format="xml",
                partner=partner,
                errors=[UnknownFormatError(why, "FMT-002", _with(loc, partner=partner))],
            )

    def _cxml_mismatch(self, root: Any, profile: Profile) -> str | None:
        """Why a cXML document may not be taken as ``profile``'s (None: it may): a From credential of
        another partner, or none of ``profile``'s own (one partner must not send as another)."""
        if etree.QName(root).localname != "cXML":
            return None
        creds = [
            (cred.get("domain", ""), (cred.findtext("Identity") or "").strip())
            for cred in root.iterfind("Header/From/Credential")
        ]
        named = ", ".join(f"{d}:{i}" for d, i in creds) or "no From credential"
        for domain, identity in creds:
            other = self.partners.by_cxml(domain, identity)
            if other is not None and other.id != profile.id:
                return (
                    f"sender mismatch: the cXML From credential {domain}:{identity} is partner {other.id}'s, "
                    f"but this file belongs to partner {profile.id}"
                )
        if not any(self.partners.by_cxml(d, i) is profile for d, i in creds):
            return f"sender mismatch: the cXML From credential ({named}) is not one of partner {profile.id}'s"
        return None

    def _cxml_sender(self, root: Any) -> Profile | None:
        for cred in root.iterfind("Header/From/Credential"):
            identity = cred.findtext("Identity") or ""
            profile = self.partners.by_cxml(cred.get("domain", ""), identity)
            if profile is not None:
                return profile
        return None

    def _provenance(
        self, fmt: str, version: str | None, profile: Profile | None, info: FileInput, test: bool
    ) -> dict[str, Any]:
        return {
            "partner": profile.id if profile else info.partner_id,
            "source_file_id": info.file_id,
            "format": fmt,
            "version": version,
            "test": test,
            "correlation_id": self.new_id() or None,
            "received_on": info.received_on,
        }

    def translate(self, data: bytes | BinaryIO, info: FileInput) -> Iterator[Translation | InterchangeReport]:
        """Any file: sniffed as X12, XML or CSV. ``data`` may be an open binary file (seekable): X12 is
        then read from it as it goes, in flat memory; CSV and XML are read whole."""
        if not isinstance(data, bytes):
            head = data.read(4096)
            data.seek(0)
            if sniff(head) == "x12":
                yield from self.x12(data, info)
                return
            data = data.read()
        fmt = sniff(data)
        if fmt == "x12":
            yield from self.x12(data, info)
        elif fmt == "xml":
            yield from self.xml(data, info)
        else:
            yield from self.csv(data, info)


#: The version in a cXML DOCTYPE's DTD address, e.g. ``http://xml.cxml.org/schemas/cXML/1.2.050/cXML.dtd``.
_CXML_DTD = re.compile(r"/cXML/(\d+(?:\.\d+)+)/", re.IGNORECASE)


def _cxml_version(root: Any) -> str | None:
    """``cXML 1.2.050`` from the DOCTYPE's DTD address (where cXML states its version), else ``@version``."""
    if etree.QName(root).localname != "cXML":
        return None
    found = _CXML_DTD.search(root.getroottree().docinfo.system_url or "")
    if found:
        return f"cXML {found[1]}"
    return f"cXML {root.get('version')}" if root.get("version") else None


def _payload_name(root: Any) -> str:
    """What an XML file carries, for messages: ``cXML <StatusUpdateRequest>`` or the root's ``<tag>``."""
    tag = etree.QName(root).localname
    if tag == "cXML":
        for wrapper in ("Request", "Message", "Response"):
            body = root.find(wrapper)
            inner = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
            if inner is not None:
                return f"cXML <{etree.QName(inner).localname}>"
    return f"<{tag}>"


def _cxml_test(root: Any) -> bool:
    for el in root.iter("Request"):
        return str(el.get("deploymentMode", "production")).lower() == "test"
    return False


def _with(loc: Location | None, **changes: Any) -> Location:
    return replace(loc or Location(), **changes)


def _merge(base: Location, found: Location | None) -> Location:
    if found is None:
        return base
    changes = {f.name: getattr(found, f.name) for f in fields(found) if getattr(found, f.name) is not None}
    return replace(base, **changes)


#: Provenance fields that differ on every run; golden cases leave them out.
VOLATILE = ("correlation_id", "source_file_id", "received_on")


def golden_view(document: BaseModel) -> dict[str, Any]:
    """The JSON a golden case compares: the document without run-specific provenance."""
    data = document.model_dump(mode="json", exclude_none=True)
    prov = data.get("provenance", {})
    for key in VOLATILE:
        prov.pop(key, None)
    return data
