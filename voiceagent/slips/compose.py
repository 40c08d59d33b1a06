"""Build a call's payment slip and find its recipient from the CRM (blocking; I/O thread).

The amount and date are the promise made on the call that asked for the slip (the latest one
committed before the request); without one, the account's latest pending promise; without
that, the whole balance, payable as soon as possible.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from voiceagent.crm.models import (
    Account,
    Call,
    ContactRestriction,
    Creditor,
    Phone,
    Portfolio,
    Promise,
)
from voiceagent.slips.render import Instructions, Slip


class PermanentFailure(Exception):
    """This slip can never be delivered as asked (no address, stop-contact...)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One ``send_slip`` call event."""

    event_id: int
    call_id: str
    channel: str
    at: datetime


def _promise(s: Session, call: Call, account: Account, at: datetime) -> Promise | None:
    live = Promise.status.in_(("pending", "kept"))
    on_call = s.scalar(
        select(Promise)
        .where(Promise.call_id == call.id, Promise.created_at <= at, live)
        .order_by(Promise.id.desc())
        .limit(1)
    )
    if on_call is not None:
        return on_call
    return s.scalar(
        select(Promise)
        .where(Promise.account_id == account.id, Promise.status == "pending")
        .order_by(Promise.id.desc())
        .limit(1)
    )


def _fill(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), values)


def _restricted(s: Session, account_id: int, phone_id: int | None = None) -> str | None:
    query = select(ContactRestriction.kind).where(
        ContactRestriction.account_id == account_id, ContactRestriction.lifted_at.is_(None)
    )
    if phone_id is None:
        query = query.where(
            ContactRestriction.scope == "account", ContactRestriction.kind == "stop_contact"
        )
    else:
        query = query.where(ContactRestriction.phone_id == phone_id)
    return s.scalar(query.limit(1))


def slip_for(
    s: Session, request: Request, instructions: Instructions, today: date
) -> tuple[Slip, Account, Call]:
    """The slip a call asked for, with its account and call.

    Raises:
        PermanentFailure: The call has no account, or the account asked not to be contacted.
    """
    call = s.get(Call, request.call_id)
    if call is None or call.account_id is None:
        raise PermanentFailure(f"call {request.call_id} has no account")
    account = s.get(Account, call.account_id)
    assert account is not None
    if _restricted(s, account.id):
        raise PermanentFailure("the account has an active stop_contact restriction")
    portfolio = s.get(Portfolio, account.portfolio_id)
    creditor = s.get(Creditor, portfolio.creditor_id) if portfolio is not None else None
    creditor_name = creditor.name if creditor is not None else ""
    promise = _promise(s, call, account, request.at)
    if promise is not None:
        amount_minor, currency, due = promise.amount_minor, promise.currency, promise.due_date
    else:
        amount_minor, currency, due = account.amount_owed_minor, account.currency, None
    entry = instructions.for_creditor(creditor_name)
    values: dict[str, Any] = {
        "external_ref": account.external_ref,
        "account_id": account.id,
        "promise_id": promise.id if promise is not None else "",
        "document_number": account.document_number or "",
        "event_id": request.event_id,
    }
    reference = _fill(entry.reference, values)
    values.update(reference=reference, amount_minor=amount_minor, currency=currency)
    slip = Slip(
        creditor=creditor_name,
        debtor_name=account.debtor_name,
        account_ref=account.external_ref,
        reference=reference,
        amount_minor=amount_minor,
        currency=currency,
        due=due,
        locale=account.locale,
        instructions="",
        issued=today,
        link=_fill(entry.link, values) if entry.link else None,
    )
    return replace(slip, instructions=entry.text(slip.lang, creditor_name)), account, call


def email_of(account: Account) -> str:
    """The account's e-mail address.

    Raises:
        PermanentFailure: None on file, or not an address.
    """
    email = (account.email or "").strip()
    if "@" not in email or any(c.isspace() for c in email):
        raise PermanentFailure("the account has no valid e-mail address")
    return email


def mobile_of(s: Session, account: Account, call: Call) -> str:
    """The E.164 number to text: the call's phone if it is not a landline, else a mobile.

    Phones with an active restriction (wrong number) are skipped.

    Raises:
        PermanentFailure: No such phone.
    """
    phones = s.scalars(
        select(Phone).where(Phone.account_id == account.id).order_by(Phone.priority, Phone.id)
    ).all()
    usable = [p for p in phones if p.type != "fixed" and not _restricted(s, account.id, p.id)]
    for phone in usable:
        if phone.id == call.phone_id:
            return phone.e164
    for phone in usable:
        if phone.type == "mobile":
            return phone.e164
    raise PermanentFailure("the account has no mobile phone to text")
