"""Map files compiled into checked node trees; ``extends`` merged; every problem reported at once.

A map file (see ``docs/maps.md``)::

    map: x12-850-004010            # its name; partner profiles refer to maps by name
    document: purchase_order       # the canonical type it produces
    source: {format: x12, set: "850", version: "004010"}
    fields:                        # canonical field → spec
      po_number: BEG03
      order_date: {from: BEG05, fn: date}
      lines:
        each: PO1
        value:
          line_number: PO101
          quantity: {value: {from: PO102, fn: decimal}, uom: PO103}

A partner map says ``extends: <name>`` and gives only what differs; a
mapping that is itself a value spec (it has ``from``, ``const``, ``each``
or an extractor key) replaces the base's, a mapping of fields replaces a
base extractor (``item: {item_ids: LIN}`` → ``item: {vendor_part: ...}``),
other mappings merge key by key, ``null`` removes a field, and a dotted key
(``lines.value.lot``) reaches into nested mappings.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel

from gateway.canonical import SCHEMAS
from gateway.formats.csv import CsvDialect
from gateway.mapping.adapters import Adapter, CsvAdapter, X12Adapter, XmlAdapter
from gateway.mapping.functions import CodeTable, FunctionRegistry
from gateway.mapping.marked import Mark, MDict, MStr, key_mark, mark_of
from gateway.mapping.nodes import Call, Condition, Each, Env, Items, Node, Obj, Special, Value
from gateway.mapping.plan import CONDITION
from gateway.mapping.problems import Problems, did_you_mean
from gateway.x12.schema.catalog import Catalog

TOP_KEYS = ("map", "extends", "document", "description", "source", "fields", "tables")
VALUE_KEYS = frozenset({"from", "const", "each", "first_of"})
EXTRACTOR_KEYS = frozenset({"id_pair", "id_pairs", "item_ids"})
#: what a partner map may change in a base extractor without replacing it
EXTRACTOR_PARAMS = frozenset({"start", "qualifiers", "except", "table", "when", "description"})
SOURCE_KEYS = {
    "x12": ("format", "set", "version"),
    "csv": ("format", "dialect", "group_by"),
    "xml": ("format", "namespaces", "documents"),
}


@dataclass(slots=True)
class SourceSpec:
    """What a map reads: X12 set and version, a CSV dialect and grouping, or XML documents."""

    format: str
    set_id: str | None = None
    version: str | None = None
    dialect: CsvDialect | None = None
    group_by: list[str] = field(default_factory=list)
    namespaces: dict[str, str] = field(default_factory=dict)
    documents: str = "/*"


@dataclass(slots=True)
class CompiledMap:
    """A checked, ready map."""

    name: str
    document: str
    model: type[BaseModel]
    source: SourceSpec
    root: Obj
    origin: str
    extends: str | None = None
    tables: dict[str, CodeTable] = field(default_factory=dict)
    #: the XML adapter's compiled selector for the documents of a file (XML maps only)
    select_documents: Any = None


def is_value_spec(spec: object) -> bool:
    """True for a mapping that is one value spec (replaced whole when a partner map overrides it)."""
    return isinstance(spec, dict) and bool(VALUE_KEYS.intersection(spec) or EXTRACTOR_KEYS & set(spec))


def expand_dotted(spec: MDict) -> MDict:
    """``{"a.b.c": x}`` → ``{"a": {"b": {"c": x}}}``, keeping marks (only at the top of ``fields``)."""
    out = MDict()
    out.mark = spec.mark
    out.key_marks = {}
    for key, value in spec.items():
        parts = key.split(".")
        target = out
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, MDict):
                nxt = MDict()
                nxt.mark = spec.key_marks.get(key)
                nxt.key_marks = {}
                target[part] = nxt
                target.key_marks[part] = spec.key_marks.get(key, spec.mark)  # type: ignore[assignment]
            target = nxt
        target[parts[-1]] = value
        target.key_marks[parts[-1]] = spec.key_marks.get(key, spec.mark)  # type: ignore[assignment]
    return out


def merge(base: Any, override: Any) -> Any:
    """Deep-merge a partner's ``fields`` over the base's (see the module docstring for the rules)."""
    if not isinstance(base, dict) or not isinstance(override, dict) or is_value_spec(override):
        return override
    if EXTRACTOR_KEYS & set(base) and not set(override) <= EXTRACTOR_PARAMS:
        return override  # an object of fields replaces a base extractor (item_ids → explicit ids)
    out = MDict(base)
    out.mark = getattr(base, "mark", None)
    out.key_marks = dict(getattr(base, "key_marks", {}))
    for key, value in override.items():
        km = override.key_marks.get(key) if isinstance(override, MDict) else None
        if value is None:
            out.pop(key, None)
            continue
        out[key] = merge(out[key], value) if key in out else value
        if km is not None:
            out.key_marks[key] = km
    if is_value_spec(base) and "each" in base and "value" in override and "each" not in override:
        out["each"] = base["each"]
    return out


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``list[X] | None`` → (X, True); ``X | None`` → (X, False)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
        return annotation, False
    if origin is list:
        (inner,) = typing.get_args(annotation)
        return _unwrap(inner)[0], True
    return annotation, False


def _submodel(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


class Compiler:
    """Compiles the ``fields`` of one map against its model and source adapter."""

    def __init__(self, adapter: Adapter, registry: FunctionRegistry, problems: Problems, tables: set[str]) -> None:
        self.adapter = adapter
        self.registry = registry
        self.problems = problems
        self.tables = tables

    def obj(self, spec: MDict, model: type[BaseModel] | None, key: str) -> Obj:
        """A mapping of canonical field names to specs."""
        node = Obj()
        for name, sub in spec.items():
            if name == "when":
                node.when = self.condition(sub, key_mark(spec, name), f"{key}.when")
                continue
            path = f"{key}.{name}" if key else name
            mark = key_mark(spec, name)
            if model is not None and name not in model.model_fields:
                hint = did_you_mean(name, model.model_fields)
                self.problems.add("MAP-001", f"{model.__name__} has no field {name!r}{hint}", mark, path)
                continue
            annotation, is_list = _unwrap(model.model_fields[name].annotation) if model is not None else (None, False)
            if sub is None:
                continue
            compiled = self.field(sub, _submodel(annotation), is_list, path, mark)
            if compiled is not None:
                node.fields[name] = compiled
        return node

    def field(
        self, spec: Any, model: type[BaseModel] | None, is_list: bool, key: str, mark: Mark | None
    ) -> Node | None:
        """Any field spec: path text, list, value spec, ``each``, extractor, or nested object."""
        mark = mark_of(spec, mark)
        if isinstance(spec, str):
            return self.value(MDict({"from": spec}), key, mark)
        if isinstance(spec, list):
            return Items(
                items=[n for i, s in enumerate(spec) if (n := self.field(s, model, False, f"{key}[{i}]", mark))]
            )
        if not isinstance(spec, MDict):
            self.problems.add("MAP-002", f"expected a path, a list or a mapping, not {spec!r}", mark, key)
            return None
        if "each" in spec:
            return self.each(spec, model, key)
        special = self.adapter.specials.intersection(spec)
        if special:
            kind = next(iter(special))
            fn = self.adapter.special(kind, spec, self.problems, key)
            node = Special(fn=fn) if fn is not None else None
            if node is not None and "when" in spec:
                node.when = self.condition(spec["when"], key_mark(spec, "when"), key)
            return node
        if VALUE_KEYS.intersection(spec) or "fn" in spec:
            return self.value(spec, key, mark)
        if model is None and not is_list:
            self.problems.add("MAP-003", "a plain value needs `from` or `const` (or is written as a path)", mark, key)
            return None
        return self.obj(spec, model, key)

    def each(self, spec: MDict, model: type[BaseModel] | None, key: str) -> Node | None:
        """``{each: selector, value: spec}``: one item per iteration."""
        unknown = set(spec) - {"each", "value", "when", "description"}
        for name in sorted(unknown):
            self.problems.add("MAP-004", f"`each` takes value and when, not {name!r}", key_mark(spec, name), key)
        select = self.adapter.selector(str(spec["each"]), key_mark(spec, "each"), self.problems, key)
        if "value" not in spec:
            self.problems.add("MAP-005", "`each` needs a `value` for each item", spec.mark, key)
            return None
        inner = self.field(spec["value"], model, False, f"{key}[]", key_mark(spec, "value"))
        if select is None or inner is None:
            return None
        node = Each(select=select, value=inner)
        if "when" in spec:
            node.when = self.condition(spec["when"], key_mark(spec, "when"), key)
        return node

    def value(self, spec: MDict, key: str, mark: Mark | None) -> Value | None:
        """``{from|const|first_of, fn, <params>, default, when}``."""
        node = Value(source=str(spec.get("from", spec.get("first_of", ""))))
        ok = True
        if "from" in spec or "first_of" in spec:
            src_key = "from" if "from" in spec else "first_of"
            src = spec[src_key]
            paths = list(src) if isinstance(src, list) else [src]
            node.many = isinstance(src, list)
            for p in paths:
                getter = self.adapter.getter(str(p), mark_of(p, key_mark(spec, src_key)), self.problems, key)
                ok = ok and getter is not None
                if getter is not None:
                    node.getters.append(getter)
            if src_key == "first_of":
                # `first` runs before the map's own functions; added here rather than to `fn`,
                # so `{first_of: [...], fn: table, table: x}` keeps its inline parameters
                first = self.call("first", {}, key_mark(spec, src_key), key)
                if first is not None:
                    node.calls.append(first)
        elif "const" in spec:
            node.const = spec["const"]
        else:
            self.problems.add("MAP-006", "a value spec needs `from`, `first_of` or `const`", mark, key)
            return None
        params = {
            k: v
            for k, v in spec.items()
            if k not in ("from", "first_of", "const", "fn", "default", "when", "description")
        }
        calls, calls_ok = compile_calls(spec, params, self.registry, self.tables, self.problems, key)
        node.calls.extend(calls)
        ok = ok and calls_ok
        if "when" in spec:
            node.when = self.condition(spec["when"], key_mark(spec, "when"), key)
        return node if ok else None

    def call(self, item: Any, params: dict[str, Any], mark: Mark | None, key: str) -> Call | None:
        """One function by name (``date``) or with inline params (``{implied_decimal: {places: 2}}``)."""
        return compile_call(item, params, mark, key, self.registry, self.tables, self.problems)

    def condition(self, spec: Any, mark: Mark | None, key: str) -> Condition | None:
        """``when: PATH`` (present) or ``{path, equals|not_equals|in|not_in|exists}``."""
        if isinstance(spec, str):
            spec = MDict({"path": spec, "exists": True})
        if not isinstance(spec, dict) or "path" not in spec:
            self.problems.add("MAP-012", "`when` is a path or {path, equals|in|not_equals|not_in|exists}", mark, key)
            return None
        getter = self.adapter.getter(str(spec["path"]), mark_of(spec["path"], mark), self.problems, key)
        tests = set(spec) - {"path"}
        if len(tests) != 1 or not tests <= {"equals", "not_equals", "in", "not_in", "exists"}:
            self.problems.add(
                "MAP-012", "`when` takes exactly one of equals, not_equals, in, not_in, exists", mark, key
            )
            return None
        if getter is None:
            return None
        test = tests.pop()
        arg = spec[test]
        codes = frozenset(str(a) for a in (arg if isinstance(arg, list) else [arg]))
        get = getter

        def check(scope: Any, env: Env) -> bool:
            value = get(scope, env)
            if test == "exists":
                return (value is not None) == bool(arg)
            hit = value in codes
            return hit if test in ("equals", "in") else not hit

        # generated object functions test it in line (gateway.mapping.plan): the getter, then the test
        setattr(check, CONDITION, (get, test, codes, bool(arg)))
        return check


def compile_calls(
    spec: Any, params: dict[str, Any], registry: FunctionRegistry, tables: set[str], problems: Problems, key: str
) -> tuple[list[Call], bool]:
    """A value spec's ``fn`` (a name, or a list of names and ``{name: {params}}``) with its inline
    ``params``, then ``default``; shared by the inbound and the outbound compilers."""
    names = _as_list(spec.get("fn"))
    ok = True
    if params and len(names) != 1:
        for name in params:
            problems.add(
                "MAP-007",
                f"parameter {name!r} needs exactly one `fn` (use the list form fn: [{{name: {{params}}}}])",
                key_mark(spec, name),
                key,
            )
        ok = False
    calls: list[Call] = []
    for item in names:
        call = compile_call(
            item, params if len(names) == 1 else {}, key_mark(spec, "fn"), key, registry, tables, problems
        )
        ok = ok and call is not None
        if call is not None:
            calls.append(call)
    if "default" in spec:
        call = compile_call(
            "default", {"value": spec["default"]}, key_mark(spec, "default"), key, registry, tables, problems
        )
        if call is not None:
            calls.append(call)
    return calls, ok


def compile_call(
    item: Any,
    params: dict[str, Any],
    mark: Mark | None,
    key: str,
    registry: FunctionRegistry,
    tables: set[str],
    problems: Problems,
) -> Call | None:
    """One function by name or ``{name: {params}}``: the name, its parameters and table names checked."""
    if isinstance(item, dict):
        if len(item) != 1:
            problems.add("MAP-008", "a function in a list is `name` or `{name: {params}}`", mark, key)
            return None
        name, inline = next(iter(item.items()))
        params = dict(inline or {})
        mark = key_mark(item, name)
    else:
        name = str(item)
    spec = registry.get(name)
    if spec is None:
        hint = did_you_mean(name, registry.names())
        problems.add("MAP-009", f"no function named {name!r}{hint}", mark_of(item, mark), key)
        return None
    try:
        parsed = spec.params.model_validate(dict(params))
    except ValueError as exc:
        lines = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in lines[1:3]) if len(lines) > 1 else str(exc)
        problems.add("MAP-010", f"bad parameters for {name}: {detail}", mark, key)
        return None
    table = params.get("table")
    if name == "table" and table is not None and str(table) not in tables:
        hint = did_you_mean(str(table), tables)
        problems.add("MAP-011", f"no code table named {table!r}{hint}", mark_of(table, mark), key)
        return None
    return Call(spec, parsed)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def compile_map(
    raw: MDict,
    origin: str,
    catalog: Catalog,
    registry: FunctionRegistry,
    tables: dict[str, CodeTable],
    problems: Problems,
) -> CompiledMap | None:
    """Compile one map whose ``extends`` has already been merged in; problems go to ``problems``."""
    for key in raw:
        if key not in TOP_KEYS:
            problems.add("MAP-020", f"unknown key {key!r}{did_you_mean(key, TOP_KEYS)}", key_mark(raw, key), key)
    name = str(raw.get("map", ""))
    if not name:
        problems.add("MAP-021", "a map needs a `map:` name", raw.mark)
        return None
    document = str(raw.get("document", ""))
    model = SCHEMAS.get(document)
    if model is None:
        problems.add(
            "MAP-022",
            f"`document` must be one of {', '.join(SCHEMAS)}{did_you_mean(document, SCHEMAS)}",
            key_mark(raw, "document"),
            "document",
        )
        return None
    source = _source(raw.get("source"), key_mark(raw, "source"), problems)
    if source is None:
        return None
    adapter: Adapter
    if source.format == "x12":
        assert source.version is not None and source.set_id is not None
        definition = catalog.definition(source.version, source.set_id)
        if definition is None:
            problems.add(
                "MAP-023",
                f"no definition for set {source.set_id} version {source.version}",
                key_mark(raw, "source"),
                "source",
            )
            return None
        segs = {sid: spec for sid in definition.segment_ids if (spec := catalog.segment(source.version, sid))}
        adapter = X12Adapter(definition, segs)
    elif source.format == "xml":
        adapter = XmlAdapter(source.namespaces)
    else:
        assert source.dialect is not None
        adapter = CsvAdapter(list(source.dialect.columns) if source.dialect.columns else None)
    local = _tables(raw.get("tables"), origin, problems)
    all_tables = {**tables, **local}
    fields = raw.get("fields")
    if not isinstance(fields, MDict):
        problems.add("MAP-024", "a map needs `fields:`, a mapping of canonical fields", raw.mark, "fields")
        return None
    before = len(problems.items)
    compiler = Compiler(adapter, registry, problems, set(all_tables))
    root = compiler.obj(fields, model, "")
    select_documents = None
    if source.format == "xml":
        select_documents = adapter.selector(source.documents, key_mark(raw, "source"), problems, "source.documents")
    if len(problems.items) > before:
        return None
    return CompiledMap(
        name=name,
        document=document,
        model=model,
        source=source,
        root=root,
        origin=origin,
        extends=str(raw["extends"]) if raw.get("extends") else None,
        tables=local,
        select_documents=select_documents,
    )


def _source(spec: Any, mark: Mark | None, problems: Problems) -> SourceSpec | None:
    if not isinstance(spec, dict):
        problems.add("MAP-025", "a map needs `source: {format: x12|csv|xml, ...}`", mark, "source")
        return None
    fmt = str(spec.get("format", ""))
    allowed = SOURCE_KEYS.get(fmt)
    if allowed is None:
        problems.add("MAP-025", f"source format must be x12, csv or xml, not {fmt!r}", mark, "source.format")
        return None
    bad = [k for k in spec if k not in allowed]
    for k in bad:
        problems.add("MAP-026", f"a {fmt} source takes {', '.join(allowed)}; not {k!r}", key_mark(spec, k), "source")
    if bad:
        return None
    if fmt == "x12":
        if not spec.get("set") or not spec.get("version"):
            problems.add("MAP-027", "an x12 source needs `set` and `version`", mark, "source")
            return None
        return SourceSpec("x12", set_id=str(spec["set"]), version=str(spec["version"]))
    if fmt == "csv":
        try:
            dialect = CsvDialect.model_validate(dict(spec.get("dialect") or {}))
        except ValueError as exc:
            problems.add("MAP-028", f"bad CSV dialect: {exc}".replace("\n", " "), key_mark(spec, "dialect"), "source")
            return None
        group = spec.get("group_by") or []
        return SourceSpec(
            "csv", dialect=dialect, group_by=[str(g) for g in (group if isinstance(group, list) else [group])]
        )
    namespaces = {str(k): str(v) for k, v in dict(spec.get("namespaces") or {}).items()}
    return SourceSpec("xml", namespaces=namespaces, documents=str(spec.get("documents", "/*")))


def _tables(spec: Any, origin: str, problems: Problems) -> dict[str, CodeTable]:
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        problems.add("MAP-030", "`tables` maps a table name to {codes: {...}, default: ...}", mark_of(spec), "tables")
        return {}
    out: dict[str, CodeTable] = {}
    for name, body in spec.items():
        table = code_table(str(name), body, problems, key_mark(spec, name), f"tables.{name}")
        if table is not None:
            out[str(name)] = table
    return out


def code_table(name: str, body: Any, problems: Problems, mark: Mark | None, key: str) -> CodeTable | None:
    """``{codes: {A: x}, default: y}`` (or a bare ``{A: x}``) → :class:`CodeTable`."""
    if not isinstance(body, dict):
        problems.add("MAP-031", f"table {name!r} must be a mapping of codes", mark, key)
        return None
    if "codes" in body:
        extra = set(body) - {"codes", "default", "table", "description"}
        for k in sorted(extra):
            problems.add("MAP-031", f"a table takes codes and default, not {k!r}", key_mark(body, k), key)
        codes = body["codes"]
        if not isinstance(codes, dict):
            problems.add("MAP-031", f"table {name!r}: `codes` must be a mapping", key_mark(body, "codes"), key)
            return None
        return CodeTable(name, {str(k): v for k, v in codes.items()}, body.get("default"), "default" in body)
    return CodeTable(name, {str(k): v for k, v in body.items()})


__all__ = ["CompiledMap", "MStr", "SourceSpec", "code_table", "compile_map", "expand_dotted", "merge"]
