"""Recognizer grammars per dialog state, generated from the dialplan and the language.

A grammar restricts Vosk to the words a debtor can be expected to say in a state (RTF ~0.03
instead of ~0.3 free-form): the language's conversational core (yes/no, objections, requests),
plus digits in identity checks, dates and amounts while a promise or callback is negotiated,
and the option phrases of a choice. A grammar always "hears" something, so a low-confidence
result is decoded again free-form (see the call session).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from babel.dates import get_day_names, get_month_names
from num2words import num2words

from voiceagent.dialog.model import (
    CallbackState,
    ChoiceState,
    Dialplan,
    PromiseState,
    VerifyState,
)
from voiceagent.nlu.lexicon import language_of, load_lexicon

_NUM2WORDS = {"es": "es", "pt": "pt_BR", "en": "en"}
_BABEL = {"es": "es", "pt": "pt_BR", "en": "en_US"}
UNKNOWN = "[unk]"


def _words(text: str) -> set[str]:
    return {w for w in text.lower().replace("-", " ").replace(",", " ").split() if w}


@lru_cache(maxsize=8)
def _core(lang: str) -> frozenset[str]:
    words: set[str] = set()
    for phrase in load_lexicon(lang).words.get("grammar", []):
        words |= _words(str(phrase))
    return frozenset(words)


@lru_cache(maxsize=8)
def _digits(lang: str) -> frozenset[str]:
    words: set[str] = set()
    for n in [*range(0, 100), *range(100, 1000, 100), 1000, 2000]:
        words |= _words(num2words(n, lang=_NUM2WORDS[lang]))
    return frozenset(words)


@lru_cache(maxsize=8)
def _dates_and_amounts(lang: str) -> frozenset[str]:
    words = set(_digits(lang))
    for n in (1_000_000, 2_000_000):
        words |= _words(num2words(n, lang=_NUM2WORDS[lang]))
    for name in get_day_names("wide", locale=_BABEL[lang]).values():
        words |= _words(str(name))
    for name in get_month_names("wide", locale=_BABEL[lang]).values():
        words |= _words(str(name))
    lexicon = load_lexicon(lang)
    for key in (
        "relative_days",
        "next_week",
        "next_month",
        "end_of_month",
        "currency_words",
        "half",
    ):
        value = lexicon.words.get(key, [])
        for phrase in value.keys() if isinstance(value, dict) else value:
            words |= _words(str(phrase))
    return frozenset(words)


def grammar_for(plan: Dialplan, state_name: str) -> list[str]:
    """The phrases a recognizer should listen for in ``state_name`` (sorted, with [unk])."""
    lang = language_of(plan.dialplan.locale)
    state = plan.states[state_name]
    words = set(_core(lang))
    if isinstance(state, VerifyState):
        words |= _digits(lang)
    if isinstance(state, PromiseState | CallbackState):
        words |= _dates_and_amounts(lang)
    if isinstance(state, ChoiceState):
        for phrases in state.options.values():
            for phrase in phrases:
                words |= _words(phrase)
    return sorted(words) + [UNKNOWN]


def grammar_report(
    plan: Dialplan, missing: Callable[[list[str]], list[str]]
) -> dict[str, list[str]]:
    """Per state, the grammar words a recognizer's vocabulary lacks (check at dialplan load).

    ``missing`` is the recognizer's own check, e.g. ``VoskRecognizer.missing_words``.
    """
    report: dict[str, list[str]] = {}
    for name in plan.states:
        absent = missing([w for w in grammar_for(plan, name) if w != UNKNOWN])
        if absent:
            report[name] = sorted(absent)
    return report
