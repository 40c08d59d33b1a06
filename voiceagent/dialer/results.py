"""What happens to a reserved call after the reservation: re-checked, finished, rescheduled.

* :func:`recheck`: the compliance rules again at connect time (a call reserved at 18:59:58
  that connects at 19:00:03 in Bogotá is aborted).
* :func:`finish`: the attempt's result, the account freed, the entry's next try scheduled by
  the campaign's retry policy (or a pending callback).
* :func:`release_stale`: the accounts a dead dialer process left reserved.

Blocking (SQLAlchemy): the worker runs these on the ``db_pool``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm import repo
from voiceagent.crm.db import write_session
from voiceagent.crm.models import ActiveDial, Attempt, Callback, Campaign, CampaignEntry
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer.ledger import subject
from voiceagent.dialer.packs import get_pack
from voiceagent.dialer.queue import BUSY_ELSEWHERE, Outcome, Recheck, Reservation


def recheck(s: Session, attempt_id: int, connect_at: datetime) -> Recheck:
    """Evaluate the compliance rules again for a reserved attempt at its connect time.

    The attempt itself is left out of the ledger (it was counted when reserved).
    """
    attempt = s.get(Attempt, attempt_id)
    if attempt is None:
        raise LookupError(f"no attempt {attempt_id}")
    campaign = s.get(Campaign, attempt.campaign_id) if attempt.campaign_id else None
    sub = subject(
        s, attempt.account_id, connect_at, phone_id=attempt.phone_id, exclude_attempt_id=attempt.id
    )
    if repo.active_promise(s, attempt.account_id) is not None:
        return Recheck(False, "crm.active_promise", "the account has a pending promise")
    pack_id = (campaign.jurisdiction if campaign else None) or sub.jurisdiction
    try:
        pack = get_pack(pack_id or "")
    except KeyError:
        return Recheck(False, "crm.no_jurisdiction", f"no compliance pack for {pack_id!r}")
    decision = sub.check(pack, connect_at)
    if decision.allowed:
        return Recheck(True)
    return Recheck(False, decision.rule, decision.reason, decision.next_allowed_at)


def finish(
    sessions: sessionmaker[Session], reservation: Reservation, outcome: Outcome, now: datetime
) -> str:
    """Record an attempt's result, free its account and schedule its next try.

    Returns:
        The entry's new status (``pending`` or ``done``).
    """
    with write_session(sessions) as s:
        attempt = s.get(Attempt, reservation.attempt_id)
        if attempt is None:
            raise LookupError(f"no attempt {reservation.attempt_id}")
        attempt.result = outcome.result
        attempt.sip_code = outcome.sip_code
        if outcome.answered_at is not None and attempt.answered_at is None:
            attempt.answered_at = outcome.answered_at
        if attempt.ended_at is None:
            attempt.ended_at = now
        s.execute(delete(ActiveDial).where(ActiveDial.attempt_id == attempt.id))
        return _schedule(s, reservation.campaign_id, attempt, outcome, now)


def _schedule(
    s: Session, campaign_id: int, attempt: Attempt, outcome: Outcome, now: datetime
) -> str:
    entry = s.scalar(
        select(CampaignEntry).where(
            CampaignEntry.campaign_id == campaign_id,
            CampaignEntry.account_id == attempt.account_id,
        )
    )
    campaign = s.get(Campaign, campaign_id)
    if entry is None or campaign is None:
        return "done"
    entry.last_result, entry.updated_at = outcome.result, now
    callback = s.scalar(
        select(Callback.due_at)
        .where(Callback.account_id == attempt.account_id, Callback.status == "pending")
        .order_by(Callback.due_at)
        .limit(1)
    )
    if outcome.result == "aborted":  # refused at connect time: not a try of the debtor
        entry.attempts = max(0, entry.attempts - 1)
        due: datetime | None = outcome.next_allowed_at or now + BUSY_ELSEWHERE
    elif callback is not None:
        due = callback
    else:
        due = cmp.next_due(cmp.config_of(campaign), outcome.result, entry.attempts, now)
    if due is None:
        entry.status = "done"
    else:
        entry.status, entry.next_at = "pending", due
    return entry.status


def release_stale(sessions: sessionmaker[Session], worker: str, now: datetime) -> int:
    """Free the accounts a dead dialer process left reserved; their attempts end ``interrupted``.

    Run it when a dialer starts, with its own worker name (``host:pid`` of the dead process
    when known). Returns how many were freed.
    """
    with write_session(sessions) as s:
        stale = list(s.scalars(select(ActiveDial).where(ActiveDial.worker == worker)))
        for dial in stale:
            attempt = s.get(Attempt, dial.attempt_id)
            s.delete(dial)
            if attempt is None:
                continue
            attempt.result = attempt.result or "interrupted"
            attempt.ended_at = attempt.ended_at or now
            if dial.campaign_id is not None:
                _schedule(s, dial.campaign_id, attempt, Outcome(result="failed"), now)
        return len(stale)


def campaign_load(s: Session, campaign_id: int) -> tuple[Campaign | None, int]:
    """The campaign row and how many of its calls are in progress (across all dialers)."""
    campaign = s.get(Campaign, campaign_id)
    count = s.scalar(
        select(func.count()).select_from(ActiveDial).where(ActiveDial.campaign_id == campaign_id)
    )
    return campaign, int(count or 0)
