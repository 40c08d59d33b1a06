"""Campaigns: read them with their progress; start and pause (operators)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from voiceagent.api.deps import Db, Operator, Paging, Staff, page, state
from voiceagent.api.errors import ApiError, not_found
from voiceagent.api.routes.common import count, row_dict
from voiceagent.crm.models import Attempt, Call, CallListRow, Campaign

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
CAMPAIGN_FIELDS = (
    "id",
    "name",
    "call_list_id",
    "dialplan_id",
    "dialplan_version",
    "schedule",
    "max_channels",
    "retry_policy",
    "priority",
    "status",
    "created_at",
    "updated_at",
)


def _progress(s: Db, campaign: Campaign) -> dict[str, Any]:
    accounts = s.scalar(
        select(func.count(func.distinct(CallListRow.account_id))).where(
            CallListRow.call_list_id == campaign.call_list_id,
            CallListRow.account_id.is_not(None),
        )
    )
    attempted = s.scalar(
        select(func.count(func.distinct(Attempt.account_id))).where(
            Attempt.campaign_id == campaign.id
        )
    )
    attempts = s.scalar(select(func.count()).where(Attempt.campaign_id == campaign.id))
    live = s.scalar(
        select(func.count())
        .select_from(Call)
        .join(Attempt, Attempt.id == Call.attempt_id)
        .where(Attempt.campaign_id == campaign.id, Call.status == "in_progress")
    )
    return {
        "accounts": int(accounts or 0),
        "accounts_attempted": int(attempted or 0),
        "attempts": int(attempts or 0),
        "calls_in_progress": int(live or 0),
    }


@router.get("")
def list_campaigns(
    who: Staff,
    s: Db,
    paging: Paging,
    status: Literal["draft", "running", "paused", "finished"] | None = None,
) -> dict[str, Any]:
    """Campaigns, newest first."""
    query = select(Campaign)
    if status is not None:
        query = query.where(Campaign.status == status)
    rows = s.scalars(query.order_by(Campaign.id.desc()).limit(paging.limit).offset(paging.offset))
    return page([row_dict(c, *CAMPAIGN_FIELDS) for c in rows], count(s, query), paging)


def _get(s: Db, campaign_id: int) -> Campaign:
    campaign = s.get(Campaign, campaign_id)
    if campaign is None:
        raise not_found("campaign", campaign_id)
    return campaign


@router.get("/{campaign_id}")
def get_campaign(who: Staff, s: Db, campaign_id: int) -> dict[str, Any]:
    """One campaign with its progress (accounts in the list, attempted, live calls)."""
    campaign = _get(s, campaign_id)
    return {**row_dict(campaign, *CAMPAIGN_FIELDS), "progress": _progress(s, campaign)}


def _dialer_control(s: Db, campaign_id: int, action: str, request: Request) -> dict[str, Any]:
    from voiceagent.dialer import campaigns as dialer

    campaign = _get(s, campaign_id)
    try:
        if dialer.get(s, campaign.name).id != campaign.id:  # the dialer addresses by name
            raise ApiError(
                409,
                "conflict",
                f"campaign name {campaign.name!r} is shared by a newer campaign; "
                "rename one before controlling it",
            )
        if action == "start":
            # Its own transactions, a batch of list lines each: a live call is never locked out.
            dialer.start_in_batches(state(request).sessions, campaign.name)
            s.expire_all()
            changed = _get(s, campaign_id)
        else:
            changed = dialer.pause(s, campaign.name)
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return {**row_dict(changed, *CAMPAIGN_FIELDS), "progress": _progress(s, changed)}


@router.post("/{campaign_id}/start")
def start_campaign(who: Operator, s: Db, campaign_id: int, request: Request) -> dict[str, Any]:
    """Start (or resume) dialling: queue the list's accounts and mark the campaign running."""
    return _dialer_control(s, campaign_id, "start", request)


@router.post("/{campaign_id}/pause")
def pause_campaign(who: Operator, s: Db, campaign_id: int, request: Request) -> dict[str, Any]:
    """Pause dialling (no new reservations; calls in progress finish); 409 unless running."""
    return _dialer_control(s, campaign_id, "pause", request)
