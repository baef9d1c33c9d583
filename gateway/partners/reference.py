"""Every key of a partner profile, as a Markdown table generated from :class:`~gateway.partners.profile.Profile`.

``gateway partners keys`` prints it and ``docs/onboarding.md`` carries it between
``<!-- profile-keys -->`` markers; a test keeps the two equal, so the reference stays true
as keys are added to the model. Descriptions come from each field's ``description``, else
the nested model's docstring.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gateway.partners.profile import Profile

__all__ = ["profile_keys", "profile_reference"]

#: What a key means, for the keys whose model field carries no ``description``.
NOTES = {
    "id": "The partner's id: lower case, digits, `-`, `_`; must equal the file name (`partners/<id>.yaml`) "
    "and names its inbox folder `inbox/<id>/`.",
    "name": "The partner's name, for people.",
    "format": "What the partner sends: X12, CSV (from `inbox/<id>/` only) or XML (cXML).",
    "x12": "Needed when `format` is `x12` (lint: PRT-010).",
    "x12.version": "The X12 version the partner trades; outbound maps must write it.",
    "x12.delimiters.element": "Element separator we write.",
    "x12.delimiters.component": "Component separator we write (ISA16).",
    "x12.delimiters.repetition": "Repetition separator we write (ISA11, 005010).",
    "x12.delimiters.segment": "Segment terminator we write.",
    "x12.delimiters.suffix": "What follows each segment terminator we write.",
    "x12.ack": "When we send a 997/999 for their groups.",
    "x12.ta1": "When we send a TA1: `on_request` when ISA14 is 1 (envelope errors and repeated ISA13 get one "
    "unless `never`).",
    "cxml": "The cXML From credentials that identify the partner.",
    "cxml[].domain": "Credential/@domain, e.g. NetworkID or DUNS (compared without case).",
    "cxml[].identity": "Credential/Identity.",
    "documents": "By X12 set id (`850`, `855`, `856`, `810`) or canonical type (`purchase_order`, "
    "`po_acknowledgment`, `ship_notice`, `invoice`).",
    "documents.<key>.direction": "`inbound`: they send it, we translate it; `outbound`: we write it to them "
    "(`gateway render`).",
    "tables": "Code tables for this partner's documents only, over the shared ones: "
    "`<table>: {codes: {THEIRS: OURS}, default: ...}`.",
    "xref.<key>.file": "A CSV or YAML file, relative to `partners/`.",
    "xref.<key>.values": "Inline `THEIRS: OURS` values, instead of `file`.",
    "inbound": "Where their files come from (schema only until the channels issue: today `inbox/<id>/`).",
    "outbound": "Where our files to them go (schema only until the channels issue: today `outbox/<id>/`).",
    "duplicates.policy": "What happens to a duplicate interchange or document.",
    "notes": "Free text for operators.",
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return "any value"
    if origin is Literal:
        return " \\| ".join(f"`{a}`" if a else '`""`' for a in args).replace("\n", "\\n").replace("\r", "\\r")
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (keys below)"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
        if isinstance(value, BaseModel):
            return "(defaults below)"
        return f"`{value!r}`" if value or value == 0 else "empty"
    value = info.default
    if value is None or value is PydanticUndefined:
        return "none"
    if isinstance(value, enum.Enum):
        value = value.value
    return f"`{value!r}`" if not isinstance(value, str) else f"`{value}`".replace("\n", "\\n").replace("\r", "\\r")


def _doc(path: str, info: FieldInfo, models: list[type[BaseModel]]) -> str:
    generic = path.replace("x12.test.", "x12.production.").replace("x12.us.", "x12.production.")
    text = info.description or NOTES.get(path) or NOTES.get(generic) or (models[0].__doc__ if models else "") or ""
    return " ".join(text.split()).replace("|", "\\|")


def profile_keys(model: type[BaseModel] = Profile, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(key path, type, default, description)`` for every key, nested keys after their parent."""
    rows: list[tuple[str, str, str, str]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        models = _models(annotation)
        origin = typing.get_origin(annotation)
        path = f"{prefix}{name}"
        rows.append((path, _type_name(annotation), _default(info), _doc(path, info, models)))
        for sub in models:
            if origin is dict:
                inner = f"{path}.<key>."
            elif origin is list:
                inner = f"{path}[]."
            else:
                inner = f"{path}."
            rows.extend(profile_keys(sub, inner))
    return rows


def profile_reference() -> str:
    """The Markdown table of :func:`profile_keys`."""
    lines = ["| key | type | default | what it is |", "|---|---|---|---|"]
    lines += [f"| `{path}` | {kind} | {default} | {doc} |" for path, kind, default, doc in profile_keys()]
    return "\n".join(lines) + "\n"
