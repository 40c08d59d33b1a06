"""Render prompt templates with the account, today's terms and the call's values."""

from __future__ import annotations

import string
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from voiceagent.dialog.account import Account
from voiceagent.dialog.model import Dialplan
from voiceagent.dialog.policy import Terms
from voiceagent.dialog.speech import money, spoken_date, spoken_time
from voiceagent.nlu.lexicon import language_of


class MissingAccountField(ValueError):
    """The account lacks a field the dialplan's prompts need (found before the call starts)."""


class PromptRenderer:
    """Fills ``{placeholders}`` with spoken forms (money and dates in words)."""

    def __init__(self, plan: Dialplan, account: Account, terms: Terms) -> None:
        self.plan = plan
        self.lang = language_of(plan.dialplan.locale)
        missing = [f for f in plan.account_fields if f not in account.extra_fields()]
        factors = {getattr(state, "factor", None) for state in plan.states.values()}
        if "birth_year" in factors and account.birth_year is None:
            missing.append("birth_year")
        if missing:
            raise MissingAccountField(
                f"account lacks {', '.join(missing)} required by dialplan {plan.dialplan.id}"
            )
        self._static = self._static_values(account, terms)

    def money(self, amount: Decimal) -> str:
        """An amount in words in the account's currency."""
        return money(amount, self._currency, self.lang)

    def date(self, day: date) -> str:
        """A date in words."""
        return spoken_date(day, self.lang)

    def when(self, at: datetime) -> str:
        """A date and time in words."""
        joiner = {"es": "a", "pt": "às", "en": "at"}[self.lang]
        return f"{spoken_date(at.date(), self.lang)} {joiner} {spoken_time(at.time(), self.lang)}"

    def time(self, at: time) -> str:
        """A time of day in words."""
        return spoken_time(at, self.lang)

    def _static_values(self, account: Account, terms: Terms) -> dict[str, str]:
        self._currency = account.currency
        values: dict[str, Any] = {k: str(v) for k, v in account.extra_fields().items()}
        values.update(
            name=account.name,
            first_name=account.first_name,
            creditor=account.creditor,
            agent_name=self.plan.dialplan.agent_name,
            currency=account.currency,
            phone=account.phone,
            portfolio=account.portfolio,
            amount_owed=self.money(account.amount_owed),
            days_past_due=str(account.days_past_due),
            due_date=self.date(account.due_date) if account.due_date else "",
        )
        values.update(self.terms_values(terms))
        return values

    def terms_values(self, terms: Terms) -> dict[str, str]:
        """Offer placeholders for a set of terms (they change once hardship applies)."""
        values = {
            "full_payment_deadline": self.date(terms.full_deadline),
            "installments_max": str(terms.installments_max),
            "installment_min": self.money(terms.installment_min),
            "installment_deadline": self.date(terms.installment_deadline),
            "hardship_installments_max": str(terms.installments_max),
            "hardship_installment_min": self.money(terms.installment_min),
            "hardship_deadline": self.date(terms.installment_deadline),
            "settlement_amount": "",
            "settlement_deadline": "",
            "discount_percent": "",
        }
        if terms.settlement_amount is not None and terms.settlement_deadline is not None:
            values["settlement_amount"] = self.money(terms.settlement_amount)
            values["settlement_deadline"] = self.date(terms.settlement_deadline)
            pct = terms.discount_percent or Decimal(0)
            values["discount_percent"] = f"{pct.normalize():f}"
        return values

    def render(self, prompt_id: str, terms: Terms | None = None, **dynamic: str) -> str:
        """Render one prompt; every placeholder was checked at load, so this cannot fail."""
        return "".join(text for text, _ in self.render_parts(prompt_id, terms, **dynamic))

    def render_parts(
        self, prompt_id: str, terms: Terms | None = None, **dynamic: str
    ) -> tuple[tuple[str, bool], ...]:
        """The rendered prompt as ``(text, variable)`` parts: template text, then values.

        The speech layer splices prerendered audio of the template text around the values.
        """
        values = dict(self._static)
        if terms is not None:
            values.update(self.terms_values(terms))
        values.update(dynamic)
        return template_parts(self.plan.prompt(prompt_id).text, values)

    def known_parts(
        self, terms: Terms | None = None, **dynamic: str
    ) -> list[tuple[tuple[str, bool], ...]]:
        """Every prompt whose placeholders are all known now, rendered as parts.

        With no arguments: the account's values and the base terms (known before the call's
        first word). With the call's current terms and values (a promise just captured): the
        prompts that may come next, to render while the debtor is still speaking.
        """
        values = dict(self._static)
        if terms is not None:
            values.update(self.terms_values(terms))
        values.update(dynamic)
        out = []
        for prompt_id in self.plan.prompts:
            template = self.plan.prompt(prompt_id).text
            if all(values.get(f) for f in template_fields(template)):
                out.append(template_parts(template, values))
        return out


def template_fields(template: str) -> list[str]:
    """The placeholder names of a ``str.format`` template, in order."""
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


def template_parts(template: str, values: dict[str, str]) -> tuple[tuple[str, bool], ...]:
    """Fill a template, keeping literal text and values apart; empty pieces are dropped."""
    parts: list[tuple[str, bool]] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if literal:
            parts.append((literal, False))
        if field is not None:
            value = format(values[field], spec or "")
            del conversion  # the loader allows plain {name} placeholders only
            if value:
                parts.append((value, True))
    return tuple(parts)
