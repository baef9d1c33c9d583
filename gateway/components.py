"""The composition root's parts: the registry of components, and the destinations built from settings.

Everything registered by name is registered here, once (STYLE.md convention 1): a new destination
is one module plus one line in :func:`default_registry`. :func:`build_destinations` is phase two of the
configuration: it runs only after the pure check passed, builds every destination (which may open
connections) and returns them with their retry policies.

Two destinations always exist unless ``gateway.yaml`` defines them itself: ``canonical-json``
(every inbound document's canonical JSON in ``outbox/canonical/``, where the shipped default route
sends everything) and ``partner-outbox`` (our acknowledgments in ``outbox/<partner>/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from gateway.channels import inbox
from gateway.delivery import files, rest, staging
from gateway.delivery import sftp as sftp_destination
from gateway.delivery.base import Destination
from gateway.delivery.policy import DEFAULT, Policy
from gateway.delivery.registry import Registry
from gateway.errors import ConfigError
from gateway.outbound.layout import Layout
from gateway.outbound_loader import load_layouts
from gateway.partners.profile import PartnerDirectory
from gateway.planning import PARTNER_OUTBOX, Router
from gateway.routing import RouteInput, Rule, outbound_rules, route, rules_for

__all__ = [
    "BUILTIN_DESTINATIONS",
    "BuildContext",
    "build_destinations",
    "configured_destinations",
    "default_registry",
    "make_outbound_router",
    "make_router",
    "profile_routes",
]

BUILTIN_DESTINATIONS: dict[str, dict[str, Any]] = {
    "canonical-json": {
        "type": "files",
        "folder": "outbox/canonical",
        "name": "{partner}/{doc_type}-{file_id}-{position}.json",
    },
    "partner-outbox": {"type": "files", "folder": "outbox", "name": "{partner}/{doc_type}-{control}.x12"},
}
"""Destinations every deployment has (``gateway.yaml`` may redefine them under the same names)."""


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a component's factory may use: the deployment folder (relative paths), the sync mode, the clock."""

    home: Path
    sync: str = "group"
    clock: Callable[[], datetime] | None = None
    #: export layouts by name (``files`` ``layout:``, ``rest`` ``body:``); None: loaded from ``home`` when named
    layouts: Mapping[str, Layout] | None = None
    partners: PartnerDirectory | None = None  # given: partners with `outbound: {channel: sftp}` get theirs there


def default_registry() -> Registry:
    """The registry the gateway runs with: every shipped component, registered by name."""
    registry = Registry()
    inbox.register(registry)
    files.register(registry)
    rest.register(registry)
    staging.register(registry)
    sftp_destination.register(registry)
    return registry


def build_destinations(
    configured: dict[str, dict[str, Any]], registry: Registry, context: BuildContext
) -> tuple[dict[str, Destination], dict[str, Policy]]:
    """Build every destination (built-ins plus ``configured``) and its policy. Raises ConfigError naming
    the destination for a config the pure check should have refused (a caller that skipped it)."""
    built: dict[str, Destination] = {}
    policies: dict[str, Policy] = {}
    if context.layouts is None and any(_names_layout(raw) for raw in configured.values()):
        context = replace(context, layouts=load_layouts(context.home))  # MapLoadError: a ConfigError, exit 2
    for name, raw in {**BUILTIN_DESTINATIONS, **configured}.items():
        type_name = str(raw.get("type", ""))
        model = registry.config_model("destination", type_name)
        if model is None:
            known = ", ".join(registry.types("destination"))
            raise ConfigError(f"destination {name!r}: unknown type {type_name!r} (known: {known})", code="CFG-020")
        try:
            config = model.model_validate(raw)
            policy = Policy.model_validate(raw.get("retry") or {}) if raw.get("retry") else DEFAULT
        except ValidationError as exc:
            raise ConfigError(f"destination {name!r}: {exc}", code="CFG-021") from exc
        if type_name == "files" and "sync" not in raw:
            config = config.model_copy(update={"sync": context.sync})
        built[name] = registry.build("destination", name, config, context)
        policies[name] = policy
    if context.partners is not None:
        built[PARTNER_OUTBOX] = sftp_destination.by_partner(
            PARTNER_OUTBOX, built[PARTNER_OUTBOX], context.partners, context.home
        )
    return built, policies


def _names_layout(raw: Mapping[str, Any]) -> bool:
    """Whether a destination's settings name an export layout (``files``: layout; ``rest``: body)."""
    return bool(raw.get("layout")) or raw.get("body", "canonical") != "canonical"


def configured_destinations(deployment: Any) -> dict[str, dict[str, Any]]:
    """The ``destinations:`` of a deployment's settings, as plain mappings (none: the built-ins only)."""
    configured = getattr(deployment.settings, "destinations", None) or {}
    return {name: dict(raw) if not hasattr(raw, "model_dump") else raw.model_dump() for name, raw in configured.items()}


def make_router(rules: list[Rule], profile_rules: Callable[[str | None], list[Rule]]) -> Router:
    """The runtime's router of inbound documents: a partner's own rules first, then ``rules``
    (:func:`gateway.routing.route`). The canonical JSON is parsed only when a rule that could match has
    predicates."""
    return _router("inbound", lambda partner: rules_for(partner, profile_rules(partner), rules))


def make_outbound_router(rules: list[Rule], profile_rules: Callable[[str | None], list[Rule]]) -> Router:
    """The router of what we send partners (997/999/TA1, 850): the rules :func:`gateway.routing.outbound_rules`
    keeps, ending with the shipped ``partner-outbox`` rule when ``gateway.yaml`` has no outbound rule."""
    return _router("outbound", lambda partner: outbound_rules(partner, profile_rules(partner), rules))


def profile_routes(partners: PartnerDirectory) -> Callable[[str | None], list[Rule]]:
    """A partner's own ``routes:`` (none for an unknown partner)."""

    def own(partner: str | None) -> list[Rule]:
        profile = partners.get(partner) if partner else None
        return list(profile.routes) if profile is not None else []

    return own


def _router(direction: Literal["inbound", "outbound"], rules_of: Callable[[str | None], list[Rule]]) -> Router:
    def router(
        partner: str | None, doc_type: str, test: bool, document: Callable[[], dict[str, Any]]
    ) -> tuple[list[tuple[str, str | None]], dict[str, Any]]:
        every = rules_of(partner)
        needs = any(r.match.where for r in every)
        decision = route(RouteInput(partner, doc_type, direction, test), document() if needs else None, every)
        by_rule = {r.name: r for r in every}
        pairs: list[tuple[str, str | None]] = []
        for name in decision.rules:
            for dest in by_rule[name].to:
                if all(dest != d for d, _ in pairs):
                    pairs.append((dest, name))
        return pairs, decision.as_dict()

    return router
