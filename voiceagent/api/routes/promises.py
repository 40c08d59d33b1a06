"""Promises to pay, filtered by status and due date."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from voiceagent.api.deps import Db, Paging, Staff, page
from voiceagent.api.errors import ApiError
from voiceagent.api.routes.common import count, row_dict
from voiceagent.crm.models import Attempt, Call, Promise

router = APIRouter(prefix="/api/promises", tags=["promises"])
PROMISE_FIELDS = (
    "id",
    "account_id",
    "call_id",
    "amount_minor",
    "currency",
    "due_date",
    "plan",
    "status",
    "paid_minor",
    "created_at",
    "resolved_at",
)


@router.get("")
def list_promises(
    who: Staff,
    s: Db,
    paging: Paging,
    status: Literal["pending", "kept", "broken", "cancelled"] | None = None,
    due_from: Annotated[date | None, Query(description="Due on or after")] = None,
    due_to: Annotated[date | None, Query(description="Due on or before")] = None,
    account_id: int | None = None,
    campaign_id: int | None = None,
) -> dict[str, Any]:
    """Promises by due date (then id)."""
    if due_from is not None and due_to is not None and due_to < due_from:
        raise ApiError(422, "invalid_request", "'due_to' must not be before 'due_from'")
    query = select(Promise)
    if status is not None:
        query = query.where(Promise.status == status)
    if due_from is not None:
        query = query.where(Promise.due_date >= due_from)
    if due_to is not None:
        query = query.where(Promise.due_date <= due_to)
    if account_id is not None:
        query = query.where(Promise.account_id == account_id)
    if campaign_id is not None:
        query = (
            query.join(Call, Call.id == Promise.call_id)
            .join(Attempt, Attempt.id == Call.attempt_id)
            .where(Attempt.campaign_id == campaign_id)
        )
    ordered = query.order_by(Promise.due_date, Promise.id)
    rows = s.scalars(ordered.limit(paging.limit).offset(paging.offset))
    return page([row_dict(p, *PROMISE_FIELDS) for p in rows], count(s, query), paging)
