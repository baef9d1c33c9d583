"""Who is asking and what they may do: users and roles from ``gateway.yaml``'s ``web:``, argon2 password
hashes, a trusted reverse-proxy header, the login rate limit and the per-session CSRF token.

Roles are ordered: a ``viewer`` reads every page; an ``operator`` also runs the actions (retransmit,
reprocess, release, requeue, dead letters, exceptions); an ``admin`` may do what an operator does (the
role is reserved for settings that only an administrator should change). The role is read from the
configuration on every request, so a user removed from ``gateway.yaml`` loses access when the dashboard
restarts even if a session cookie is still held.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.settings import Web

__all__ = ["ROLES", "LoginLimiter", "User", "Users", "check_csrf", "csrf_token", "hash_password"]

ROLES = {"viewer": 0, "operator": 1, "admin": 2}
"""Each role's rank: a page or action names the least role it needs."""

_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))  # verified against for unknown users: the same time either way


@dataclass(frozen=True, slots=True)
class User:
    """A signed-in user: the name and role from ``gateway.yaml``; ``via`` says how they were identified."""

    name: str
    role: str
    via: str = "password"

    def may(self, role: str) -> bool:
        """Whether this user's role is at least ``role``."""
        return ROLES[self.role] >= ROLES[role]

    @property
    def actor(self) -> str:
        """Who the ledger records for this user's actions (the CLI records the OS user)."""
        return f"web:{self.name}"


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for ``web.users[].password_hash``."""
    return _HASHER.hash(password)


class Users:
    """The configured users, looked up by name; passwords checked against their argon2 hashes."""

    def __init__(self, config: Web) -> None:
        self._by_name = {u.name: u for u in config.users}

    def get(self, name: str | None) -> User | None:
        """The user ``name`` as configured, or None."""
        found = self._by_name.get(name or "")
        return None if found is None else User(found.name, found.role)

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` matches their hash; None otherwise (unknown user, no hash, mismatch),
        after the same argon2 work in every case so timing does not tell which."""
        found = self._by_name.get(name)
        stored = found.password_hash if found is not None and found.password_hash else _DUMMY
        try:
            _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if found is None or not found.password_hash:
            return None
        return User(found.name, found.role)

    def __len__(self) -> int:
        return len(self._by_name)


class LoginLimiter:
    """At most ``per_user`` failed logins per client and user name, and ``per_client`` per client, in any
    ``window`` seconds; in memory (one dashboard process), thread-safe."""

    def __init__(
        self, per_user: int = 5, per_client: int = 20, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_user, self.per_client, self.window, self._clock = per_user, per_client, window, clock
        self._failures: dict[tuple[str, str | None], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str | None], now: float) -> deque[float]:
        seen = self._failures.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        return seen

    def retry_after(self, client: str, name: str) -> float | None:
        """Seconds until ``client`` may try ``name`` again, or None when it may now."""
        now = self._clock()
        with self._lock:
            waits = []
            for key, limit in (((client, name), self.per_user), ((client, None), self.per_client)):
                seen = self._recent(key, now)
                if len(seen) >= limit:
                    waits.append(seen[0] + self.window - now)
        return max(waits) if waits else None

    def failed(self, client: str, name: str) -> None:
        """Count a failed login of ``client`` as ``name``."""
        now = self._clock()
        with self._lock:
            keys: tuple[tuple[str, str | None], ...] = ((client, name), (client, None))
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # a spray of names: forget the quiet ones
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, client: str, name: str) -> None:
        """Forget ``client``'s failures as ``name`` (the per-client count stays)."""
        with self._lock:
            self._failures.pop((client, name), None)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf(session: MutableMapping[str, Any], given: object) -> bool:
    """Whether ``given`` is this session's CSRF token (compared in constant time)."""
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(given, str) and bool(token) and hmac.compare_digest(token, given)
