"""When to try a delivery again, and when to give up: one documented default, overridable per destination.

The default (:data:`DEFAULT`): exponential backoff from 2 s doubling to at most 10 min, with full
jitter, at most 10 attempts and at most 24 h after the first; a receiver's ``Retry-After`` is honoured
(capped at the maximum delay). Or a fixed list of delays (``delays: [5, 30, 300]``), one per retry.
Which failures are retried is the destination's call (:class:`~gateway.delivery.base.RetryLater` versus
:class:`~gateway.delivery.base.Rejected`); for HTTP: timeouts, connection errors, 408, 425, 429 and 5xx
retry, other 4xx reject.

A destination that fails ``breaker_failures`` times in a row is paused for ``breaker_seconds`` and then
probed with one delivery (:class:`Breaker`); it never holds up other destinations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DEFAULT", "Breaker", "Policy", "next_attempt"]


class Policy(BaseModel):
    """A destination's retry policy (``retry:`` under the destination in ``gateway.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delays: list[float] | None = Field(default=None, description="Fixed delays in seconds, one per retry.")
    initial_seconds: float = Field(default=2.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    max_delay_seconds: float = Field(default=600.0, gt=0)
    jitter: bool = True
    max_attempts: int = Field(default=10, ge=1)
    max_age_seconds: float = Field(default=86400.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _delays_positive(self) -> Policy:
        if self.delays is not None and (not self.delays or any(d < 0 for d in self.delays)):
            raise ValueError("delays must be a non-empty list of seconds >= 0")
        return self


DEFAULT = Policy()
"""The policy of a destination that declares none."""


def backoff(policy: Policy, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
    if policy.delays is not None:
        return policy.delays[min(attempts, len(policy.delays)) - 1]
    ceiling = min(policy.max_delay_seconds, policy.initial_seconds * policy.multiplier ** (attempts - 1))
    if not policy.jitter:
        return ceiling
    # "Full jitter" keeps retries of many deliveries from arriving together, but never below half the step.
    return (rng or random).uniform(ceiling / 2, ceiling)


def next_attempt(
    policy: Policy,
    attempts: int,
    first_at: datetime,
    now: datetime,
    wish: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None: give up (a dead letter).

    ``wish`` is the receiver's ``Retry-After`` in seconds: honoured, capped at ``max_delay_seconds``.
    """
    if attempts >= policy.max_attempts:
        return None
    delay = backoff(policy, attempts, rng)
    if wish is not None:
        delay = min(max(delay, wish), policy.max_delay_seconds)
    when = now + timedelta(seconds=delay)
    if when - first_at > timedelta(seconds=policy.max_age_seconds):
        return None
    return when


@dataclass(slots=True)
class Breaker:
    """A destination's circuit breaker, kept by the worker that delivers (per process, in memory).

    Closed: deliveries go. After ``failures`` failed deliveries in a row it opens for ``seconds``;
    then one delivery probes it: success closes it, failure opens it again.
    """

    failures: int = 5
    seconds: float = 30.0
    _count: int = 0
    _open_until: float = 0.0

    def allows(self, now: float) -> bool:
        """Whether a delivery may be tried at monotonic time ``now``."""
        return now >= self._open_until

    def record(self, ok: bool, now: float) -> None:
        """Count one delivery's result."""
        if ok:
            self._count = 0
            self._open_until = 0.0
            return
        self._count += 1
        if self._count >= self.failures:
            self._open_until = now + self.seconds

    @property
    def failing(self) -> bool:
        """Whether its last delivery failed (it counts failures; probes go one at a time)."""
        return self._count > 0

    @property
    def open(self) -> bool:
        """Whether it opened at its last failure (and is not yet closed by a success)."""
        return self._count >= self.failures
