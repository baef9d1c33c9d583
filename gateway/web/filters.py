"""Jinja2 filters of the dashboard's templates: times, ages, amounts, JSON; pure functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = ["FILTERS"]


def when(value: Any) -> str:
    """A time as ``2026-12-06 22:43:44`` (UTC as stored), ``-`` for none."""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return "-" if value in (None, "") else str(value)


def ago(seconds: Any) -> str:
    """Seconds as ``1d 2h``, ``3h 4m``, ``5m 6s``; ``-`` for none."""
    if seconds is None:
        return "-"
    s = int(float(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def money(value: Any) -> str:
    """An amount with two decimals and thousands separators (``-`` for none)."""
    if value in (None, ""):
        return "-"
    return f"{Decimal(str(value)):,.2f}"


def as_json(value: Any) -> str:
    """Pretty JSON (escaped by the template like any other text)."""
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def took(attempt: dict[str, Any]) -> str:
    """How long a delivery attempt took, in ms."""
    start, end = attempt.get("started_at"), attempt.get("finished_at")
    if isinstance(start, datetime) and isinstance(end, datetime):
        return f"{(end - start).total_seconds() * 1000:.0f} ms"
    return "-"


FILTERS: dict[str, Callable[..., str]] = {"when": when, "ago": ago, "money": money, "as_json": as_json, "took": took}
