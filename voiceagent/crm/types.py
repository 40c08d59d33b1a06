"""Column types shared by the CRM models: UTC timestamps and money in minor units."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from babel.numbers import get_currency_precision
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive UTC text).

    Naive datetimes are refused on write: a local wall-clock time must be converted
    with the account's timezone before it reaches the database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive UTC for SQLite, which keeps no offset)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def minor_exponent(currency: str) -> int:
    """Digits after the decimal point for an ISO 4217 currency (COP 2, CLP 0)."""
    return int(get_currency_precision(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """Decimal major units -> integer minor units; refuses amounts finer than the currency."""
    scaled = amount.scaleb(minor_exponent(currency))
    whole = scaled.to_integral_value(rounding=ROUND_DOWN)
    if whole != scaled:
        raise ValueError(f"{amount} {currency} has more decimals than the currency allows")
    return int(whole)


def from_minor(amount_minor: int, currency: str) -> Decimal:
    """Integer minor units -> Decimal major units."""
    return Decimal(amount_minor).scaleb(-minor_exponent(currency))
