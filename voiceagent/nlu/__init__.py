"""Deterministic, explainable understanding of debtor utterances in es, pt and en."""

from voiceagent.nlu.lexicon import INTENTS, language_of
from voiceagent.nlu.understand import Understander, Understanding, understand, understander_for

__all__ = [
    "INTENTS",
    "Understander",
    "Understanding",
    "language_of",
    "understand",
    "understander_for",
]
