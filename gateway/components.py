"""The composition root: the registry of components the gateway runs with."""

from __future__ import annotations

from gateway.delivery.registry import Registry

__all__ = ["default_registry"]


def default_registry() -> Registry:
    """A registry with every component the gateway ships."""
    return Registry()
