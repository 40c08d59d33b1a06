"""Payments the creditor reports back; they keep promises (idempotent on the external ref)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from voiceagent.api.deps import Db, Operator, Paging, Staff, page
from voiceagent.api.errors import ApiError, not_found
from voiceagent.api.routes.common import audit, count, row_dict
from voiceagent.crm import repo
from voiceagent.crm.models import Account, Payment

router = APIRouter(prefix="/api/payments", tags=["payments"])
PAYMENT_FIELDS = (
    "id",
    "account_id",
    "amount_minor",
    "currency",
    "paid_on",
    "external_ref",
    "source",
    "created_at",
)


class PaymentReport(BaseModel):
    """One payment: the account by id, or by portfolio and the creditor's reference."""

    account_id: int | None = None
    portfolio_id: int | None = None
    account_ref: str | None = Field(default=None, max_length=100)
    amount_minor: int = Field(gt=0, description="Minor units of currency (cents)")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    paid_on: date
    external_ref: str = Field(min_length=1, max_length=100, description="Creditor's txn id")

    @model_validator(mode="after")
    def _one_account_key(self) -> PaymentReport:
        by_ref = self.portfolio_id is not None and self.account_ref is not None
        if (self.account_id is None) == (not by_ref):
            raise ValueError("give account_id, or portfolio_id and account_ref")
        return self


@router.post("", status_code=201)
def report_payment(who: Operator, s: Db, body: PaymentReport, response: Response) -> dict[str, Any]:
    """Record a payment and keep the promises it covers.

    Re-sending the same ``external_ref`` for the account changes nothing and answers 200 with
    ``duplicate: true`` (201 the first time).
    """
    if body.account_id is not None:
        account = s.get(Account, body.account_id)
        key: Any = body.account_id
    else:
        account = s.scalar(
            select(Account).where(
                Account.portfolio_id == body.portfolio_id,
                Account.external_ref == body.account_ref,
            )
        )
        key = f"{body.portfolio_id}/{body.account_ref}"
    if account is None:
        raise not_found("account", key)
    existing = s.scalar(
        select(Payment.id).where(
            Payment.account_id == account.id, Payment.external_ref == body.external_ref
        )
    )
    payment, kept = repo.record_payment(
        s,
        account.id,
        body.amount_minor,
        body.currency,
        body.paid_on,
        external_ref=body.external_ref,
        source="api",
    )
    if existing is not None:
        if (payment.amount_minor, payment.currency) != (body.amount_minor, body.currency):
            raise ApiError(
                409,
                "conflict",
                f"payment {body.external_ref!r} was reported before with a different amount",
            )
        response.status_code = 200
    else:
        audit(s, who, "payment.report", "payment", str(payment.id), account_id=account.id)
    return {
        "payment": row_dict(payment, *PAYMENT_FIELDS),
        "duplicate": existing is not None,
        "kept_promise_ids": [p.id for p in kept],
    }


@router.get("")
def list_payments(
    who: Staff, s: Db, paging: Paging, account_id: int | None = None
) -> dict[str, Any]:
    """Reported payments, newest first."""
    query = select(Payment)
    if account_id is not None:
        query = query.where(Payment.account_id == account_id)
    rows = s.scalars(query.order_by(Payment.id.desc()).limit(paging.limit).offset(paging.offset))
    return page([row_dict(p, *PAYMENT_FIELDS) for p in rows], count(s, query), paging)
