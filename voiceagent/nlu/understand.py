"""The NLU entry point: utterance text -> intent, slots and an explanation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

from text_to_num import alpha2digit

from voiceagent.nlu.amounts import AmountResolver
from voiceagent.nlu.dates import DateResolver, weekday_replacements
from voiceagent.nlu.lexicon import Lexicon, language_of, load_lexicon
from voiceagent.nlu.normalize import normalize
from voiceagent.nlu.times import TimeResolver

_DIGITS = re.compile(r"\d+")
# A winning generic intent is refined by the slots it carries: "sí, el viernes" answers
# "when can you pay?", "a las cuatro" answers "when shall we call?".
_REFINABLE = ("affirm", "unknown")


@dataclass(frozen=True, slots=True)
class Understanding:
    """What an utterance means: intent, slots, and which rules decided it."""

    intent: str
    date: date | None = None
    amount: Decimal | None = None
    time: time | None = None
    digits: str = ""
    """Every digit said, joined ("uno nueve ocho cinco" -> "1985"), for identity checks."""
    normalized: str = ""
    explain: dict[str, Any] = field(default_factory=dict)

    def slots_json(self) -> dict[str, Any]:
        """Slots as JSON-ready values (ISO date, number, HH:MM)."""
        amount: int | float | None = None
        if self.amount is not None:
            amount = (
                int(self.amount) if self.amount == self.amount.to_integral() else float(self.amount)
            )
        return {
            "date": self.date.isoformat() if self.date else None,
            "amount": amount,
            "time": self.time.strftime("%H:%M") if self.time else None,
        }

    def to_json(self) -> dict[str, Any]:
        """The ``voiceagent understand`` output object."""
        return {"intent": self.intent, "slots": self.slots_json(), "explain": self.explain}


class Understander:
    """Deterministic rule-based NLU for one language; build once, call per utterance."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._dates = DateResolver(lexicon)
        self._times = TimeResolver(lexicon)
        self._amounts = AmountResolver(lexicon)
        self._weekdays = weekday_replacements(lexicon.lang)

    def _prepare(self, text: str) -> str:
        return normalize(text, self.lexicon, protect=self._weekdays)

    def digits(self, text: str) -> str:
        """Every digit in the utterance, in order ("cuatro cinco seis siete" -> "4567")."""
        t = normalize(text, self.lexicon)
        t = alpha2digit(t, self.lexicon.lang, threshold=0)
        return "".join(_DIGITS.findall(t))

    def understand(self, text: str, today: date, owed: Decimal | None = None) -> Understanding:
        """Classify one utterance and extract its date, amount and time."""
        norm = self._prepare(text)
        explain: dict[str, Any] = {"normalized": norm}
        intent, rule_explain = self._classify(norm)
        explain.update(rule_explain)
        found_time = self._times.find(norm)
        taken: list[tuple[int, int]] = []
        slot_explain: dict[str, str] = {}
        if found_time:
            taken.extend(found_time.spans)
            said = " + ".join(repr(norm[slice(*span)]) for span in found_time.spans)
            slot_explain["time"] = f"{found_time.rule}: {said}"
        found_date = self._dates.find(_blank(norm, taken), today)
        the_date = found_date.value if found_date else None
        if found_date:
            taken.append(found_date.span)
            slot_explain["date"] = f"{found_date.rule}: {norm[slice(*found_date.span)]!r}"
        elif found_time and found_time.today:
            the_date = today
            slot_explain["date"] = f"{found_time.rule}: implies today"
        found_amount = self._amounts.find(_blank(norm, taken), owed, taken)
        if found_amount:
            slot_explain["amount"] = f"{found_amount.rule}: {norm[slice(*found_amount.span)]!r}"
        if intent in _REFINABLE and (found_date or found_amount or found_time):
            refined = "callback_request" if found_time else "promise_to_pay"
            explain["refined"] = f"{intent} -> {refined}: the utterance answers with a slot"
            intent = refined
        explain["slots"] = slot_explain
        return Understanding(
            intent=intent,
            date=the_date,
            amount=found_amount.value if found_amount else None,
            time=found_time.value if found_time else None,
            digits=self.digits(text),
            normalized=norm,
            explain=explain,
        )

    def _classify(self, norm: str) -> tuple[str, dict[str, Any]]:
        for rule in self.lexicon.rules:
            m = rule.pattern.search(norm)
            if m:
                return rule.intent, {
                    "rule": rule.rule_id,
                    "pattern": rule.pattern.pattern,
                    "matched": m.group(0),
                }
        return "unknown", {"rule": None}


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace spans with spaces so later rules neither see them nor shift offsets."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


@lru_cache(maxsize=8)
def understander_for(locale: str) -> Understander:
    """The shared Understander of a locale's language (built once per process)."""
    return Understander(load_lexicon(language_of(locale)))


def understand(text: str, locale: str, today: date, owed: Decimal | None = None) -> Understanding:
    """Understand one utterance in the given locale (``es-419``, ``pt-BR``, ``en-US``)."""
    return understander_for(locale).understand(text, today, owed)
