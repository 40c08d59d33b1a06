"""The CRM's account rows as the dialog's accounts (what prompts and offers are made of)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from voiceagent.crm.models import Account as AccountRow
from voiceagent.crm.models import Creditor, Phone, Portfolio
from voiceagent.crm.types import from_minor
from voiceagent.dialog.account import Account


class AccountNotCallable(ValueError):
    """The CRM account lacks something every call needs (said before the call starts)."""


def dialog_account(s: Session, row: AccountRow, phone: Phone | None = None) -> Account:
    """Build the dialog's view of an account row (and the number being called, if known).

    Raises:
        AccountNotCallable: the account has no document number to verify the debtor with, or
            no phone number at all.
    """
    portfolio = s.get(Portfolio, row.portfolio_id)
    assert portfolio is not None  # a foreign key
    owner = s.get(Creditor, portfolio.creditor_id)
    creditor = owner.name if owner is not None else portfolio.name
    if phone is None:
        phone = s.query(Phone).filter(Phone.account_id == row.id).order_by(Phone.id).first()
    if phone is None:
        raise AccountNotCallable(f"account {row.id} has no phone number")
    document = "".join(c for c in (row.document_number or "") if c.isdigit())
    if len(document) < 4:
        raise AccountNotCallable(f"account {row.id} has no document number to verify with")
    extra = {k: v for k, v in (row.extra or {}).items() if isinstance(k, str)}
    extra.setdefault("locale", row.locale)
    birth_year = row.birth_year
    if birth_year is None and str(extra.get("birth_year", "")).isdigit():
        birth_year = int(extra["birth_year"])  # an imported list's extra column
    extra.setdefault("account_id", row.id)
    return Account.model_validate(
        {
            **extra,
            "name": row.debtor_name,
            "document_last4": document[-4:],
            "birth_year": birth_year,
            "amount_owed": Decimal(from_minor(row.amount_owed_minor, row.currency)),
            "currency": row.currency,
            "days_past_due": row.days_past_due,
            "creditor": creditor,
            "portfolio": portfolio.name,
            "phone": phone.e164,
            "due_date": row.due_date,
            "email": row.email,
        }
    )
