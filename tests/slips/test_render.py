"""The slip's texts per language, its PDF, and the per-creditor instructions file."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from voiceagent.slips.render import (
    Slip,
    SlipConfigError,
    babel_locale,
    load_instructions,
    render_html,
    render_pdf,
    render_sms,
    render_text,
    subject,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "voiceagent" / "slips" / "instructions.example.yaml"
SLIP = Slip(
    creditor="Banco Andino",
    debtor_name="María Fernanda López",
    account_ref="A-1",
    reference="BA-A-1",
    amount_minor=15_000_000,
    currency="COP",
    due=date(2026, 11, 20),
    locale="es-419",
    instructions="Pague por PSE (convenio 12345).",
    issued=date(2026, 11, 12),
    link="https://pagos.example/?ref=BA-A-1",
)


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")


def test_spanish_slip_writes_amount_and_date_as_colombia_does() -> None:
    text = render_text(SLIP)
    assert "Valor a pagar: $150.000,00" in text
    assert "Son: ciento cincuenta mil pesos" in text
    assert "Fecha límite de pago: 20 de noviembre de 2026" in text
    assert "Referencia de pago: BA-A-1" in text
    assert "Pague por PSE (convenio 12345)." in text
    assert subject(SLIP) == "Cupón de pago Banco Andino - BA-A-1"


def test_portuguese_and_english_slips() -> None:
    pt = replace(SLIP, currency="BRL", amount_minor=123_450, locale="pt-BR")
    assert "Valor a pagar: R$ 1.234,50" in render_text(pt)
    assert "Data de vencimento: 20 de novembro de 2026" in render_text(pt)
    assert "trinta e quatro reais e cinquenta centavos" in render_text(pt)
    en = replace(SLIP, currency="USD", amount_minor=12_000, locale="en-US", due=None)
    assert "Amount due: $120.00" in render_text(en)
    assert "Pay by: as soon as possible" in render_text(en)
    assert render_sms(en).startswith("Banco Andino: please pay $120.00. Ref. BA-A-1.")
    other = replace(SLIP, locale="fr-FR", currency="EUR")  # no French texts: English
    assert render_text(other).startswith("Hello María")


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("es-419", "COP", "es_CO"),
        ("es-419", "MXN", "es_MX"),
        ("es-PE", "USD", "es_PE"),
        ("pt-BR", "BRL", "pt_BR"),
        ("en-US", "USD", "en_US"),
        ("en", "XYZ", "en_US"),
        ("fr-FR", "EUR", "en_FR"),  # English texts, French number format
    ],
)
def test_number_format_follows_the_country(locale: str, currency: str, expected: str) -> None:
    assert babel_locale(locale, currency) == expected


def test_pdf_is_a_real_pdf_with_the_slip_text() -> None:
    pdf = render_pdf(SLIP)
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    for needle in (
        "Cupón de pago",
        "María Fernanda López",
        "BA-A-1",
        "$150.000,00",
        "20 de noviembre de 2026",
        "Pague por PSE (convenio 12345).",
    ):
        assert needle in text, needle
    assert render_pdf(SLIP) == pdf  # reproducible: same slip, same bytes


def test_pdf_survives_characters_its_font_lacks() -> None:
    text = pdf_text(render_pdf(replace(SLIP, debtor_name="Łukasz “Luke” Nowak – 李")))
    assert "ukasz" in text and "Nowak" in text


def test_html_escapes_what_it_prints() -> None:
    body = render_html(replace(SLIP, debtor_name="<script>x</script>"))
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert 'href="https://pagos.example/?ref=BA-A-1"' in body


def test_sms_is_short_and_complete() -> None:
    sms = render_sms(SLIP)
    assert sms == (
        "Banco Andino: pague $150.000,00 antes del 20/11/26. Ref. BA-A-1. "
        "https://pagos.example/?ref=BA-A-1"
    )
    assert len(sms) <= 160


def test_example_instructions_load_and_fall_back() -> None:
    instructions = load_instructions(EXAMPLE)
    andino = instructions.for_creditor("Banco Andino")
    assert andino.reference == "BA-{external_ref}"
    assert "PSE" in andino.text("es", "Banco Andino")
    assert "Pix" in instructions.for_creditor("Financeira Aurora").text("es", "x")  # via English
    assert instructions.for_creditor("Someone Else").reference == "{external_ref}"
    assert load_instructions(None).for_creditor("x").text("pt", "Credor X") == (
        "Pague com a referência indicada nos canais de Credor X."
    )


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("creditors:\n  X:\n    reference: '{iban}'\n", "creditor 'X': reference: unknown field"),
        ("creditors:\n  X:\n    link: 'https://p/{'\n", "creditor 'X': link"),
        ("creditors:\n  X:\n    instructions: {de: Hallo}\n", "unknown language"),
        ("creditors:\n  X:\n    bank: Y\n", "unknown key(s) ['bank']"),
        ("- a\n", "top-level 'creditors:'"),
        ("creditors: [\n", "slips.yaml"),
    ],
)
def test_malformed_instructions_name_file_and_creditor(
    tmp_path: Path, yaml: str, message: str
) -> None:
    path = tmp_path / "slips.yaml"
    path.write_text(yaml)
    with pytest.raises(SlipConfigError, match="slips.yaml") as info:
        load_instructions(path)
    assert message in str(info.value)


def test_yes_and_no_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "slips.yaml"
    path.write_text("creditors:\n  default:\n    instructions:\n      en: yes\n")
    assert load_instructions(path).for_creditor("x").text("en", "x") == "yes"
