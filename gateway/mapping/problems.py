"""Map and profile problems: collected all at once, each with ``file:line:col`` and key path."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError, DocumentError, Location
from gateway.mapping.marked import Mark, key_mark, mark_of

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a map or profile, found at load time."""

    code: str
    message: str
    mark: Mark | None
    path: str = ""

    def __str__(self) -> str:
        where = str(self.mark) if self.mark else "(unknown place)"
        at = f" [{self.path}]" if self.path else ""
        return f"{where}: {self.code} {self.message}{at}"


class MapLoadError(ConfigError):
    """Maps or profiles that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(
            problems, key=lambda p: (p.mark.source, p.mark.line, p.mark.column) if p.mark else ("", 0, 0)
        )
        first = self.problems[0] if self.problems else None
        location = Location()
        if first is not None and first.mark is not None:
            location = Location(file=first.mark.source, line=first.mark.line, column=first.mark.column, path=first.path)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in maps/profiles:\n{lines}", "MAP-000", location)


class MappingError(DocumentError):
    """A map failed on one document at run time; the location names partner, map, set and path."""


def did_you_mean(wanted: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for a close match, else ``""``."""
    close = difflib.get_close_matches(wanted, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Problems:
    """A collector the compiler appends to; raises once, with everything, at the end."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, code: str, message: str, mark: Mark | None, path: str = "") -> None:
        """Record one problem (once: a YAML anchor used in three places is one mistake, at one place)."""
        if any(p.code == code and p.message == message and p.mark == mark for p in self.items):
            return
        self.items.append(Problem(code, message, mark, path))

    def raise_if_any(self) -> None:
        """Raise :class:`MapLoadError` when anything was recorded."""
        if self.items:
            raise MapLoadError(self.items)


def validate_marked(model: type[ModelT], raw: Any, problems: Problems, code: str, prefix: str = "") -> ModelT | None:
    """``model.model_validate(raw)``; each pydantic error becomes a problem at the offending key's mark."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            node: Any = raw
            mark = mark_of(raw)
            for part in err["loc"]:
                if isinstance(node, dict) and part in node:
                    mark = key_mark(node, str(part)) or mark
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                    mark = mark_of(node[part], mark)
                    node = node[part]
                else:
                    break
            loc = ".".join(str(p) for p in err["loc"])
            path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
            message = err["msg"]
            if err["type"] == "extra_forbidden" and err["loc"]:
                parent = model
                message = f"unknown key {err['loc'][-1]!r}"
                names = _fields_at(parent, err["loc"][:-1])
                if names:
                    message += did_you_mean(str(err["loc"][-1]), names)
            problems.add(code, message, mark, path)
        return None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the (sub)model at ``loc``, for did-you-mean hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        current = _inner_model(info.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        for inner in typing.get_args(arg):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return annotation
