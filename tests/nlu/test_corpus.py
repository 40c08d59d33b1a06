"""Intent and slot accuracy on written-for-the-test utterances, per language.

corpus/  : 114-128 utterances per language the rules were developed against.
holdout/ : 45 utterances per language by another author, never used to tune the rules;
           its accuracy is the honest estimate of how the NLU does on new phrasings.
Figures are printed at the end of the test run (see conftest.pytest_terminal_summary).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from voiceagent.nlu import INTENTS, understand

HERE = Path(__file__).resolve().parent
LOCALES = ("es-419", "pt-BR", "en-US")
ACCURACY: dict[str, dict[str, float]] = {}
# Floors, not targets: a change that makes understanding worse fails the build.
FLOORS = {"corpus": (0.97, 0.95), "holdout": (0.78, 0.78)}


def _load(kind: str, locale: str) -> dict[str, Any]:
    return YAML(typ="safe").load((HERE / kind / f"{locale}.yaml").read_text(encoding="utf-8"))


def _expected(u: dict[str, Any]) -> dict[str, Any]:
    amount = u.get("amount")
    return {
        "date": u.get("date"),
        "amount": Decimal(str(amount)) if amount is not None else None,
        "time": u.get("time"),
    }


def _got(slots: dict[str, Any]) -> dict[str, Any]:
    amount = slots["amount"]
    return {**slots, "amount": Decimal(str(amount)) if amount is not None else None}


@pytest.mark.parametrize("kind", ["corpus", "holdout"])
@pytest.mark.parametrize("locale", LOCALES)
def test_accuracy(kind: str, locale: str) -> None:
    data = _load(kind, locale)
    today = date.fromisoformat(data["today"])
    owed = Decimal(str(data["owed"]))
    utterances = data["utterances"]
    intent_ok = all_ok = 0
    misses = []
    for u in utterances:
        assert u["intent"] in INTENTS, u
        result = understand(u["text"], locale, today, owed)
        got = _got(result.slots_json())
        ok_intent = result.intent == u["intent"]
        ok_all = ok_intent and got == _expected(u)
        intent_ok += ok_intent
        all_ok += ok_all
        if not ok_all:
            misses.append(
                f"{u['text']!r}: want {u['intent']} {_expected(u)}, got {result.intent} {got}"
            )
    n = len(utterances)
    ACCURACY[f"{kind} {locale}"] = {"n": n, "intent": intent_ok / n, "slots": all_ok / n}
    intent_floor, slots_floor = FLOORS[kind]
    assert intent_ok / n >= intent_floor, "\n".join(misses)
    assert all_ok / n >= slots_floor, "\n".join(misses)


def test_corpus_size_and_coverage() -> None:
    for locale in LOCALES:
        utterances = _load("corpus", locale)["utterances"]
        assert len(utterances) >= 60
        counts = {i: sum(u["intent"] == i for u in utterances) for i in INTENTS}
        assert all(c >= 3 for c in counts.values()), counts
