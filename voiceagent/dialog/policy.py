"""Offer rules: which promises the agent may accept, and what it counters with otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision

from voiceagent.dialog.account import Account
from voiceagent.dialog.model import Installments, Offers


@dataclass(frozen=True, slots=True)
class Terms:
    """The concrete offer for one account on one day (amounts in the account's currency)."""

    owed: Decimal
    full_deadline: date
    installments_max: int
    installment_min: Decimal
    installment_deadline: date
    settlement_amount: Decimal | None
    settlement_deadline: date | None
    discount_percent: Decimal | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The policy's answer to a proposed promise."""

    ok: bool
    reason: str
    """``accepted``, ``past_date``, ``date_too_late`` or ``amount_too_low``."""
    counter_date: date | None = None
    counter_amount: Decimal | None = None
    plan: str = ""
    """``full``, ``settlement`` or ``installment`` once accepted."""


def _round_up(amount: Decimal, currency: str) -> Decimal:
    quantum = Decimal(1).scaleb(-get_currency_precision(currency))
    return amount.quantize(quantum, rounding=ROUND_CEILING)


def _installment_terms(
    rule: Installments | None, account: Account, today: date
) -> tuple[int, Decimal, date]:
    if rule is None:
        return 1, account.amount_owed, today
    per_part = _round_up(account.amount_owed / rule.max_count, account.currency)
    minimum = min(max(rule.min_amount, per_part), account.amount_owed)
    return rule.max_count, minimum, today + timedelta(days=rule.first_within_days)


def terms_for(offers: Offers, account: Account, today: date, hardship: bool = False) -> Terms:
    """Compute today's terms for an account (hardship terms once the debtor cannot pay)."""
    rule = offers.hardship if hardship and offers.hardship else offers.installments
    count, minimum, deadline = _installment_terms(rule, account, today)
    settlement = settlement_deadline = percent = None
    disc = offers.discount
    if disc is not None and account.days_past_due >= disc.min_days_past_due:
        factor = (Decimal(100) - disc.percent) / Decimal(100)
        quantum = Decimal(1).scaleb(-get_currency_precision(account.currency))
        settlement = (account.amount_owed * factor).quantize(quantum, rounding=ROUND_HALF_UP)
        settlement_deadline = today + timedelta(days=disc.within_days)
        percent = disc.percent
    return Terms(
        owed=account.amount_owed,
        full_deadline=today + timedelta(days=offers.pay_in_full.within_days),
        installments_max=count,
        installment_min=minimum,
        installment_deadline=deadline,
        settlement_amount=settlement,
        settlement_deadline=settlement_deadline,
        discount_percent=percent,
    )


def judge(terms: Terms, amount: Decimal, when: date, today: date, plan: str = "any") -> Verdict:
    """Accept a promise inside the terms, or say what to counter with.

    A full payment (or an accepted settlement) may come as late as its own deadline; a
    partial payment is a first instalment: at least the minimum, by the instalment deadline.
    """
    if when < today:
        return Verdict(False, "past_date")
    amount = min(amount, terms.owed)
    if plan in ("any", "full") and amount >= terms.owed:
        if when <= terms.full_deadline:
            return Verdict(True, "accepted", plan="full")
        return Verdict(False, "date_too_late", counter_date=terms.full_deadline)
    settles = terms.settlement_amount is not None and amount >= terms.settlement_amount
    if plan in ("any", "settlement") and settles and terms.settlement_deadline is not None:
        if when <= terms.settlement_deadline:
            return Verdict(True, "accepted", plan="settlement")
        return Verdict(False, "date_too_late", counter_date=terms.settlement_deadline)
    if plan == "full":
        return Verdict(False, "amount_too_low", counter_amount=terms.owed)
    if plan == "settlement" and terms.settlement_amount is not None:
        return Verdict(False, "amount_too_low", counter_amount=terms.settlement_amount)
    if amount < terms.installment_min:
        return Verdict(False, "amount_too_low", counter_amount=terms.installment_min)
    if when > terms.installment_deadline:
        return Verdict(False, "date_too_late", counter_date=terms.installment_deadline)
    return Verdict(True, "accepted", plan="installment")
