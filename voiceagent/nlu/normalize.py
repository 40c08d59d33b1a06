"""Text normalization: lower-case, accents folded, numbers in words turned into digits."""

from __future__ import annotations

import re
from functools import lru_cache

from num2words import num2words
from text_to_num import alpha2digit

from voiceagent.nlu.lexicon import Lexicon, fold

_NUM2WORDS_LANG = {"es": "es", "pt": "pt_BR", "en": "en"}
_PUNCT = re.compile(r"[¿?¡!\"“”«»()\[\];…]+")
_COMMA_NOT_IN_NUMBER = re.compile(r"(?<!\d),|,(?!\d)")
_PERIOD_NOT_IN_NUMBER = re.compile(r"(?<!\d)\.|\.(?!\d)")
_SPACES = re.compile(r"\s+")
_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")
_WORD = re.compile(r"[a-z]+")
# "200 mil" reaches text2num as digits + word and comes out as "200 1000": multiply it back.
_DIGITS_TIMES_POWER = re.compile(r"\b(\d{1,3}(?:[.,]\d{1,2})?) (1000|1000000)\b")


def _merge_multipliers(text: str, decimal_comma: bool) -> str:
    def product(m: re.Match[str]) -> str:
        left = m.group(1).replace(",", ".") if decimal_comma else m.group(1).replace(",", "")
        value = float(left) * int(m.group(2))
        return str(int(value)) if value == int(value) else str(value)

    return _DIGITS_TIMES_POWER.sub(product, text)


@lru_cache(maxsize=8)
def _accented_number_words(lang: str) -> dict[str, str]:
    """Map folded spellings of number words back to their accented form.

    text2num only knows the accented spelling ("veintidós", "milhão"), while recognizers
    and people typing often drop accents. The map is derived from num2words, not typed by hand.
    """
    mapping: dict[str, str] = {}
    samples = [*range(0, 1000), 1_000_000, 2_000_000]
    for n in samples:
        for word in num2words(n, lang=_NUM2WORDS_LANG[lang]).replace("-", " ").split():
            if fold(word) != word:
                mapping[fold(word)] = word
    return mapping


def _restore_number_accents(text: str, lang: str) -> str:
    accents = _accented_number_words(lang)
    return _WORD.sub(lambda m: accents.get(m.group(0), m.group(0)), text)


def normalize(
    text: str, lexicon: Lexicon, protect: tuple[tuple[re.Pattern[str], str], ...] = ()
) -> str:
    """Return folded text with numbers as digits, ready for the intent and slot rules.

    "Sí, le pago mil quinientos el QUINCE." -> "si le pago 1500 el 15". ``protect`` rewrites
    run before numbers are converted (text2num reads "sexta" as the ordinal "6ª").
    """
    t = _APOSTROPHE.sub("", text.lower())
    t = _PUNCT.sub(" ", t)
    t = _COMMA_NOT_IN_NUMBER.sub(" ", t)
    t = _PERIOD_NOT_IN_NUMBER.sub(" ", t)
    t = fold(t).replace("-", " ")
    t = _SPACES.sub(" ", t).strip()
    for pattern, replacement in (*lexicon.pre_replace, *protect):
        t = pattern.sub(replacement, t)
    t = _restore_number_accents(t, lexicon.lang)
    t = alpha2digit(t, lexicon.lang)
    t = _merge_multipliers(t, lexicon.words.get("decimal_separator", ",") == ",")
    return _SPACES.sub(" ", fold(t)).strip()
