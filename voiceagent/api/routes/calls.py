"""Calls: list with filters, detail with the call's journal, and the timed transcript."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from voiceagent.api.deps import Db, Paging, Staff, Supervisor, page, state
from voiceagent.api.errors import ApiError, not_found
from voiceagent.api.routes.common import audit, aware, check_range, count, row_dict
from voiceagent.crm.models import Attempt, Call, CallEvent

router = APIRouter(prefix="/api/calls", tags=["calls"])
CALL_FIELDS = (
    "id",
    "attempt_id",
    "account_id",
    "phone_id",
    "direction",
    "dialplan_id",
    "dialplan_version",
    "status",
    "outcome",
    "right_party",
    "interrupted",
    "started_at",
    "ended_at",
    "duration_ms",
)


def _call_json(call: Call, campaign_id: int | None) -> dict[str, Any]:
    return {
        **row_dict(call, *CALL_FIELDS),
        "campaign_id": campaign_id,
        "has_recording": call.recording_path is not None,
        "has_transcript": call.transcript_path is not None,
    }


@router.get("")
def list_calls(
    who: Staff,
    s: Db,
    paging: Paging,
    campaign_id: int | None = None,
    account_id: int | None = None,
    frm: Annotated[datetime | None, Query(alias="from", description="Started at or after")] = None,
    to: Annotated[datetime | None, Query(description="Started before (UTC if naive)")] = None,
    outcome: Annotated[str | None, Query(max_length=30)] = None,
    right_party: bool | None = None,
    status: Literal["in_progress", "ended"] | None = None,
) -> dict[str, Any]:
    """Calls, newest first, filtered; ``total`` counts every match."""
    frm, to = aware(frm), aware(to)
    check_range(frm, to)
    query = select(Call, Attempt.campaign_id).outerjoin(Attempt, Attempt.id == Call.attempt_id)
    if campaign_id is not None:
        query = query.where(Attempt.campaign_id == campaign_id)
    if account_id is not None:
        query = query.where(Call.account_id == account_id)
    if frm is not None:
        query = query.where(Call.started_at >= frm)
    if to is not None:
        query = query.where(Call.started_at < to)
    if outcome is not None:
        query = query.where(Call.outcome == outcome)
    if right_party is not None:
        query = query.where(Call.right_party.is_(right_party))
    if status is not None:
        query = query.where(Call.status == status)
    ordered = query.order_by(Call.started_at.desc(), Call.id)
    rows = s.execute(ordered.limit(paging.limit).offset(paging.offset))
    return page([_call_json(c, camp) for c, camp in rows], count(s, query), paging)


def get_call(s: Db, call_id: str) -> Call:
    """The call, or 404."""
    call = s.get(Call, call_id)
    if call is None:
        raise not_found("call", call_id)
    return call


@router.get("/{call_id}")
def call_detail(who: Staff, s: Db, call_id: str) -> dict[str, Any]:
    """One call with its timings and journal (promises, flags, transfers it committed)."""
    call = get_call(s, call_id)
    campaign = None
    if call.attempt_id is not None:
        campaign = s.scalar(select(Attempt.campaign_id).where(Attempt.id == call.attempt_id))
    events = s.scalars(select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.id))
    return {
        **_call_json(call, campaign),
        "worker": call.worker,
        "timings": call.timings,
        "events": [row_dict(e, "id", "at", "kind", "data") for e in events],
    }


def stored_file(request: Request, stored: str | None, what: str, call_id: str) -> Path:
    """The file a call row points at (relative paths are under the data dir), or 404."""
    if not stored:
        raise ApiError(404, "not_found", f"call {call_id!r} has no {what}")
    path = Path(stored)
    if not path.is_absolute():
        path = state(request).config.data_dir / path
    if not path.is_file():
        raise ApiError(404, "not_found", f"the {what} of call {call_id!r} is missing on disk")
    return path


@router.get("/{call_id}/transcript")
def transcript(who: Supervisor, request: Request, s: Db, call_id: str) -> dict[str, Any]:
    """The timed transcript: ``lines`` of ``{speaker, text, start_ms, end_ms, confidence}``."""
    call = get_call(s, call_id)
    path = stored_file(request, call.transcript_path, "transcript", call_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ApiError(
            500, "bad_transcript", f"transcript of {call_id!r} unreadable: {exc}"
        ) from None
    lines = data.get("lines", []) if isinstance(data, dict) else data
    audit(s, who, "transcript.read", "call", call_id)
    return {"call_id": call_id, "lines": lines}
