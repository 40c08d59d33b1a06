"""Offer rules: what is accepted, and what is countered instead."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from voiceagent.dialog.account import Account
from voiceagent.dialog.model import Discount, Installments, Offers, PayInFull
from voiceagent.dialog.policy import judge, terms_for

TODAY = date(2026, 11, 18)
OFFERS = Offers(
    pay_in_full=PayInFull(within_days=7),
    installments=Installments(max_count=3, min_amount=Decimal(50000), first_within_days=10),
    discount=Discount(min_days_past_due=90, percent=Decimal(20), within_days=15),
    hardship=Installments(max_count=6, min_amount=Decimal(30000), first_within_days=15),
)


def account(dpd: int = 12, owed: str = "1200000") -> Account:
    return Account(
        name="Ana Díaz",
        document_last4="1234",
        birth_year=1990,
        amount_owed=Decimal(owed),
        currency="COP",
        days_past_due=dpd,
        creditor="Banco",
        portfolio="p",
        phone="+573001112233",
    )


def test_terms() -> None:
    t = terms_for(OFFERS, account(), TODAY)
    assert t.full_deadline == date(2026, 11, 25)
    assert t.installment_min == Decimal(400000)  # max(50.000, 1.200.000 / 3)
    assert t.installment_deadline == date(2026, 11, 28)
    assert t.settlement_amount is None  # only from 90 days past due
    h = terms_for(OFFERS, account(), TODAY, hardship=True)
    assert (h.installments_max, h.installment_min) == (6, Decimal(200000))


def test_settlement_from_90_days() -> None:
    t = terms_for(OFFERS, account(dpd=95), TODAY)
    assert t.settlement_amount == Decimal(960000)
    assert judge(t, Decimal(960000), date(2026, 12, 3), TODAY).plan == "settlement"
    late = judge(t, Decimal(960000), date(2026, 12, 4), TODAY)
    assert (late.ok, late.counter_date) == (False, date(2026, 12, 3))


def test_judge_accepts_inside_policy_and_counters_outside() -> None:
    t = terms_for(OFFERS, account(), TODAY)
    assert judge(t, Decimal(1200000), date(2026, 11, 25), TODAY).plan == "full"
    assert judge(t, Decimal(400000), date(2026, 11, 28), TODAY).plan == "installment"
    too_late = judge(t, Decimal(1200000), date(2026, 12, 15), TODAY)
    assert (too_late.ok, too_late.reason, too_late.counter_date) == (
        False,
        "date_too_late",
        date(2026, 11, 25),
    )
    too_low = judge(t, Decimal(100000), date(2026, 11, 20), TODAY)
    assert (too_low.reason, too_low.counter_amount) == ("amount_too_low", Decimal(400000))
    assert judge(t, Decimal(400000), date(2026, 11, 17), TODAY).reason == "past_date"
    # A plan fixed to full payment counters any partial amount with the balance.
    assert judge(
        t, Decimal(400000), date(2026, 11, 20), TODAY, plan="full"
    ).counter_amount == Decimal(1200000)


def test_minimum_never_exceeds_the_balance() -> None:
    t = terms_for(OFFERS, account(owed="30000"), TODAY)
    assert t.installment_min == Decimal(30000)
