"""Backchannels: the "ajá", "mhm", "tá", "uh-huh" a listener says without taking the turn."""

from __future__ import annotations

import re

from voiceagent.nlu.lexicon import fold, language_of

_WORDS = {
    "es": {
        "ah",
        "ahh",
        "aah",
        "eh",
        "oh",
        "aja",
        "ajam",
        "aha",
        "ujum",
        "uhum",
        "mhm",
        "mm",
        "mmm",
        "hm",
        "si",
        "sip",
        "ok",
        "okay",
        "okey",
        "ya",
        "claro",
        "vale",
        "bueno",
        "dale",
        "ajap",
        "exacto",
        "entiendo",
        "listo",
    },
    "pt": {
        "ah",
        "ahh",
        "eh",
        "oh",
        "uhum",
        "aham",
        "ahan",
        "hum",
        "hm",
        "mhm",
        "ta",
        "sim",
        "ok",
        "certo",
        "sei",
        "entendi",
        "beleza",
        "isso",
        "claro",
        "pois",
        "e",
    },
    "en": {
        "ah",
        "ahh",
        "oh",
        "mhm",
        "mm",
        "hmm",
        "uh",
        "huh",
        "uhhuh",
        "yeah",
        "yes",
        "yep",
        "ok",
        "okay",
        "right",
        "sure",
        "i",
        "see",
        "got",
        "it",
        "gotcha",
        "alright",
        "cool",
    },
}
_TOKEN = re.compile(r"[a-z]+")
_MAX_WORDS = 4


def is_backchannel(text: str, locale: str) -> bool:
    """True for a short acknowledgement that should not take the turn from the agent."""
    words = _TOKEN.findall(fold(text).replace("-", ""))
    if not words or len(words) > _MAX_WORDS:
        return False
    vocabulary = _WORDS[language_of(locale)]
    return all(w in vocabulary for w in words)
