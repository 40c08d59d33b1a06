"""Find the amount of money a debtor offers ("mil quinientos", "$1.500,50", "la mitad")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from voiceagent.nlu.lexicon import Lexicon

_SURELY_MONEY = 100


@dataclass(frozen=True, slots=True)
class FoundAmount:
    """An amount, the rule that found it and its span in the normalized text."""

    value: Decimal
    rule: str
    span: tuple[int, int]


class AmountResolver:
    """Finds money amounts in normalized text; days, hours and counts are not amounts."""

    def __init__(self, lexicon: Lexicon) -> None:
        lx = lexicon
        self._decimal_comma = lx.words.get("decimal_separator", ",") == ","
        if self._decimal_comma:
            number = r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?|\d+,\d{1,2}|\d+"
        else:
            number = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+\.\d{1,2}|\d+"
        small = lx.alternation("small_numbers")
        self._small = lx.word_map("small_numbers")
        self._multipliers = lx.word_map("multipliers")
        self._money = re.compile(
            rf"(?P<sym>us\$|r\$|\$)?\s?(?P<num>{number}|{small})"
            rf"(?:\s+(?P<mult>{lx.alternation('multipliers')}))?"
            rf"(?:\s+(?:de\s+)?(?P<cur>{lx.alternation('currency_words')}))?\b"
        )
        self._pay_context = re.compile(rf"\b(?:{lx.alternation('pay_words')})\b")
        self._count_after = re.compile(rf"^\s*(?:{lx.alternation('count_words')})\b")
        self._half = re.compile(rf"\b(?:{lx.alternation('half')})\b")
        self._total = re.compile(rf"\b(?:{lx.alternation('total')})\b")
        self._filler = re.compile(rf"\b(?:{lx.alternation('fillers')})\b")
        self._negated = re.compile(rf"\b(?:{lx.alternation('amount_negators')})\s*$")

    def _to_decimal(self, num: str) -> Decimal | None:
        if num in self._small:
            return Decimal(self._small[num])
        if self._decimal_comma:
            num = num.replace(".", "").replace(",", ".")
        else:
            num = num.replace(",", "")
        try:
            return Decimal(num)
        except InvalidOperation:
            return None

    def _is_bare(self, text: str, span: tuple[int, int]) -> bool:
        rest = (text[: span[0]] + " " + text[span[1] :]).strip()
        return not self._filler.sub(" ", rest).strip()

    def find(
        self, text: str, owed: Decimal | None, taken: list[tuple[int, int]]
    ) -> FoundAmount | None:
        """Return the amount offered, or None; ``taken`` spans (dates, times) are skipped."""
        has_pay_context = bool(self._pay_context.search(text))
        for m in self._money.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            value = self._to_decimal(m.group("num"))
            if value is None or value <= 0:
                continue
            marked = bool(m.group("sym") or m.group("cur") or m.group("mult"))
            if m.group("mult"):
                value *= self._multipliers[m.group("mult")]
            if self._count_after.match(text[m.end() :]):
                continue
            is_small_word = m.group("num") in self._small
            if is_small_word and self._negated.search(text[: m.start()]):
                continue  # "ni un peso", "nem um real": no money at all
            # Days, hours and counts were taken out before; another number of 100 or more
            # in a collections call is money even without a currency word.
            contextual = has_pay_context or value >= _SURELY_MONEY or self._is_bare(text, m.span())
            if marked or (not is_small_word and contextual):
                return FoundAmount(value=value, rule="amount.number", span=m.span())
        if owed is not None:
            half = self._half.search(text)
            if half:
                return FoundAmount(value=owed / 2, rule="amount.half_of_owed", span=half.span())
            total = self._total.search(text)
            if total and (has_pay_context or self._is_bare(text, total.span())):
                return FoundAmount(value=owed, rule="amount.all_owed", span=total.span())
        return None
