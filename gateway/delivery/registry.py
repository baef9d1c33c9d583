"""The registry: components by name, an instance passed explicitly (STYLE.md convention 1).

Each kind of component (a destination ``type``, a channel ``type``) is registered once, with its
config model and the factory that builds it. :mod:`gateway.components` fills the registry the
gateway uses; tests build their own (empty, or :meth:`Registry.copy` of the default with a fake added).
Validation is pure (phase one: :meth:`Registry.config_model` checks a config without building
anything); :meth:`Registry.build_destination` is phase two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gateway.errors import ConfigError

__all__ = ["Component", "Registry"]


@dataclass(frozen=True, slots=True)
class Component:
    """A registered kind: its config model, its factory ``(name, config, context) -> instance``, a summary."""

    kind: str
    type_name: str
    config: type[BaseModel]
    factory: Callable[[str, Any, Any], Any]
    summary: str


class Registry:
    """Components by kind (``destination``, ``channel``) and type name."""

    def __init__(self) -> None:
        self._components: dict[tuple[str, str], Component] = {}

    def register(
        self, kind: str, type_name: str, config: type[BaseModel], factory: Callable[[str, Any, Any], Any], summary: str
    ) -> None:
        """Register ``type_name`` for ``kind``; registering a name twice is a bug."""
        key = (kind, type_name)
        if key in self._components:
            raise ValueError(f"{kind} type {type_name!r} is registered twice")
        self._components[key] = Component(kind, type_name, config, factory, summary)

    def copy(self) -> Registry:
        """A new registry with the same components (a test adds its fakes to the copy)."""
        other = Registry()
        other._components = dict(self._components)
        return other

    def types(self, kind: str) -> list[str]:
        """The registered type names of ``kind``, sorted."""
        return sorted(t for k, t in self._components if k == kind)

    def get(self, kind: str, type_name: str) -> Component | None:
        """The component, or None when no such type is registered."""
        return self._components.get((kind, type_name))

    def config_model(self, kind: str, type_name: str) -> type[BaseModel] | None:
        """The config model of a registered type (None: unknown type)."""
        component = self.get(kind, type_name)
        return None if component is None else component.config

    def build(self, kind: str, name: str, config: BaseModel, context: Any) -> Any:
        """Phase two: build the component called ``name`` from its validated ``config``."""
        type_name = str(getattr(config, "type", ""))
        component = self.get(kind, type_name)
        if component is None:
            known = ", ".join(self.types(kind)) or "none"
            raise ConfigError(f"{kind} {name!r}: unknown type {type_name!r} (known: {known})", code="CFG-020")
        return component.factory(name, config, context)
