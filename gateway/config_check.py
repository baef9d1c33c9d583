"""Phase one of the deployment's configuration: ``gateway.yaml``'s destinations and routes, and the
partners' own routes, checked without building anything (STYLE.md convention 3).

Every problem is reported at once, each at its ``file:line:col`` with its key path: settings that
fail their model; a destination without a ``type`` or with one no component registers (did you
mean...?), or whose settings fail that component's model, or whose ``retry`` fails
:class:`~gateway.delivery.policy.Policy`, or that refers to a secret that is not set; a route naming
a destination that does not exist or a partner without a profile; two rules with one name; a rule
that can never match because an earlier rule takes everything it would (it stops and has no
predicates, and its conditions include the later rule's). Only then does phase two build the
components and open connections.

Nothing here reads files or opens connections; whether a secret is set is asked of the
``secret_problem`` function (by default :meth:`SecretRef.problem`: the environment and the file
system, read-only), so tests pass their own; so is what a destination's build would refuse
(``build_problems``: a REST destination's CA bundle or HMAC secret, CFG-043).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel

from gateway.config_layouts import check_layout_name, check_layout_routes
from gateway.delivery.base import SecretRef
from gateway.delivery.policy import Policy
from gateway.delivery.registry import Registry
from gateway.mapping.marked import Mark, MDict, MList, key_mark, mark_of
from gateway.mapping.problems import Problems, did_you_mean, validate_marked
from gateway.partners.profile import ChannelSettings
from gateway.partners.sftp_options import Secret, sftp_problems
from gateway.recon_lint import check_billing_routes, check_reconciliation
from gateway.routing import Rule
from gateway.settings import Settings

__all__ = ["CheckedConfig", "check_config"]

SecretCheck = Callable[[SecretRef], str | None]
BuildCheck = Callable[[BaseModel], list[tuple[tuple[str, ...], str]]]


@dataclass(slots=True)
class CheckedConfig:
    """What phase one found: the problems, and counts for a clean run's summary line."""

    problems: Problems
    destinations: int = 0
    routes: int = 0
    partner_routes: int = 0


def check_config(
    raw: Any,
    registry: Registry,
    partners: Mapping[str, Any] | None = None,
    *,
    secret_problem: SecretCheck = SecretRef.problem,
    layouts: Mapping[str, str] | None = None,
    build_problems: BuildCheck | None = None,
    file_exists: Callable[[str], bool] | None = None,
) -> CheckedConfig:
    """Check ``raw`` (the marked ``gateway.yaml``; None: absent). Without ``destinations:`` the shipped
    ones apply and are not checked again (they are the gateway's, pinned by its tests); routes are
    checked against them.

    ``partners`` maps each partner id to its marked profile (None: the partners are not known,
    so route ``partner:`` names are not checked); a profile's ``routes:`` are checked too.
    ``layouts`` maps each export layout to the document type it writes (None: layout names are not checked).
    ``build_problems`` (from the edge: it reads files) gives what a validated destination's build would
    refuse, as ``(keys, why)``: each is a CFG-043 at those keys.
    """
    problems = Problems()
    if raw is not None and not isinstance(raw, MDict):
        problems.add("CFG-003", "gateway.yaml must be a mapping", mark_of(raw))
        return CheckedConfig(problems)
    settings = validate_marked(Settings, raw or {}, problems, "CFG-004")
    defaults = Settings()
    names = list(defaults.destinations)
    # The shipped destinations are the gateway's own (a test pins them to the registry); what is
    # checked here is what the operator wrote, so that every problem points at a line to fix.
    raw_destinations = raw.get("destinations") if raw is not None else None
    writes: dict[str, str] = {}  # destination -> the document type its export layout writes
    if isinstance(raw_destinations, dict):
        names = [str(name) for name in raw_destinations]
        for name, config in raw_destinations.items():
            validated = _check_destination(str(name), config, raw_destinations, registry, problems, secret_problem)
            if validated is None:
                continue
            doc = check_layout_name(str(name), validated, config, layouts, problems) if layouts is not None else None
            if doc is not None:
                writes[str(name)] = doc
            for keys, why in build_problems(validated) if build_problems else []:
                where = _mark_at(config, keys, key_mark(raw_destinations, name))
                problems.add("CFG-043", f"destination {name!r}: {why}", where, ".".join(("destinations", name, *keys)))
    checked = CheckedConfig(problems, destinations=len(names))
    known_partners = None if partners is None else sorted(partners)
    raw_routes = raw.get("routes") if raw is not None and "routes" in raw else None
    if raw_routes is None:
        routes = [(rule, None) for rule in (settings or defaults).routes]
    else:
        routes = list(_rules(raw_routes, Problems()))
    checked.routes = len(raw_routes) if isinstance(raw_routes, list) else len(routes)
    _check_routes(routes, "routes", names, known_partners, None, problems)
    check_layout_routes(routes, "routes", writes, problems)
    if raw is not None:
        check_reconciliation(raw.get("reconciliation"), None, problems)
    web = settings.web if settings is not None else None
    if web is not None and web.secret is not None and raw is not None:
        unset = secret_problem(web.secret)  # the dashboard's cookie key: `gateway web` would refuse to start
        if unset is not None:
            problems.add("CFG-014", f"web: {unset}", _mark_at(raw.get("web"), ("secret",), mark_of(raw)), "web.secret")
    for pid, profile in sorted((partners or {}).items()):
        if isinstance(profile, MDict):
            check_reconciliation(profile.get("reconciliation"), pid, problems)
        if not isinstance(profile, MDict) or not isinstance(profile.get("routes"), MList):
            continue
        # A profile's rules are checked here too (``gateway config lint`` loads no profile), with the
        # code and message the profile loader gives them, so that ``partners lint`` shows each once.
        own = list(_rules(profile["routes"], problems, "PRT-003"))
        checked.partner_routes += len(profile["routes"])
        _check_routes(own, "routes", names, known_partners, pid, problems)
        check_layout_routes(own, "routes", writes, problems)
    for pid, profile in sorted((partners or {}).items()):
        _check_sftp_channels(pid, profile, problems, secret_problem, file_exists)
    check_billing_routes(raw, partners, partial(_names_billing, routes, partners or {}), problems)
    return checked


def _names_billing(routes: list[tuple[Rule, Any]], partners: Mapping[str, Any], partner: str | None) -> bool:
    """Whether a global rule, or ``partner``'s own, names ``billing_event``."""
    profile = partners.get(partner) if partner else None
    own = profile.get("routes") if isinstance(profile, MDict) else None
    rules = [r for r, _ in routes] + [r for r, _ in _rules(own, Problems())]
    return any("billing_event" in (r.match.doc_types() or ()) for r in rules)


def _check_destination(
    name: str,
    config: Any,
    parent: Mapping[str, Any],
    registry: Registry,
    problems: Problems,
    secret_problem: SecretCheck,
) -> BaseModel | None:
    path = f"destinations.{name}"
    where = key_mark(parent, name)
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        problems.add("CFG-015", f"destination name {name!r}: letters, digits, '-', '_' and '.' only", where, path)
    if not isinstance(config, dict):
        problems.add("CFG-010", f"destination {name!r} is a mapping with a `type`", mark_of(config, where), path)
        return None
    kind = config.get("type")
    if not isinstance(kind, str) or not kind:
        problems.add("CFG-010", f"destination {name!r} has no `type`", mark_of(config, where), path)
        return None
    model = registry.config_model("destination", kind)
    if model is None:
        known = registry.types("destination")
        message = f"destination {name!r}: unknown type {kind!r}{did_you_mean(kind, known)}"
        message += f" (known: {', '.join(known)})" if known else " (no destination types are registered)"
        problems.add("CFG-011", message, mark_of(kind, key_mark(config, "type")), f"{path}.type")
        return None
    validated = validate_marked(model, config, problems, "CFG-012", prefix=path)
    retry = config.get("retry")
    if retry is not None:
        validate_marked(Policy, retry, problems, "CFG-013", prefix=f"{path}.retry")
    if validated is not None and kind == "sftp":
        sftp: Any = validated
        _add_sftp(
            sftp_problems(
                host=sftp.host, username=sftp.username, remote_dir=sftp.remote_dir,
                host_key=sftp.host_key, options=sftp.sftp, codes=SFTP_DESTINATION_CODES,
                file_exists=lambda _: True, secret_problem=_secret_check(secret_problem),
            ),
            f"destination {name!r}", config, where, path, problems,
        )  # fmt: skip
    if validated is not None:
        for keys, ref in _secrets(validated, ()):
            why = secret_problem(ref)
            if why is not None:
                dotted = ".".join(str(k) for k in keys)
                problems.add(
                    "CFG-014", f"destination {name!r}: {why}", _mark_at(config, keys, where), f"{path}.{dotted}"
                )
    return validated


SFTP_PROFILE_CODES = ("PRT-050", "PRT-051", "PRT-052", "PRT-053", "PRT-054")
SFTP_DESTINATION_CODES = ("CFG-070", "CFG-071", "CFG-072", "CFG-073", "CFG-074")
"""(missing setting, no host key pinned, bad host key, no or unreadable authentication, missing file)."""


def _secret_check(secret_problem: SecretCheck) -> Callable[[Secret], str | None]:
    return lambda secret: secret_problem(SecretRef(env=secret.env, file=secret.file))


def _check_sftp_channels(
    pid: str, profile: Any, problems: Problems, secret_problem: SecretCheck, file_exists: Callable[[str], bool] | None
) -> None:
    """A profile's ``inbound``/``outbound: {channel: sftp}``: what would stop it connecting safely."""
    if not isinstance(profile, MDict):
        return
    for direction in ("inbound", "outbound"):
        raw = profile.get(direction)
        if not isinstance(raw, MDict) or raw.get("channel") != "sftp":
            continue
        channel = validate_marked(ChannelSettings, raw, Problems(), "PRT-001")  # its own errors: partners lint
        if channel is None:
            continue
        found = sftp_problems(
            host=channel.host, username=channel.username, remote_dir=channel.remote_dir or (
                "." if direction == "outbound" and channel.sftp and channel.sftp.upload_dir else None
            ), host_key=channel.host_key, options=channel.sftp, codes=SFTP_PROFILE_CODES,
            file_exists=file_exists or (lambda _: True), secret_problem=_secret_check(secret_problem),
        )  # fmt: skip
        _add_sftp(found, f"partner {pid} {direction}", raw, key_mark(profile, direction), direction, problems)


def _add_sftp(found: list[Any], who: str, raw: Any, where: Mark | None, path: str, problems: Problems) -> None:
    for code, message, keys in found:
        problems.add(code, f"{who}: {message}", _mark_at(raw, keys, where), ".".join((path, *keys)))


def _secrets(value: Any, keys: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], SecretRef]]:
    """Every :class:`SecretRef` inside a validated config, with the keys that reach it."""
    if isinstance(value, SecretRef):
        yield keys, value
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _secrets(getattr(value, field), (*keys, field))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _secrets(v, (*keys, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _secrets(v, (*keys, i))


def _mark_at(raw: Any, keys: tuple[Any, ...], fallback: Mark | None) -> Mark | None:
    """The mark of the value at ``keys`` under ``raw`` (the nearest one found on the way)."""
    mark = mark_of(raw, fallback)
    node = raw
    for key in keys:
        if isinstance(node, dict) and key in node:
            mark = key_mark(node, str(key)) or mark
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            mark = mark_of(node[key], mark)
            node = node[key]
        else:
            break
    return mark


def _value_mark(raw: Any, keys: tuple[Any, ...], value: str) -> Mark | None:
    """The mark of ``value`` written at ``keys`` (alone or in a list), else of the key."""
    mark = _mark_at(raw, keys, None)
    node = raw
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    for candidate in node if isinstance(node, list) else [node]:
        if candidate == value:
            return mark_of(candidate, mark)
    return mark


def _rules(raw_routes: Any, problems: Problems, code: str = "CFG-004") -> Iterator[tuple[Rule, Any]]:
    """The rules that pass their model, with their marked source; the others' problems to ``problems``."""
    if not isinstance(raw_routes, list):
        return
    for index, item in enumerate(raw_routes):
        rule = validate_marked(Rule, item, problems, code, prefix=f"routes.{index}")
        if rule is not None:
            yield rule, item


def _check_routes(
    routes: list[tuple[Rule, Any]],
    path: str,
    destinations: list[str],
    partners: list[str] | None,
    owner: str | None,
    problems: Problems,
) -> None:
    """Cross-references and reachability of one list of rules (``owner``: the profile's partner)."""
    seen: dict[str, int] = {}
    for index, (rule, item) in enumerate(routes):
        at = f"{path}.{index}"
        if rule.name in seen:
            problems.add(
                "CFG-018",
                f"rule {rule.name!r} is defined twice (also {path}.{seen[rule.name]})",
                _mark_at(item, ("name",), None),
                f"{at}.name",
            )
        seen.setdefault(rule.name, index)
        for position, target in enumerate(rule.to):
            if target not in destinations:
                hint = did_you_mean(target, destinations)
                known = f" (defined: {', '.join(destinations)})" if destinations else " (no destinations are defined)"
                problems.add(
                    "CFG-016",
                    f"rule {rule.name!r} sends to {target!r}, which is not a destination{hint or known}",
                    _mark_at(item, ("to", position), None),
                    f"{at}.to.{position}",
                )
        named = rule.match.partners()
        if owner is not None and named is not None:
            problems.add(
                "CFG-021",
                f"partner {owner}'s rule {rule.name!r} names partners: a profile's rules route that partner's "
                "documents only; remove `partner:`",
                _mark_at(item, ("match", "partner"), None),
                f"{at}.match.partner",
            )
        elif partners is not None and named is not None:
            for pid in sorted(named - set(partners)):
                problems.add(
                    "CFG-019",
                    f"rule {rule.name!r} matches partner {pid!r}, which has no profile{did_you_mean(pid, partners)}",
                    _value_mark(item, ("match", "partner"), pid),
                    f"{at}.match.partner",
                )
        for earlier, earlier_item in routes[:index]:
            if earlier.stop and earlier.match.covers(rule.match):
                line = mark_of(earlier_item)
                there = f" (line {line.line})" if line is not None else ""
                problems.add(
                    "CFG-017",
                    f"rule {rule.name!r} is never reached: rule {earlier.name!r}{there} comes first, matches every "
                    "document it would and stops (move it after, or give the earlier one `stop: false`)",
                    _mark_at(item, ("name",), None),
                    f"{at}",
                )
                break
