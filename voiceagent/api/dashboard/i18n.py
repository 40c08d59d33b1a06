"""UI text in Spanish, Portuguese and English, and locale-aware number formatting.

The language comes from ``?lang=``, else the ``voiceagent_lang`` cookie, else the first
supported ``Accept-Language`` entry, else Spanish.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request

LANGS = ("es", "pt", "en")
DEFAULT_LANG = "es"
LANG_COOKIE = "voiceagent_lang"
LOCALES_DIR = Path(__file__).parent / "locales"


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every UI string of a language (``key -> text``)."""
    data: dict[str, str] = json.loads((LOCALES_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def pick_lang(request: Request) -> str:
    """The language of a request: query, cookie, ``Accept-Language``, default."""
    asked = request.query_params.get("lang", "")
    if asked in LANGS:
        return asked
    cookie = request.cookies.get(LANG_COOKIE, "")
    if cookie in LANGS:
        return cookie
    for entry in request.headers.get("Accept-Language", "").split(","):
        tag = entry.split(";")[0].strip().lower()[:2]
        if tag in LANGS:
            return tag
    return DEFAULT_LANG


class Translator:
    """``t(key, **values)`` for one language (falls back to Spanish, then the key)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.strings = catalog(lang)

    def __call__(self, key: str, **values: Any) -> str:
        """The text of ``key`` with ``{name}`` placeholders filled."""
        text = self.strings.get(key) or catalog(DEFAULT_LANG).get(key) or key
        return text.format(**values) if values else text

    def js(self) -> dict[str, str]:
        """The strings the browser scripts use (keys starting with ``js.``)."""
        return {k[3:]: v for k, v in self.strings.items() if k.startswith("js.")}

    def number(self, value: float | int | None, digits: int = 0) -> str:
        """``1.234,5`` (es, pt) or ``1,234.5`` (en); ``—`` for none."""
        if value is None:
            return "—"
        text = f"{value:,.{digits}f}"
        if self.lang == "en":
            return text
        return text.replace(",", "\0").replace(".", ",").replace("\0", ".")

    def percent(self, ratio: float | None) -> str:
        """A ratio as a percentage with one decimal (``66,7 %``)."""
        return "—" if ratio is None else f"{self.number(ratio * 100, 1)} %"

    def money(self, minor_by_currency: dict[str, int]) -> str:
        """Amounts per currency (minor units), never summed across currencies."""
        if not minor_by_currency:
            return "—"
        parts = (f"{cur} {self.number(m / 100, 2)}" for cur, m in sorted(minor_by_currency.items()))
        return " · ".join(parts)
