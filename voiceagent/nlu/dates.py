"""Resolve spoken dates ("el quince", "sexta que vem", "next Friday") to absolute dates."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from babel.dates import get_day_names, get_month_names

from voiceagent.nlu.lexicon import Lexicon, fold

WEEKDAY_TOKENS = ("wd_mon", "wd_tue", "wd_wed", "wd_thu", "wd_fri", "wd_sat", "wd_sun")
"""Canonical weekday tokens that normalization writes for any language's weekday names."""

_BABEL_LOCALE = {"es": "es", "pt": "pt_BR", "en": "en_US"}
_ORD = r"(?:st|nd|rd|th|o|a|º|ª)?"


@dataclass(frozen=True, slots=True)
class Found:
    """A slot value and where it came from (for explanations)."""

    value: date
    rule: str
    span: tuple[int, int]


@lru_cache(maxsize=8)
def weekday_replacements(lang: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Patterns that turn weekday names (babel's, plus lexicon aliases) into ``wd_*`` tokens."""
    from voiceagent.nlu.lexicon import load_lexicon

    names: dict[str, int] = {}
    for idx, name in get_day_names("wide", locale=_BABEL_LOCALE[lang]).items():
        names[fold(str(name)).replace("-", " ")] = int(idx)
    for alias, idx in load_lexicon(lang).word_map("weekday_aliases").items():
        names[alias] = idx
    ordered = sorted(names.items(), key=lambda kv: len(kv[0]), reverse=True)
    return tuple(
        (re.compile(r"\b" + re.escape(name).replace(r"\ ", r"\s+") + r"\b"), WEEKDAY_TOKENS[idx])
        for name, idx in ordered
    )


@lru_cache(maxsize=8)
def _months(lang: str) -> dict[str, int]:
    months: dict[str, int] = {}
    for width in ("wide", "abbreviated"):
        for idx, name in get_month_names(width, locale=_BABEL_LOCALE[lang]).items():
            key = fold(str(name)).strip(".")
            if len(key) >= 3:
                months[key] = int(idx)
    return months


def _next_day_of_month(today: date, day: int) -> date | None:
    """The next date on or after today whose day number is ``day``."""
    if not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    for _ in range(13):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = date(year, month, day)
            if candidate >= today:
                return candidate
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return None


_RECENT_PAST = timedelta(days=31)
"""A day and month up to this far back mean that past date ("November 15th" on the 18th),
so the agent can say the date has passed instead of silently moving it a year ahead."""


def _next_day_month(today: date, day: int, month: int, year: int | None = None) -> date | None:
    years = (year,) if year else (today.year, today.year + 1)
    for y in years:
        try:
            candidate = date(y, month, day)
        except ValueError:
            continue
        if year or candidate >= today or today - candidate <= _RECENT_PAST:
            return candidate
    return None


def _end_of_month(today: date) -> date:
    return today.replace(day=calendar.monthrange(today.year, today.month)[1])


def _next_monday(today: date) -> date:
    return today + timedelta(days=7 - today.weekday())


class DateResolver:
    """Finds the first date expression in normalized text, most specific rule first."""

    def __init__(self, lexicon: Lexicon) -> None:
        lx = lexicon
        self._lang = lx.lang
        self._small = lx.word_map("small_numbers")
        num = rf"(\d{{1,2}}|{lx.alternation('small_numbers')})"
        months = "|".join(sorted(_months(lx.lang), key=len, reverse=True))
        day_mark = lx.alternation("day_markers")
        next_month = lx.alternation("next_month")
        self._rules: list[tuple[str, re.Pattern[str]]] = [
            ("numeric", re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")),
            (
                "day_month_year",
                re.compile(rf"\b{num}{_ORD}\s+(?:de\s+)?({months})\s+(?:de\s+|del\s+)?(\d{{4}})\b"),
            ),
            ("month_day_year", re.compile(rf"\b({months})\s+{num}{_ORD},?\s+(\d{{4}})\b")),
            ("day_of_month_in_words", re.compile(rf"\b{num}{_ORD}\s+(?:de\s+|of\s+)?({months})\b")),
            ("month_day", re.compile(rf"\b({months})\s+(?:the\s+)?{num}{_ORD}\b")),
            ("day_next_month", re.compile(rf"\b{num}{_ORD}\s+(?:\w+\s+)?(?:{next_month})\b")),
            (
                "next_month_day",
                re.compile(rf"\b(?:{next_month})\s+(?:on\s+)?(?:the\s+)?{num}{_ORD}\b"),
            ),
            (
                "in_days",
                re.compile(
                    rf"\b(?:{lx.alternation('in_prefix')})\s+{num}?\s*({lx.alternation('day_units')})\b"
                ),
            ),
            ("relative_day", re.compile(rf"\b({lx.alternation('relative_days')})\b")),
            ("weekday", re.compile(r"\bwd_(mon|tue|wed|thu|fri|sat|sun)\b")),
            ("end_of_month", re.compile(rf"\b(?:{lx.alternation('end_of_month')})\b")),
            ("next_week", re.compile(rf"\b(?:{lx.alternation('next_week')})\b")),
            (
                "day_of_month",
                re.compile(
                    rf"\b(?:{day_mark})\s+{num}{_ORD}\b(?!\s*(?:{lx.alternation('not_day_after')})\b)"
                ),
            ),
        ]
        self._relative = lx.word_map("relative_days")
        self._units = lx.word_map("day_units")
        self._next_week = re.compile(rf"\b(?:{lx.alternation('next_week')})\b")
        self._months = _months(lx.lang)

    def _num(self, token: str | None) -> int | None:
        if token is None:
            return None
        return int(token) if token.isdigit() else self._small.get(token)

    def find(self, text: str, today: date) -> Found | None:
        """Return the date the text names, resolved against ``today``, or None."""
        for name, pattern in self._rules:
            for m in pattern.finditer(text):
                value = self._resolve(name, m, text, today)
                if value is not None:
                    return Found(value=value, rule=f"date.{name}", span=m.span())
        return None

    def _resolve(self, name: str, m: re.Match[str], text: str, today: date) -> date | None:
        g = m.groups()
        if name == "numeric":
            a, b = int(g[0]), int(g[1])
            day, month = (b, a) if self._lang == "en" else (a, b)
            if not (1 <= month <= 12):
                return None
            year = int(g[2]) if g[2] else None
            if year is not None and year < 100:
                year += 2000
            return _next_day_month(today, day, month, year)
        if name == "day_month_year":
            n = self._num(g[0])
            return _next_day_month(today, n, self._months[g[1]], int(g[2])) if n else None
        if name == "month_day_year":
            n = self._num(g[1])
            return _next_day_month(today, n, self._months[g[0]], int(g[2])) if n else None
        if name == "day_of_month_in_words":
            n = self._num(g[0])
            return _next_day_month(today, n, self._months[g[1]]) if n else None
        if name == "month_day":
            n = self._num(g[1])
            return _next_day_month(today, n, self._months[g[0]]) if n else None
        if name in ("day_next_month", "next_month_day"):
            n = self._num(g[0])
            first = _end_of_month(today) + timedelta(days=1)
            if n is None or n > calendar.monthrange(first.year, first.month)[1]:
                return None
            return first.replace(day=n)
        if name == "in_days":
            count = self._num(g[0]) if g[0] else 1
            return today + timedelta(days=(count or 1) * self._units[g[1]])
        if name == "relative_day":
            return today + timedelta(days=self._relative[fold(re.sub(r"\s+", " ", g[0]))])
        if name == "weekday":
            target = ("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(g[0])
            if self._next_week.search(text):
                return _next_monday(today) + timedelta(days=target)
            return today + timedelta(days=((target - today.weekday() - 1) % 7) + 1)
        if name == "end_of_month":
            return _end_of_month(today)
        if name == "next_week":
            return _next_monday(today)
        if name == "day_of_month":
            n = self._num(g[0])
            return _next_day_of_month(today, n) if n else None
        return None
