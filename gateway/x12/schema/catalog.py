"""The catalog of transaction-set definitions, built from the YAML texts.

Pure: it takes the files' *texts* keyed by their relative path
(``004010/segments.yaml``, ``004010/sets/850.yaml``); reading them from the
package is :mod:`gateway.resources`' job. Sets are compiled on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import DefinitionError, Location
from gateway.x12.schema.compiled import (
    ElementSpec,
    Level,
    LoopNode,
    SegmentNode,
    SegmentSpec,
    SetDefinition,
    SyntaxRule,
)
from gateway.x12.schema.files import (
    CodesFile,
    ElementsFile,
    LoopUse,
    SegmentDef,
    SegmentsFile,
    SegmentUse,
    SetFile,
)
from gateway.x12.schema.overlay import OverlayFile, apply_overlay


def resolve_version(gs08: str) -> str:
    """``004010VICS``, ``004010UCS`` → ``004010``; ``005010X231A1`` → ``005010``."""
    return gs08[:6]


@dataclass(slots=True)
class VersionData:
    """The parsed files of one version."""

    version: str
    elements: ElementsFile
    segments: SegmentsFile
    codes: CodesFile
    sets: dict[str, SetFile] = field(default_factory=dict)
    specs: dict[str, SegmentSpec] = field(default_factory=dict)
    segment_ids: frozenset[str] = frozenset()  # the keys of ``specs``, built once


ModelT = TypeVar("ModelT", bound=BaseModel)

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it: the set definitions load ~10x faster at start-up."""


def _parse(path: str, text: str, model: type[ModelT]) -> ModelT:
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader: libyaml's when installed
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise DefinitionError(f"{where}: not valid YAML: {exc}", "X12-D001", Location(file=path)) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:20])
        raise DefinitionError(f"{path}: {problems}", "X12-D002", Location(file=path)) from exc


class Catalog:
    """All versions' definitions; compiles and caches sets on demand."""

    def __init__(self, versions: dict[str, VersionData]) -> None:
        self._versions = versions
        self._compiled: dict[tuple[str, str], SetDefinition] = {}

    @classmethod
    def from_texts(cls, texts: Mapping[str, str]) -> Catalog:
        """Build from ``{"<version>/<file>": text}``; raises :class:`DefinitionError`."""
        grouped: dict[str, dict[str, str]] = {}
        for path, text in texts.items():
            version, _, rest = path.partition("/")
            grouped.setdefault(version, {})[rest] = text
        versions: dict[str, VersionData] = {}
        for version, files in sorted(grouped.items()):
            missing = [n for n in ("elements.yaml", "segments.yaml", "codes.yaml") if n not in files]
            if missing:
                raise DefinitionError(f"definitions for {version} lack {', '.join(missing)}", "X12-D003")
            data = VersionData(
                version,
                _parse(f"{version}/elements.yaml", files["elements.yaml"], ElementsFile),
                _parse(f"{version}/segments.yaml", files["segments.yaml"], SegmentsFile),
                _parse(f"{version}/codes.yaml", files["codes.yaml"], CodesFile),
            )
            for name, text in sorted(files.items()):
                if name.startswith("sets/"):
                    set_file = _parse(f"{version}/{name}", text, SetFile)
                    data.sets[set_file.id] = set_file
            _build_specs(data)
            versions[version] = data
        return cls(versions)

    @property
    def versions(self) -> list[str]:
        """Versions with definitions, e.g. ``["004010", "005010"]``."""
        return sorted(self._versions)

    def set_ids(self, version: str) -> list[str]:
        """Transaction set ids defined for ``version``."""
        data = self._versions.get(version)
        return sorted(data.sets) if data else []

    def has_version(self, version: str) -> bool:
        """True when definitions exist for ``version`` (already resolved)."""
        return version in self._versions

    def code_names(self, version: str, element: str) -> dict[str, str]:
        """The code list of data element ``element`` in ``version``: code -> its words (empty: none known)."""
        data = self._versions.get(version)
        if data is None:
            return {}
        return dict(data.codes.codes.get(element) or data.codes.common.get(element) or {})

    def segment(self, version: str, seg_id: str) -> SegmentSpec | None:
        """The segment dictionary entry (envelope segments included)."""
        data = self._versions.get(version)
        return data.specs.get(seg_id) if data else None

    def known_segments(self, version: str) -> frozenset[str]:
        """Every segment id in the version's dictionary."""
        data = self._versions.get(version)
        return data.segment_ids if data else frozenset()

    def definition(self, version: str, set_id: str) -> SetDefinition | None:
        """The compiled set, or None when there is no definition."""
        key = (version, set_id)
        if key not in self._compiled:
            data = self._versions.get(version)
            if data is None or set_id not in data.sets:
                return None
            self._compiled[key] = _compile_set(data, data.sets[set_id])
        return self._compiled[key]

    def with_overlay(self, overlay_text: str, source: str) -> SetDefinition:
        """The base set of an overlay file with the overlay applied; raises :class:`DefinitionError`."""
        overlay = _parse(source, overlay_text, OverlayFile)
        data = self._versions.get(overlay.version)
        if data is None or overlay.set not in data.sets:
            raise DefinitionError(f"{source}: no base definition for {overlay.set}/{overlay.version}", "X12-D016")
        base = self.definition(overlay.version, overlay.set)
        assert base is not None
        fresh = _compile_set(data, data.sets[overlay.set])
        return apply_overlay(base, fresh.root, overlay, source)

    def check(self) -> None:
        """Compile every set now; raises :class:`DefinitionError` on the first broken one."""
        for version, data in self._versions.items():
            for set_id in data.sets:
                self.definition(version, set_id)


def _element_spec(data: VersionData, ref: str, req: str, repeat: int, where: str) -> ElementSpec:
    if ref in data.segments.composites:
        comp = data.segments.composites[ref]
        parts = tuple(_element_spec(data, u.ref, u.req, u.repeat, f"{where} > {ref}") for u in comp.elements)
        rules = tuple(_rules(comp, f"{where} > {ref}"))
        return ElementSpec(ref, comp.name, "composite", 0, 0, req, repeat, components=parts, syntax=rules)
    el = data.elements.elements.get(ref)
    if el is None:
        raise DefinitionError(f"{data.version}: {where} uses element {ref}, which elements.yaml lacks", "X12-D004")
    codes = data.codes.codes.get(ref)
    common = data.codes.common.get(ref)
    return ElementSpec(
        ref,
        el.name,
        el.type,
        el.min,
        el.max,
        req,
        repeat,
        frozenset(codes) if codes else None,
        frozenset(common) if common else None,
    )


def _rules(seg: SegmentDef, where: str) -> list[SyntaxRule]:
    rules = []
    for note in seg.syntax:
        try:
            rule = SyntaxRule.parse(note)
        except ValueError as exc:
            raise DefinitionError(f"{where}: {exc}", "X12-D005") from exc
        if max(rule.positions) > len(seg.elements):
            raise DefinitionError(f"{where}: syntax note {note} names a position past the last element", "X12-D005")
        rules.append(rule)
    return rules


def _build_specs(data: VersionData) -> None:
    for seg_id, seg in data.segments.segments.items():
        where = f"segment {seg_id}"
        elements = tuple(
            _element_spec(data, u.ref, u.req, u.repeat, f"{where}{n:02d}") for n, u in enumerate(seg.elements, 1)
        )
        data.specs[seg_id] = SegmentSpec(seg_id, seg.name, elements, tuple(_rules(seg, where)))
    data.segment_ids = frozenset(data.specs)


def _compile_set(data: VersionData, set_file: SetFile) -> SetDefinition:
    where = f"{data.version}/sets/{set_file.id}.yaml"

    def build(body: list[SegmentUse | LoopUse], path: str) -> list[SegmentNode | LoopNode]:
        nodes: list[SegmentNode | LoopNode] = []
        for use in body:
            if isinstance(use, SegmentUse):
                spec = data.specs.get(use.seg)
                if spec is None:
                    raise DefinitionError(f"{where}: segment {use.seg} is not in segments.yaml", "X12-D006")
                nodes.append(SegmentNode(spec, use.pos, use.req, use.max))
            else:
                if not use.body or not isinstance(use.body[0], SegmentUse):
                    raise DefinitionError(f"{where}: loop {use.loop} must start with a segment", "X12-D007")
                loop_path = f"{path}/{use.loop}" if path else use.loop
                levels = None
                if use.hierarchy is not None:
                    levels = {code: Level(code, lv.name, frozenset(lv.parents)) for code, lv in use.hierarchy.items()}
                nodes.append(LoopNode(use.loop, use.req, use.max, build(use.body, loop_path), loop_path, levels))
        return nodes

    root = LoopNode("", "M", 1, build(set_file.structure, ""), "")
    root.index()
    ids: set[str] = set()

    def collect(loop: LoopNode) -> None:
        for child in loop.children:
            if isinstance(child, SegmentNode):
                ids.add(child.id)
            else:
                collect(child)

    collect(root)
    return SetDefinition(set_file.id, set_file.name, data.version, set_file.functional_group, root, frozenset(ids))
