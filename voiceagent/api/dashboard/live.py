"""``GET /api/live``: calls in progress, with dialog state and last utterance when known.

The CRM knows which calls are in progress; the worker's ``CallRunner`` (``app.state.runner``,
set when calls run in this process) also knows each call's dialog state, how long it has run
and what was last said. The answer merges both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from voiceagent.api.auth import allowed
from voiceagent.api.deps import Db, Staff
from voiceagent.crm.models import Attempt, Call

router = APIRouter(tags=["dashboard"])
MAX_LIVE = 500
TRANSCRIPT_ROLES = ("supervisor",)
"""Who may read what was said (the same roles as ``/api/calls/{id}/transcript``)."""


def _session_view(session: Any, with_text: bool) -> dict[str, Any]:
    """What a running ``CallSession`` tells about itself (read without locks: a snapshot)."""
    out: dict[str, Any] = {"duration_ms": int(getattr(session, "t_ms", 0))}
    conv = getattr(session, "conv", None)
    dialog = getattr(conv, "state", None)
    out["dialog_state"] = getattr(dialog, "state", None) or None
    transcript = list(getattr(getattr(session, "result", None), "transcript", None) or ())
    if with_text and transcript:
        last = transcript[-1]
        out["last_utterance"] = {"speaker": last.get("speaker"), "text": last.get("text")}
    return out


@router.get("/api/live")
def live_calls(who: Staff, request: Request, s: Db) -> dict[str, Any]:
    """Calls in progress: ``items`` of call id, campaign, state, dialog state, duration.

    ``last_utterance`` (``{speaker, text}``) is given to roles that may read transcripts.
    ``source`` says whether a call runner in this process was consulted (``runner``) or only
    the database (``database``).
    """
    now = datetime.now(UTC)
    runner = getattr(request.app.state, "runner", None)
    active: dict[str, Any] = dict(getattr(runner, "active", None) or {})
    with_text = allowed(who.role, TRANSCRIPT_ROLES)
    query = (
        select(Call, Attempt.campaign_id)
        .outerjoin(Attempt, Attempt.id == Call.attempt_id)
        .where(Call.status == "in_progress")
        .order_by(Call.started_at, Call.id)
        .limit(MAX_LIVE)
    )
    items: list[dict[str, Any]] = []
    for call, campaign_id in s.execute(query):
        started = call.started_at
        item: dict[str, Any] = {
            "call_id": call.id,
            "campaign_id": campaign_id,
            "account_id": call.account_id,
            "direction": call.direction,
            "status": call.status,
            "started_at": started.isoformat() if started else None,
            "duration_ms": int((now - started).total_seconds() * 1000) if started else 0,
            "dialog_state": None,
            "last_utterance": None,
        }
        session = active.pop(call.id, None)
        if session is not None:
            item.update(_session_view(session, with_text))
        items.append(item)
    for call_id, session in active.items():  # not yet committed as in progress
        item = {"call_id": call_id, "campaign_id": None, "account_id": None, "direction": None}
        item.update(status="in_progress", started_at=None, last_utterance=None)
        item.update(_session_view(session, with_text))
        items.append(item)
    return {
        "now": now.isoformat(),
        "source": "database" if runner is None else "runner",
        "items": items,
    }
