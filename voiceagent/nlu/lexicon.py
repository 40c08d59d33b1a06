"""Per-language word lists and intent patterns, loaded from ``lexicon/<lang>.yaml``."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

INTENTS: tuple[str, ...] = (
    "affirm",
    "deny",
    "promise_to_pay",
    "already_paid",
    "wrong_person",
    "callback_request",
    "request_human",
    "complaint",
    "cannot_pay",
    "stop_contact",
    "ask_amount",
    "ask_who",
    "repeat",
    "unknown",
)
"""Every intent the NLU can return."""

LANGUAGES: dict[str, str] = {"es": "es", "pt": "pt", "en": "en"}
"""NLU language per primary language subtag (``es-419`` -> ``es``)."""


def language_of(locale: str) -> str:
    """Map a locale such as ``es-419``, ``pt-BR`` or ``en_US`` to an NLU language code."""
    primary = locale.replace("_", "-").split("-")[0].lower()
    if primary not in LANGUAGES:
        raise ValueError(f"unsupported language {locale!r}; supported: es-*, pt-*, en-*")
    return LANGUAGES[primary]


def fold(text: str) -> str:
    """Lower-case and strip accents ("Mañana" -> "manana"), keeping digits and punctuation."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Rule:
    """One intent pattern: matched with ``re.search`` on folded, number-normalized text."""

    intent: str
    rule_id: str
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Everything language-specific the NLU needs."""

    lang: str
    rules: tuple[Rule, ...]
    """Intent rules in priority order (the first intent listed in ``priority`` wins)."""
    pre_replace: tuple[tuple[re.Pattern[str], str], ...]
    """Rewrites applied before numbers in words become digits (protect "y cuarto", weekdays)."""
    words: dict[str, Any]
    """Date, time and amount vocabulary (see the YAML files)."""

    def word_list(self, key: str) -> list[str]:
        """Return a folded word list by key (empty when the language has none)."""
        value = self.words.get(key, [])
        return [fold(str(v)) for v in value]

    def word_map(self, key: str) -> dict[str, int]:
        """Return a folded ``word -> number`` map by key."""
        value = self.words.get(key, {})
        return {fold(str(k)): int(v) for k, v in value.items()}

    def alternation(self, key: str) -> str:
        """Return a regex alternation of a word list or map, longest first."""
        value = self.words.get(key, [])
        items = list(value.keys()) if isinstance(value, dict) else list(value)
        folded = sorted({fold(str(v)) for v in items}, key=len, reverse=True)
        return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in folded) or "(?!)"


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)  # YAML 1.2: "no", "yes", "on" stay strings
    return yaml


@lru_cache(maxsize=8)
def load_lexicon(lang: str) -> Lexicon:
    """Load and compile the lexicon of one NLU language (cached per process)."""
    text = resources.files("voiceagent.nlu").joinpath(f"lexicon/{lang}.yaml").read_text("utf-8")
    data = _yaml().load(text)
    priority: list[str] = data["priority"]
    unknown = set(priority) - set(INTENTS)
    if unknown:
        raise ValueError(f"lexicon {lang}: unknown intents in priority: {sorted(unknown)}")
    rules: list[Rule] = []
    for intent in priority:
        for n, pattern in enumerate(data["intents"].get(intent, []), start=1):
            compiled = re.compile(fold(str(pattern)))
            rules.append(Rule(intent=intent, rule_id=f"{lang}.{intent}.{n}", pattern=compiled))
    pre = tuple(
        (re.compile(fold(str(src))), fold(str(dst)))
        for src, dst in (data.get("pre_replace") or {}).items()
    )
    return Lexicon(lang=lang, rules=tuple(rules), pre_replace=pre, words=data.get("words", {}))
