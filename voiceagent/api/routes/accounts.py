"""Debtor accounts (personal data: operators and supervisors only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from voiceagent.api.deps import Db, Paging, Staff, page
from voiceagent.api.errors import not_found
from voiceagent.api.routes.common import count, row_dict
from voiceagent.crm import repo
from voiceagent.crm.models import Account, Phone, Promise

router = APIRouter(prefix="/api/accounts", tags=["accounts"])
ACCOUNT_FIELDS = (
    "id",
    "portfolio_id",
    "external_ref",
    "debtor_name",
    "document_type",
    "document_number",
    "amount_owed_minor",
    "currency",
    "days_past_due",
    "due_date",
    "timezone",
    "locale",
    "status",
    "updated_at",
)


@router.get("")
def list_accounts(
    who: Staff,
    s: Db,
    paging: Paging,
    portfolio_id: int | None = None,
    status: Literal["active", "paid", "closed", "on_hold"] | None = None,
    external_ref: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Accounts, filtered by portfolio, status or the creditor's reference."""
    query = select(Account)
    if portfolio_id is not None:
        query = query.where(Account.portfolio_id == portfolio_id)
    if status is not None:
        query = query.where(Account.status == status)
    if external_ref is not None:
        query = query.where(Account.external_ref == external_ref)
    rows = s.scalars(query.order_by(Account.id).limit(paging.limit).offset(paging.offset))
    return page([row_dict(a, *ACCOUNT_FIELDS) for a in rows], count(s, query), paging)


@router.get("/{account_id}")
def get_account(who: Staff, s: Db, account_id: int) -> dict[str, Any]:
    """One account with its phones, restrictions in force and promises."""
    account = s.get(Account, account_id)
    if account is None:
        raise not_found("account", account_id)
    phones = s.scalars(select(Phone).where(Phone.account_id == account_id).order_by(Phone.id))
    promises = s.scalars(
        select(Promise).where(Promise.account_id == account_id).order_by(Promise.id)
    )
    return {
        **row_dict(account, *ACCOUNT_FIELDS, "email", "extra", "created_at"),
        "phones": [row_dict(p, "id", "e164", "type", "consent", "priority") for p in phones],
        "restrictions": [
            row_dict(r, "id", "kind", "scope", "phone_id", "source_call_id", "created_at")
            for r in repo.restrictions(s, account_id)
        ],
        "promises": [
            row_dict(p, "id", "call_id", "amount_minor", "currency", "due_date", "status")
            for p in promises
        ],
    }
