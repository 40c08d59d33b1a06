"""Resolve spoken times of day ("a las tres de la tarde", "às 10h", "after 5 pm") to HH:MM."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from voiceagent.nlu.lexicon import Lexicon


@dataclass(frozen=True, slots=True)
class FoundTime:
    """A time of day, the rule that found it, its span, and whether it also means "today"."""

    value: time
    rule: str
    spans: tuple[tuple[int, int], ...]
    """The time expression and, when separate, its period phrase ("de la mañana")."""
    today: bool = False


def business_hour(hour: int) -> int:
    """Read a bare hour the way a caller means it during office hours (1-7 = p.m.)."""
    return hour + 12 if 1 <= hour <= 7 else hour


class TimeResolver:
    """Finds the first time-of-day expression in normalized text."""

    def __init__(self, lexicon: Lexicon) -> None:
        lx = lexicon
        self._small = lx.word_map("small_numbers")
        hour = rf"(\d{{1,2}}|{lx.alternation('small_numbers')})"
        periods: dict[str, dict[str, object]] = lx.words.get("periods", {})
        self._period_hour: dict[str, int] = {}
        self._period_today: dict[str, bool] = {}
        for key, spec in periods.items():
            self._period_hour[key] = int(str(spec["hour"]))
            self._period_today[key] = bool(spec.get("today", False))
        self._period_res = [
            (key, re.compile(rf"\b(?:{_alt([str(m) for m in spec['markers']])})\b"))  # type: ignore[attr-defined]
            for key, spec in periods.items()
        ]
        at = lx.alternation("time_at")
        ampm = r"(?:\s*(a\s?m|p\s?m|am|pm))"
        self._rules: list[tuple[str, re.Pattern[str]]] = [
            ("clock", re.compile(rf"\b(\d{{1,2}})(?::|h)(\d{{2}})\b{ampm}?")),
            (
                "at_hour",
                re.compile(
                    rf"\b(?:{at})\s+{hour}(?:\s*(?:h|horas?|hrs?|o\s?clock))?"
                    rf"(?:\s+(?:y|e|and)\s+(\d{{1,2}}))?(?:\s+(\d{{2}}))?{ampm}?"
                ),
            ),
            ("hour_ampm", re.compile(rf"\b{hour}(?:\s+(\d{{2}}))?\s*(a\s?m|p\s?m)\b")),
            ("hour_h", re.compile(r"\b(\d{1,2})\s*h(?:oras?)?\b")),
            ("noon", re.compile(rf"\b(?:{lx.alternation('noon')})\b")),
        ]

    def _num(self, token: str) -> int | None:
        return int(token) if token.isdigit() else self._small.get(token)

    def find(self, text: str) -> FoundTime | None:
        """Return the time of day the text names, or None ("más tarde" names none)."""
        period_key, period_span = None, None
        for key, pattern in self._period_res:
            pm = pattern.search(text)
            if pm:
                period_key, period_span = key, pm.span()
                break
        today = bool(period_key and self._period_today[period_key])
        for name, pattern in self._rules:
            m = pattern.search(text)
            if not m:
                continue
            value = self._resolve(name, m, period_key)
            if value is not None:
                spans = (m.span(), period_span) if period_span else (m.span(),)
                return FoundTime(value, f"time.{name}", spans, today)
        if period_key is not None and period_span is not None:
            hour = self._period_hour[period_key]
            return FoundTime(time(hour, 0), f"time.period.{period_key}", (period_span,), today)
        return None

    def _resolve(self, name: str, m: re.Match[str], period: str | None) -> time | None:
        g = m.groups()
        if name == "noon":
            return time(12, 0)
        if name == "clock":
            hour, minute, ampm = int(g[0]), int(g[1]), g[2]
            explicit = hour > 12 or hour == 0
        elif name == "at_hour":
            hour_n = self._num(g[0])
            if hour_n is None:
                return None
            hour, minute, ampm = hour_n, int(g[1] or g[2] or 0), g[3]
            explicit = False
        elif name == "hour_ampm":
            hour_n = self._num(g[0])
            if hour_n is None:
                return None
            hour, minute, ampm = hour_n, int(g[1] or 0), g[2]
            explicit = False
        else:  # hour_h: "14h", "10 horas"
            hour, minute, ampm = int(g[0]), 0, None
            explicit = hour > 12
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            return None
        if ampm:
            is_pm = ampm.replace(" ", "") == "pm"
            hour = hour % 12 + (12 if is_pm else 0)
        elif not explicit:
            hour = self._apply_period(hour, period)
        return time(hour, minute)

    def _apply_period(self, hour: int, period: str | None) -> int:
        if period is None:
            return business_hour(hour)
        period_hour = self._period_hour[period]
        if period_hour >= 12 and hour < 12:
            return hour + 12
        return hour


def _alt(items: list[str]) -> str:
    from voiceagent.nlu.lexicon import fold

    folded = sorted({fold(i) for i in items}, key=len, reverse=True)
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in folded) or "(?!)"
