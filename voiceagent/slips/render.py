"""The payment slip: what to pay, by when, with which reference, and how; PDF, e-mail and SMS.

A :class:`Slip` holds the facts (amount in minor units, due date, reference, the creditor's
instructions in the debtor's language); the ``render_*`` functions turn it into a one-page PDF,
a plain-text and an HTML e-mail body, and a short SMS text. Rendering is pure: same slip, same
bytes. Texts exist in Spanish, Portuguese and English; other locales fall back to English.

Payment instructions come per creditor from a YAML file (``instructions.example.yaml`` next to
this module shows the format), loaded by :func:`load_instructions`.
"""

from __future__ import annotations

import html
import string
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import localedata
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision

from voiceagent.dialog.speech import money

LANGS = ("es", "pt", "en")
_DEFAULT_BABEL = {"es": "es", "pt": "pt_BR", "en": "en_US"}
_CURRENCY_TERRITORY = {
    "COP": "CO",
    "MXN": "MX",
    "PEN": "PE",
    "CLP": "CL",
    "ARS": "AR",
    "BRL": "BR",
    "USD": "US",
}
"""Where an amount in this currency is usually written (``$450.000,00`` in Colombia)."""
REFERENCE_FIELDS = ("external_ref", "account_id", "promise_id", "document_number", "event_id")
"""Fields a creditor's ``reference`` template may use (``{external_ref}``...)."""
LINK_FIELDS = (*REFERENCE_FIELDS, "reference", "amount_minor", "currency")
"""Fields a creditor's ``link`` template may use."""

_LABELS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Cupón de pago",
        "creditor": "Acreedor",
        "holder": "Titular",
        "account": "Cuenta",
        "reference": "Referencia de pago",
        "amount": "Valor a pagar",
        "words": "Son",
        "due": "Fecha límite de pago",
        "due_none": "lo antes posible",
        "how": "Cómo pagar",
        "link": "Pague en línea",
        "issued": "Emitido el",
        "footer": "Conserve este cupón. Si ya realizó el pago, por favor ignore este mensaje.",
        "greeting": "Hola {name}:",
        "intro": "Como acordamos, le enviamos su cupón de pago (adjunto en PDF).",
        "sms": "{creditor}: pague {amount} antes del {due}. Ref. {reference}.",
        "sms_none": "{creditor}: pague {amount}. Ref. {reference}.",
    },
    "pt": {
        "title": "Guia de pagamento",
        "creditor": "Credor",
        "holder": "Titular",
        "account": "Conta",
        "reference": "Referência de pagamento",
        "amount": "Valor a pagar",
        "words": "Por extenso",
        "due": "Data de vencimento",
        "due_none": "o quanto antes",
        "how": "Como pagar",
        "link": "Pague on-line",
        "issued": "Emitido em",
        "footer": "Guarde esta guia. Se o pagamento já foi feito, por favor desconsidere.",
        "greeting": "Olá, {name}:",
        "intro": "Conforme combinado, segue a sua guia de pagamento (PDF em anexo).",
        "sms": "{creditor}: pague {amount} até {due}. Ref. {reference}.",
        "sms_none": "{creditor}: pague {amount}. Ref. {reference}.",
    },
    "en": {
        "title": "Payment slip",
        "creditor": "Creditor",
        "holder": "Account holder",
        "account": "Account",
        "reference": "Payment reference",
        "amount": "Amount due",
        "words": "In words",
        "due": "Pay by",
        "due_none": "as soon as possible",
        "how": "How to pay",
        "link": "Pay online",
        "issued": "Issued on",
        "footer": "Keep this slip. If you have already paid, please disregard this message.",
        "greeting": "Hello {name},",
        "intro": "As agreed, here is your payment slip (attached as a PDF).",
        "sms": "{creditor}: please pay {amount} by {due}. Ref. {reference}.",
        "sms_none": "{creditor}: please pay {amount}. Ref. {reference}.",
    },
}
_GENERIC_INSTRUCTIONS = {
    "es": "Pague con la referencia indicada en los canales de {creditor}.",
    "pt": "Pague com a referência indicada nos canais de {creditor}.",
    "en": "Pay with the reference above through {creditor}'s usual channels.",
}


class SlipConfigError(ValueError):
    """The payment-instructions file is malformed (the message names the file and creditor)."""


@dataclass(frozen=True, slots=True)
class CreditorInstructions:
    """How to pay one creditor: a reference template, a text per language, an optional link."""

    reference: str = "{external_ref}"
    """``str.format`` template over :data:`REFERENCE_FIELDS`."""
    instructions: dict[str, str] = field(default_factory=dict)
    """Language (``es``, ``pt``, ``en``) -> free text (bank, agreement code, channels)."""
    link: str | None = None
    """``str.format`` template over :data:`LINK_FIELDS` (a payment page), if any."""

    def text(self, lang: str, creditor: str) -> str:
        """The instructions in ``lang`` (else English, else any, else a generic sentence)."""
        for key in (lang, "en", *self.instructions):
            if key in self.instructions:
                return self.instructions[key].strip()
        return _GENERIC_INSTRUCTIONS[lang].format(creditor=creditor)


@dataclass(frozen=True, slots=True)
class Instructions:
    """Every creditor's instructions, keyed by the CRM's creditor name; ``default`` for others."""

    creditors: dict[str, CreditorInstructions] = field(default_factory=dict)

    def for_creditor(self, name: str) -> CreditorInstructions:
        """The creditor's entry, else the ``default`` entry, else the built-in default."""
        return self.creditors.get(name) or self.creditors.get("default") or CreditorInstructions()


def _check_template(where: str, template: Any, fields: tuple[str, ...]) -> str:
    if not isinstance(template, str) or not template.strip():
        raise SlipConfigError(f"{where}: expected a non-empty string, got {template!r}")
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise SlipConfigError(f"{where}: {exc}") from None
    unknown = sorted(names - set(fields))
    if unknown:
        raise SlipConfigError(f"{where}: unknown field(s) {unknown}; known: {list(fields)}")
    return template


def _creditor(where: str, raw: Any) -> CreditorInstructions:
    if not isinstance(raw, dict):
        raise SlipConfigError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - {"reference", "instructions", "link"})
    if unknown:
        raise SlipConfigError(f"{where}: unknown key(s) {unknown}")
    texts = raw.get("instructions", {})
    if not isinstance(texts, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in texts.items()
    ):
        raise SlipConfigError(f"{where}: instructions must map a language to a text")
    bad = sorted(set(texts) - set(LANGS))
    if bad:
        raise SlipConfigError(f"{where}: instructions in unknown language(s) {bad}")
    link = raw.get("link")
    return CreditorInstructions(
        reference=_check_template(
            f"{where}: reference", raw.get("reference", "{external_ref}"), REFERENCE_FIELDS
        ),
        instructions=dict(texts),
        link=None if link is None else _check_template(f"{where}: link", link, LINK_FIELDS),
    )


def load_instructions(path: Path | None) -> Instructions:
    """Read the per-creditor instructions YAML; ``None`` or a missing file gives the defaults.

    Raises:
        SlipConfigError: The file exists but is malformed.
    """
    if path is None or not path.exists():
        return Instructions()
    from ruamel.yaml import YAML, YAMLError

    try:  # YAML 1.2: "yes", "no", "on" stay strings
        doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise SlipConfigError(f"{path}: {exc}") from None
    creditors = (doc or {}).get("creditors") if isinstance(doc, dict | None) else None
    if not isinstance(creditors, dict):
        raise SlipConfigError(f"{path}: expected a top-level 'creditors:' mapping")
    return Instructions(
        {str(name): _creditor(f"{path}: creditor {name!r}", raw) for name, raw in creditors.items()}
    )


@dataclass(frozen=True, slots=True)
class Slip:
    """Everything printed on one payment slip."""

    creditor: str
    debtor_name: str
    account_ref: str
    """The creditor's account number."""
    reference: str
    """The payment reference the debtor quotes when paying."""
    amount_minor: int
    """Minor units of ``currency``."""
    currency: str
    due: date | None
    """Promised payment date; ``None``: no promise, pay as soon as possible."""
    locale: str
    """The account's locale (``es-419``, ``pt-BR``...); picks the language and number format."""
    instructions: str
    """How to pay, in the slip's language."""
    issued: date
    link: str | None = None
    """A payment page, if the creditor has one."""

    @property
    def lang(self) -> str:
        """``es``, ``pt`` or ``en``."""
        lang = self.locale.replace("_", "-").split("-")[0].lower()
        return lang if lang in LANGS else "en"

    @property
    def amount(self) -> Decimal:
        """The amount in major units (``Decimal``)."""
        return Decimal(self.amount_minor).scaleb(-int(get_currency_precision(self.currency)))


def babel_locale(locale: str, currency: str) -> str:
    """The babel locale that writes this currency as its country does (``es-419``+COP: es_CO)."""
    parts = locale.replace("-", "_").split("_")
    lang = parts[0].lower() if parts[0].lower() in LANGS else "en"
    candidates = []
    if len(parts) > 1 and len(parts[1]) == 2 and parts[1].isalpha():
        candidates.append(f"{lang}_{parts[1].upper()}")
    if currency in _CURRENCY_TERRITORY:
        candidates.append(f"{lang}_{_CURRENCY_TERRITORY[currency]}")
    for candidate in candidates:
        if localedata.exists(candidate):
            return candidate
    return _DEFAULT_BABEL[lang]


def formatted_amount(slip: Slip) -> str:
    """``$450.000,00`` (Colombia), ``R$ 1.234,50`` (Brazil), ``$120.00`` (US)."""
    text = format_currency(
        slip.amount, slip.currency, locale=babel_locale(slip.locale, slip.currency)
    )
    return str(text).replace("\u00a0", " ").replace("\u202f", " ")


def formatted_due(slip: Slip) -> str:
    """The due date written out (``20 de noviembre de 2026``) or "as soon as possible"."""
    if slip.due is None:
        return _LABELS[slip.lang]["due_none"]
    return str(format_date(slip.due, "long", locale=babel_locale(slip.locale, slip.currency)))


def _rows(slip: Slip) -> list[tuple[str, str]]:
    label = _LABELS[slip.lang]
    issued = format_date(slip.issued, "medium", locale=babel_locale(slip.locale, slip.currency))
    return [
        (label["creditor"], slip.creditor),
        (label["holder"], slip.debtor_name),
        (label["account"], slip.account_ref),
        (label["reference"], slip.reference),
        (label["amount"], formatted_amount(slip)),
        (label["words"], money(slip.amount, slip.currency, slip.lang)),
        (label["due"], formatted_due(slip)),
        (label["issued"], str(issued)),
    ]


def subject(slip: Slip) -> str:
    """The e-mail subject: title, creditor and reference."""
    return f"{_LABELS[slip.lang]['title']} {slip.creditor} - {slip.reference}"


def render_text(slip: Slip) -> str:
    """The plain-text e-mail body."""
    label = _LABELS[slip.lang]
    lines = [label["greeting"].format(name=slip.debtor_name), "", label["intro"], ""]
    lines += [f"{name}: {value}" for name, value in _rows(slip)]
    lines += ["", f"{label['how']}:", slip.instructions]
    if slip.link:
        lines += ["", f"{label['link']}: {slip.link}"]
    lines += ["", label["footer"]]
    return "\n".join(lines) + "\n"


def render_html(slip: Slip) -> str:
    """The HTML e-mail body (inline styles only; mail clients drop style sheets)."""
    label = _LABELS[slip.lang]
    e = html.escape
    rows = "".join(
        f'<tr><th style="text-align:left;padding:4px 12px 4px 0">{e(name)}</th>'
        f'<td style="padding:4px 0">{e(value)}</td></tr>'
        for name, value in _rows(slip)
    )
    how = "<br>".join(e(line) for line in slip.instructions.splitlines())
    link = (
        f'<p><a href="{e(slip.link, quote=True)}">{e(label["link"])}</a></p>' if slip.link else ""
    )
    return (
        f'<!DOCTYPE html><html lang="{e(slip.lang)}"><head><meta charset="utf-8">'
        f"<title>{e(subject(slip))}</title></head>"
        f'<body style="font-family:Arial,Helvetica,sans-serif;color:#222">'
        f"<p>{e(label['greeting'].format(name=slip.debtor_name))}</p><p>{e(label['intro'])}</p>"
        f"<h2>{e(label['title'])}</h2><table>{rows}</table>"
        f"<h3>{e(label['how'])}</h3><p>{how}</p>{link}"
        f'<p style="color:#666;font-size:small">{e(label["footer"])}</p></body></html>'
    )


def render_sms(slip: Slip) -> str:
    """A short text: creditor, amount, due date, reference and link (one or two SMS segments)."""
    label = _LABELS[slip.lang]
    key = "sms" if slip.due is not None else "sms_none"
    due = (
        ""
        if slip.due is None
        else format_date(slip.due, "short", locale=babel_locale(slip.locale, slip.currency))
    )
    text = label[key].format(
        creditor=slip.creditor, amount=formatted_amount(slip), due=due, reference=slip.reference
    )
    return f"{text} {slip.link}" if slip.link else text


def _pdf_safe(text: str) -> str:
    """The PDF's core font (Helvetica, Latin-1) cannot draw other characters: substitute them."""
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'")
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(slip: Slip) -> bytes:
    """The slip as a one-page A4 PDF (text is real PDF text, searchable and extractable)."""
    from datetime import UTC, datetime, time

    from fpdf import FPDF

    label = _LABELS[slip.lang]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.combine(slip.issued, time(), tzinfo=UTC))  # reproducible
    pdf.set_title(_pdf_safe(subject(slip)))
    pdf.set_author(_pdf_safe(slip.creditor))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, _pdf_safe(label["title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 8, _pdf_safe(slip.creditor), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for name, value in _rows(slip):
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(55, 8, _pdf_safe(name))
        pdf.set_font("Helvetica", "", 11)
        pdf.multi_cell(0, 8, _pdf_safe(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, _pdf_safe(label["how"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, _pdf_safe(slip.instructions), new_x="LMARGIN", new_y="NEXT")
    if slip.link:
        pdf.ln(2)
        pdf.set_text_color(0, 0, 180)
        pdf.cell(0, 8, _pdf_safe(f"{label['link']}: {slip.link}"), link=slip.link)
        pdf.set_text_color(0, 0, 0)
        pdf.ln(10)
    pdf.ln(6)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, _pdf_safe(label["footer"]), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
