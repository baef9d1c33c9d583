"""Whether a dotted path (a routing predicate's ``parties[role=ship_to].ids[qualifier=92].value``) can name
anything in a canonical document type: its keys are walked down the pydantic models, through lists and
optional values, so a misspelt key is found when the configuration is read instead of never matching."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from gateway.canonical.documents import Invoice, PurchaseOrder, PurchaseOrderAcknowledgment, ShipNotice

__all__ = ["MODELS", "path_problem"]

MODELS: dict[str, type[BaseModel]] = {
    "purchase_order": PurchaseOrder,
    "po_acknowledgment": PurchaseOrderAcknowledgment,
    "ship_notice": ShipNotice,
    "invoice": Invoice,
}
"""The canonical document types by the name routing rules give them (``doc_type``)."""

_OPEN = object()  # a mapping of any keys (a dict field): whatever follows may be there


def path_problem(keys: Sequence[tuple[str, Sequence[str]]], doc_types: Sequence[str]) -> str | None:
    """Why no document of ``doc_types`` can have the path ``keys`` (each step: its key and the fields its
    ``[field=value]`` selectors name), or None when one of them can."""
    problems = []
    for name in doc_types:
        problem = _walk(MODELS[name], keys)
        if problem is None:
            return None
        problems.append(f"{name}: {problem}")
    return "; ".join(problems) if problems else None


def _walk(model: type[BaseModel], keys: Sequence[tuple[str, Sequence[str]]]) -> str | None:
    current: Any = model
    for depth, (key, selected) in enumerate(keys):
        if current is _OPEN:
            return None
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            before = ".".join(k for k, _ in keys[:depth])
            return f"{before} is a value, it has no {key!r}"
        fields = current.model_fields
        if key not in fields:
            return f"no {key!r}{_hint(key, fields)} under {current.__name__}"
        current = _inner(fields[key].annotation)
        for field in selected:
            if not (isinstance(current, type) and issubclass(current, BaseModel)) or field not in current.model_fields:
                where = current.__name__ if isinstance(current, type) else "a value"
                return f"[{field}=...] selects by a field {where} does not have"
    return None


def _inner(annotation: Any) -> Any:
    """The model (or value type) a field holds, through ``X | None`` and ``list[X]``; a dict is open."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
        return _inner(models[0] if models else kinds[0]) if kinds else annotation
    if origin in (list, tuple, set, frozenset, Sequence):
        args = typing.get_args(annotation)
        return _inner(args[0]) if args else _OPEN
    if origin is dict or annotation is dict or annotation is Any:
        return _OPEN
    return annotation


def _hint(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
