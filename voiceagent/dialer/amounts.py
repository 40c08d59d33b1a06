"""Amounts as people write them in call lists: ``1.200.000,50``, ``1,200,000.50``, ``1200000``.

The region's locale (``babel``) decides what a lone separator means; the other common
convention is accepted only where it cannot be misread. Everything babel would have to think
about goes to ``babel.numbers.parse_decimal(strict=True)``; plain digits and standard
three-digit grouping (the bulk of a million-row file) take a regular-expression shortcut
built from the locale's own symbols.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import NumberFormatError, get_decimal_symbol, get_group_symbol, parse_decimal

_PLAIN = re.compile(r"\d+(?:[.,]\d{1,2})?")
"""Digits, optionally a decimal part of one or two digits: the same in every convention."""
_LONE_SEPARATOR = re.compile(r"\d{1,3}[.,]\d{3}")
"""``1.200`` or ``1,200``: a thousands group or three decimals, depending on the locale."""


class AmountError(ValueError):
    """Not an amount (the message says why, for the import report)."""


@lru_cache(maxsize=512)
def region_locale(region: str) -> Locale:
    """The locale numbers are written in, in a country (``CO`` -> ``es_CO``)."""
    try:
        return Locale.parse(f"und_{region}")
    except (ValueError, LookupError):
        return Locale.parse("en_US")


@lru_cache(maxsize=64)
def _conventions(locale_name: str) -> tuple[tuple[Locale, re.Pattern[str]], ...]:
    """The locale and the other common convention, each with its grouped-number pattern."""
    locale = Locale.parse(locale_name)
    other = Locale.parse("en_US" if get_decimal_symbol(locale) != "." else "de_DE")
    found = []
    for candidate in (locale, other):
        group, mark = (
            re.escape(get_group_symbol(candidate)),
            re.escape(get_decimal_symbol(candidate)),
        )
        found.append((candidate, re.compile(rf"\d{{1,3}}(?:{group}\d{{3}})+(?:{mark}\d+)?")))
    return tuple(found)


def parse_amount(text: str, locale: Locale) -> Decimal:
    """Parse an amount written the locale's way, or unambiguously the other common way.

    ``1.200.000,50``, ``1,200,000.50``, ``1200000`` and ``1200000,50`` read the same
    everywhere; ``1.200`` is 1200 where ``.`` groups digits (es_CO) and ambiguous where it is
    the decimal mark (en_US), and ``1,200`` the other way round.

    Raises:
        AmountError: Not a number, negative, or ambiguous.
    """
    cleaned = text.strip().lstrip("$").strip()
    if _PLAIN.fullmatch(cleaned):
        return Decimal(cleaned.replace(",", "."))
    return _parse(cleaned, str(locale))


@lru_cache(maxsize=1 << 16)
def _parse(text: str, locale_name: str) -> Decimal:
    if text.startswith("-"):
        raise AmountError(f"negative amount {text!r}")
    conventions = _conventions(locale_name)
    mark = get_decimal_symbol(conventions[0][0])
    if _LONE_SEPARATOR.fullmatch(text) and text[-4] == mark:
        raise AmountError(f"ambiguous amount {text!r}: write it without separators")
    for locale, grouped in conventions:
        if grouped.fullmatch(text):
            group = get_group_symbol(locale)
            return Decimal(text.replace(group, "").replace(get_decimal_symbol(locale), "."))
    for locale, _ in conventions:
        try:
            return Decimal(parse_decimal(text, locale, strict=True))
        except NumberFormatError:
            continue
    raise AmountError(f"invalid amount {text!r}")
