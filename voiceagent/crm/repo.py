"""Queries on accounts, phones, promises, restrictions and payments.

Every function takes an open :class:`~sqlalchemy.orm.Session` and leaves committing to the
caller, so that a whole import or a whole API request is one transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import phonenumbers
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from voiceagent.crm.models import (
    Account,
    Attempt,
    ContactRestriction,
    Creditor,
    Payment,
    Phone,
    Portfolio,
    Promise,
)
from voiceagent.crm.types import utcnow

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed",
}


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account as the importer read it from one row of a call list."""

    external_ref: str
    debtor_name: str
    amount_owed_minor: int
    """Minor units of ``currency``."""
    currency: str
    timezone: str
    locale: str
    days_past_due: int = 0
    document_type: str | None = None
    document_number: str | None = None
    birth_year: int | None = None
    due_date: date | None = None
    email: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def portfolio(s: Session, creditor_name: str, portfolio_name: str) -> Portfolio:
    """Get or create a creditor's portfolio by names."""
    creditor = s.scalar(select(Creditor).where(Creditor.name == creditor_name))
    if creditor is None:
        creditor = Creditor(name=creditor_name, created_at=utcnow())
        s.add(creditor)
        s.flush()
    found = s.scalar(
        select(Portfolio).where(
            Portfolio.creditor_id == creditor.id, Portfolio.name == portfolio_name
        )
    )
    if found is None:
        found = Portfolio(creditor_id=creditor.id, name=portfolio_name, created_at=utcnow())
        s.add(found)
        s.flush()
    return found


def upsert_account(s: Session, portfolio_id: int, row: AccountRow) -> tuple[Account, bool]:
    """Insert or update the account of an imported row; return it and whether it is new.

    The same debtor is found by ``(portfolio, external_ref)``, or failing that by
    ``(portfolio, document_number)``, so re-uploading a list never duplicates accounts.
    """
    match = [Account.external_ref == row.external_ref]
    if row.document_number:
        match.append(Account.document_number == row.document_number)
    candidates = s.scalars(
        select(Account).where(Account.portfolio_id == portfolio_id, or_(*match))
    ).all()
    by_ref = [a for a in candidates if a.external_ref == row.external_ref]
    account = (by_ref or candidates)[0] if candidates else None
    values = {
        "external_ref": row.external_ref,
        "debtor_name": row.debtor_name,
        "document_type": row.document_type,
        "document_number": row.document_number,
        "birth_year": row.birth_year,
        "amount_owed_minor": row.amount_owed_minor,
        "currency": row.currency,
        "days_past_due": row.days_past_due,
        "due_date": row.due_date,
        "timezone": row.timezone,
        "email": row.email,
        "locale": row.locale,
        "extra": dict(row.extra),
    }
    if account is None:
        now = utcnow()
        account = Account(portfolio_id=portfolio_id, created_at=now, updated_at=now, **values)
        s.add(account)
        s.flush()
        return account, True
    if by_ref:
        for key, value in values.items():
            setattr(account, key, value)
    else:  # found by document: keep the account's own reference, refresh the rest
        for key, value in values.items():
            if key != "external_ref":
                setattr(account, key, value)
    s.flush()
    return account, False


def guess_phone_type(e164: str) -> str:
    """``mobile``, ``fixed`` or ``unknown`` from the numbering plan."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return "unknown"
    return _TYPES.get(phonenumbers.number_type(number), "unknown")


def normalize_phone(raw: str, region: str | None = None) -> str | None:
    """E.164 form of a caller ID or an imported number, or ``None`` if it is not valid."""
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def add_phone(
    s: Session,
    account_id: int,
    e164: str,
    phone_type: str | None = None,
    consent: bool = False,
    consent_source: str | None = None,
) -> Phone:
    """Add a number to an account (or return the one already there, updating consent)."""
    if not E164.match(e164):
        raise ValueError(f"not an E.164 number: {e164!r}")
    phone = s.scalar(select(Phone).where(Phone.account_id == account_id, Phone.e164 == e164))
    if phone is None:
        phone = Phone(
            account_id=account_id,
            e164=e164,
            type=phone_type or guess_phone_type(e164),
            consent=consent,
            consent_source=consent_source,
            consent_at=utcnow() if consent else None,
            priority=0,
            created_at=utcnow(),
        )
        s.add(phone)
    elif consent and not phone.consent:
        phone.consent, phone.consent_source, phone.consent_at = True, consent_source, utcnow()
    s.flush()
    return phone


def accounts_by_phone(s: Session, e164: str) -> list[Account]:
    """Every account reachable at a number, active ones first, most recently updated first."""
    query = (
        select(Account)
        .join(Phone, Phone.account_id == Account.id)
        .where(Phone.e164 == e164)
        .order_by((Account.status == "active").desc(), Account.updated_at.desc(), Account.id)
    )
    return list(s.scalars(query))


def account_by_phone(s: Session, caller_id: str, region: str | None = None) -> Account | None:
    """The account an inbound caller most likely calls about (caller ID in any format)."""
    e164 = caller_id if E164.match(caller_id) else normalize_phone(caller_id, region)
    if e164 is None:
        return None
    found = accounts_by_phone(s, e164)
    return found[0] if found else None


def restrictions(
    s: Session, account_id: int, phone_id: int | None = None
) -> list[ContactRestriction]:
    """Restrictions in force on an account (and, given a phone, on that phone)."""
    scope = ContactRestriction.scope == "account"
    if phone_id is not None:
        scope = or_(scope, ContactRestriction.phone_id == phone_id)
    query = select(ContactRestriction).where(
        ContactRestriction.account_id == account_id,
        ContactRestriction.lifted_at.is_(None),
        scope,
    )
    return list(s.scalars(query.order_by(ContactRestriction.id)))


def may_contact(s: Session, account_id: int, phone_id: int | None = None) -> bool:
    """Whether nothing forbids calling this account (at this phone)."""
    return not restrictions(s, account_id, phone_id)


def active_promise(s: Session, account_id: int) -> Promise | None:
    """The pending promise due first, if the account has one."""
    query = (
        select(Promise)
        .where(Promise.account_id == account_id, Promise.status == "pending")
        .order_by(Promise.due_date, Promise.id)
    )
    return s.scalars(query).first()


def list_promises(
    s: Session,
    account_id: int | None = None,
    status: str | None = None,
    due_before: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Promise]:
    """Promises, filtered, by due date."""
    query = select(Promise)
    if account_id is not None:
        query = query.where(Promise.account_id == account_id)
    if status is not None:
        query = query.where(Promise.status == status)
    if due_before is not None:
        query = query.where(Promise.due_date < due_before)
    query = query.order_by(Promise.due_date, Promise.id).limit(limit).offset(offset)
    return list(s.scalars(query))


def record_payment(
    s: Session,
    account_id: int,
    amount_minor: int,
    currency: str,
    paid_on: date,
    external_ref: str | None = None,
    source: str = "import",
) -> tuple[Payment, list[Promise]]:
    """Record a payment, apply it to pending promises and lower the balance.

    The payment goes to pending promises in the same currency, made on or before the
    payment day, earliest due first; a promise whose paid amount reaches its amount is
    ``kept``. A payment already recorded under the same ``external_ref`` is returned
    unchanged (creditors re-send files).

    Returns:
        The payment and the promises it made kept.
    """
    if external_ref is not None:
        existing = s.scalar(
            select(Payment).where(
                Payment.account_id == account_id, Payment.external_ref == external_ref
            )
        )
        if existing is not None:
            return existing, []
    payment = Payment(
        account_id=account_id,
        amount_minor=amount_minor,
        currency=currency,
        paid_on=paid_on,
        external_ref=external_ref,
        source=source,
        created_at=utcnow(),
    )
    s.add(payment)
    account = s.get(Account, account_id, with_for_update=True)
    if account is None:
        raise LookupError(f"no account {account_id}")
    if account.currency == currency:
        account.amount_owed_minor = max(0, account.amount_owed_minor - amount_minor)
        if account.amount_owed_minor == 0:
            account.status = "paid"
    left = amount_minor
    kept = []
    pending = s.scalars(
        select(Promise)
        .where(
            Promise.account_id == account_id,
            Promise.status == "pending",
            Promise.currency == currency,
        )
        .order_by(Promise.due_date, Promise.id)
        .with_for_update()
    )
    now = utcnow()
    for promise in pending:
        if left <= 0:
            break
        if promise.created_at.date() > paid_on:
            continue
        applied = min(left, promise.amount_minor - promise.paid_minor)
        promise.paid_minor += applied
        left -= applied
        if promise.paid_minor >= promise.amount_minor:
            promise.status, promise.resolved_at = "kept", now
            kept.append(promise)
    s.flush()
    return payment, kept


def mark_broken_promises(s: Session, today: date, grace_days: int = 0) -> list[Promise]:
    """Mark pending promises broken once their due date plus grace has passed unpaid."""
    last_due = date.fromordinal(today.toordinal() - grace_days - 1)
    query = (
        select(Promise)
        .where(Promise.status == "pending", Promise.due_date <= last_due)
        .with_for_update()
    )
    now = utcnow()
    broken = list(s.scalars(query))
    for promise in broken:
        promise.status, promise.resolved_at = "broken", now
    s.flush()
    return broken


def count_attempts(
    s: Session, account_id: int, since: datetime, phone_id: int | None = None
) -> int:
    """Dials placed to an account (or one of its phones) since a moment (frequency caps)."""
    query = select(func.count()).where(
        Attempt.account_id == account_id, Attempt.started_at >= since
    )
    if phone_id is not None:
        query = query.where(Attempt.phone_id == phone_id)
    return int(s.scalar(query) or 0)
