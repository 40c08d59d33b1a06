"""Spoken forms of money, dates and times, as the debtor will hear them."""

from __future__ import annotations

from datetime import date, time
from decimal import ROUND_HALF_UP, Decimal

from babel.dates import format_date
from babel.numbers import get_currency_name, get_currency_precision
from num2words import num2words

_NUM2WORDS = {"es": "es", "pt": "pt_BR", "en": "en"}
_BABEL = {"es": "es", "pt": "pt_BR", "en": "en_US"}
# Everyday unit names (singular, plural, minor singular, minor plural) where babel's are formal
# ("pesos colombianos"); other currencies fall back to babel.
_UNITS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "es": {
        "COP": ("peso", "pesos", "centavo", "centavos"),
        "MXN": ("peso", "pesos", "centavo", "centavos"),
        "CLP": ("peso", "pesos", "centavo", "centavos"),
        "ARS": ("peso", "pesos", "centavo", "centavos"),
        "PEN": ("sol", "soles", "céntimo", "céntimos"),
        "USD": ("dólar", "dólares", "centavo", "centavos"),
    },
    "pt": {
        "BRL": ("real", "reais", "centavo", "centavos"),
        "USD": ("dólar", "dólares", "centavo", "centavos"),
    },
    "en": {
        "USD": ("dollar", "dollars", "cent", "cents"),
        "MXN": ("peso", "pesos", "centavo", "centavos"),
    },
}
_AND = {"es": "con", "pt": "e", "en": "and"}


def _cardinal(n: int, lang: str, before_noun: bool) -> str:
    words = str(num2words(n, lang=_NUM2WORDS[lang]))
    if lang == "es" and before_noun:
        # Apocope before a masculine noun: "veintiún pesos", "treinta y un pesos", "un peso".
        if words.endswith("veintiuno"):
            words = words[: -len("veintiuno")] + "veintiún"
        elif words == "uno" or words.endswith(" uno"):
            words = words[:-1]
    return words


def _of(n: int, lang: str) -> str:
    """Spanish and Portuguese say "un millón de pesos", "dois milhões de reais"."""
    return " de" if lang in ("es", "pt") and n >= 1_000_000 and n % 1_000_000 == 0 else ""


def money(amount: Decimal, currency: str, lang: str) -> str:
    """Say an amount: 1500000 COP in es -> "un millón quinientos mil pesos"."""
    precision = get_currency_precision(currency)
    quantum = Decimal(1).scaleb(-precision)
    value = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    major = int(value)
    minor = int((value - major) * (10**precision)) if precision else 0
    units = _UNITS.get(lang, {}).get(currency)
    if units is None:
        name = get_currency_name(currency, count=2, locale=_BABEL[lang])
        units = (name, name, "", "")
    major_words = (
        f"{_cardinal(major, lang, True)}{_of(major, lang)} {units[0 if major == 1 else 1]}"
    )
    if minor and units[2]:
        minor_words = f"{_cardinal(minor, lang, True)} {units[2 if minor == 1 else 3]}"
        return f"{major_words} {_AND[lang]} {minor_words}"
    return major_words


def spoken_date(day: date, lang: str) -> str:
    """Say a date with its weekday: "viernes 20 de noviembre", "Friday, November 20"."""
    pattern = {"es": "EEEE d 'de' MMMM", "pt": "EEEE, d 'de' MMMM", "en": "EEEE, MMMM d"}[lang]
    return str(format_date(day, pattern, locale=_BABEL[lang]))


def spoken_time(t: time, lang: str) -> str:
    """Say a time of day: "las tres y media de la tarde", "quinze horas", "3:30 PM"."""
    if lang == "es":
        period = "de la mañana" if t.hour < 12 else "de la tarde" if t.hour < 19 else "de la noche"
        hour12 = t.hour % 12 or 12
        hour_words = "la una" if hour12 == 1 else f"las {num2words(hour12, lang='es')}"
        minute_words = {0: "", 15: " y cuarto", 30: " y media"}.get(
            t.minute, f" y {num2words(t.minute, lang='es')}"
        )
        return f"{hour_words}{minute_words} {period}"
    if lang == "pt":
        hours = "uma" if t.hour == 1 else "duas" if t.hour == 2 else num2words(t.hour, lang="pt_BR")
        noun = "hora" if t.hour == 1 else "horas"
        minutes = f" e {num2words(t.minute, lang='pt_BR')}" if t.minute else ""
        return f"{hours} {noun}{minutes}"
    hour12 = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour12}:{t.minute:02d} {suffix}" if t.minute else f"{hour12} {suffix}"
