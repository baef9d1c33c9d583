"""Column types that mean the same on SQLite, PostgreSQL and MariaDB/MySQL.

Amounts and quantities must come back exactly as the canonical document states them. PostgreSQL
and MariaDB have an exact ``NUMERIC``/``DECIMAL``; SQLite has none (a ``NUMERIC`` column turns
``0.1`` into a binary float), so there :class:`ExactDecimal` keeps the decimal's text in a
``VARCHAR`` and hands a :class:`~decimal.Decimal` back. The full canonical JSON of a large ship
notice passes MariaDB's 64 KiB ``TEXT``, hence :data:`LONG_TEXT`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["DECIMAL_DIGITS", "DECIMAL_SCALE", "LONG_TEXT", "ExactDecimal", "fits_decimal"]

DECIMAL_DIGITS = 20
"""Total significant digits of every amount, quantity and percent column."""
DECIMAL_SCALE = 6
"""Digits after the decimal point they keep (unit prices of a fraction of a cent need more than 2)."""
SQLITE_DECIMAL_CHARS = 40

LONG_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
"""Unbounded text: ``TEXT`` on SQLite and PostgreSQL, ``LONGTEXT`` on MariaDB/MySQL."""


def fits_decimal(value: Decimal) -> bool:
    """Whether ``value`` is stored exactly in a ``NUMERIC(DECIMAL_DIGITS, DECIMAL_SCALE)`` column."""
    if not value.is_finite() or abs(value) >= Decimal(10) ** (DECIMAL_DIGITS - DECIMAL_SCALE):
        return False
    # Checked after the magnitude, so quantize never needs more than the context's 28 digits.
    return value == value.quantize(Decimal(1).scaleb(-DECIMAL_SCALE))


class ExactDecimal(TypeDecorator[Decimal]):
    """``NUMERIC(20, 6)`` on PostgreSQL and MariaDB/MySQL, the decimal's text on SQLite; always a Decimal."""

    impl = Numeric(DECIMAL_DIGITS, DECIMAL_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_DECIMAL_CHARS))
        return dialect.type_descriptor(Numeric(DECIMAL_DIGITS, DECIMAL_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return format(Decimal(value), "f")
        return Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))
