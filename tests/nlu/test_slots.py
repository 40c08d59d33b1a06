"""The slot examples the product promises, one by one (today = Wednesday 2026-11-18)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from voiceagent.nlu import understand

TODAY = date(2026, 11, 18)


@pytest.mark.parametrize(
    ("locale", "text", "expected"),
    [
        ("es-419", "el quince", "2026-12-15"),
        ("es-419", "el próximo viernes", "2026-11-20"),
        ("es-419", "a fin de mes", "2026-11-30"),
        ("es-419", "pasado mañana", "2026-11-20"),
        ("es-419", "el 18", "2026-11-18"),
        ("es-419", "el 5 del próximo mes", "2026-12-05"),
        ("es-419", "el diez de enero", "2027-01-10"),
        ("es-419", "en una semana", "2026-11-25"),
        ("es-419", "en quince días", "2026-12-02"),
        ("pt-BR", "dia quinze", "2026-12-15"),
        ("pt-BR", "sexta que vem", "2026-11-20"),
        ("pt-BR", "segunda-feira", "2026-11-23"),
        ("pt-BR", "depois de amanhã", "2026-11-20"),
        ("pt-BR", "final do mês", "2026-11-30"),
        ("en-US", "next Friday", "2026-11-20"),
        ("en-US", "on the 30th", "2026-11-30"),
        ("en-US", "December 3rd", "2026-12-03"),
        ("en-US", "the day after tomorrow", "2026-11-20"),
        ("en-US", "in two weeks", "2026-12-02"),
    ],
)
def test_dates(locale: str, text: str, expected: str) -> None:
    result = understand(text, locale, TODAY, Decimal(1000))
    assert result.slots_json()["date"] == expected, result.explain


@pytest.mark.parametrize(
    ("locale", "text", "owed", "expected"),
    [
        ("es-419", "mil quinientos", 5000, "1500"),
        ("es-419", "$1.500,50", 5000, "1500.50"),
        ("es-419", "1500 pesos", 5000, "1500"),
        ("es-419", "la mitad", 1200000, "600000"),
        ("es-419", "puedo dar 200 mil", 1200000, "200000"),
        ("es-419", "un millón y medio", 3000000, "1500000"),
        ("es-419", "dos palos", 3000000, "2000000"),
        ("pt-BR", "mil e quinhentos reais", 5000, "1500"),
        ("pt-BR", "R$ 1.200,50", 5000, "1200.50"),
        ("pt-BR", "a metade", 3000, "1500"),
        ("en-US", "fifteen hundred dollars", 5000, "1500"),
        ("en-US", "$1,050.50", 5000, "1050.50"),
        ("en-US", "half", 2400, "1200"),
    ],
)
def test_amounts(locale: str, text: str, owed: int, expected: str) -> None:
    result = understand(text, locale, TODAY, Decimal(owed))
    assert result.amount == Decimal(expected), result.explain


@pytest.mark.parametrize(
    ("locale", "text", "date_", "time_"),
    [
        ("es-419", "mañana a las tres de la tarde", "2026-11-19", "15:00"),
        ("es-419", "mañana en la mañana", "2026-11-19", "09:00"),
        ("es-419", "a las diez de la mañana", None, "10:00"),
        ("es-419", "el viernes a las 4 y media", "2026-11-20", "16:30"),
        ("pt-BR", "amanhã às dez da manhã", "2026-11-19", "10:00"),
        ("pt-BR", "hoje à noite", "2026-11-18", "19:00"),
        ("pt-BR", "às 14h30", None, "14:30"),
        ("en-US", "tomorrow at 5 pm", "2026-11-19", "17:00"),
        ("en-US", "call me back at noon", None, "12:00"),
    ],
)
def test_times(locale: str, text: str, date_: str | None, time_: str) -> None:
    slots = understand(text, locale, TODAY).slots_json()
    assert (slots["date"], slots["time"]) == (date_, time_)


def test_numbers_that_are_not_money() -> None:
    for locale, text in [
        ("es-419", "puedo pagar en tres cuotas"),
        ("es-419", "la verdad no tengo ni un peso"),
        ("pt-BR", "dá pra parcelar em 3 vezes?"),
        ("en-US", "can i pay it in 3 installments"),
    ]:
        assert understand(text, locale, TODAY).amount is None, text


def test_digits_for_identity_checks() -> None:
    assert understand("cuatro ocho dos uno", "es-419", TODAY).digits == "4821"
    assert understand("uno nueve ocho siete", "es-419", TODAY).digits == "1987"
    assert understand("mil novecientos ochenta y siete", "es-419", TODAY).digits == "1987"
    assert understand("nineteen eighty four", "en-US", TODAY).digits == "1984"
    assert understand("três nove zero sete", "pt-BR", TODAY).digits == "3907"


def test_explanations_name_the_rule() -> None:
    result = understand("no me vuelvan a llamar", "es-419", TODAY)
    assert result.intent == "stop_contact"
    assert result.explain["rule"].startswith("es.stop_contact.")
    assert result.explain["matched"]
    refined = understand("el viernes", "es-419", TODAY)
    assert refined.intent == "promise_to_pay" and "refined" in refined.explain
    assert refined.explain["slots"]["date"].startswith("date.weekday")


def test_same_input_same_output() -> None:
    a = understand("le pago 300 mil el viernes", "es-419", TODAY, Decimal(1000000))
    b = understand("le pago 300 mil el viernes", "es-419", TODAY, Decimal(1000000))
    assert a == b
